"""``spineplan sct-cohort CASES.csv --out DIR``: the synthetic-CT check over a cohort.

The work is :func:`SyntheticCTCheckLib.cohort.main_cohort` (CSV layout and outputs documented
there); this module only maps the command line onto it.
"""

from __future__ import annotations

from pathlib import Path

from SpinePlannerLib.core.errors import InputError


def add_parser(subparsers):
    """Add the ``sct-cohort`` subcommand to ``spineplan``'s subparsers; returns the parser."""
    p = subparsers.add_parser(
        "sct-cohort", help="synthetic CT vs CT over a cohort: per-case table and paired statistics (CSV + JSON)")
    p.add_argument("cases", metavar="CASES.csv|BATCH_DIR",
                   help="one row per case: columns ct, sct, roi (paths relative to the CSV); optional case, "
                        "swi or gre, vertebrae, roi_frame (mri|ct); or the output folder of `spineplan batch` "
                        "(the tables are read from its plans, nothing is re-run); e.g. cohort/cases.csv")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for the per-case and summary tables (CSV, JSON), e.g. --out cohort_out")
    p.add_argument("--trust-headers", action="store_true",
                   help="use the image headers, do not register CT to sCT, e.g. --trust-headers")
    p.add_argument("--calcified-hu", type=float, metavar="HU",
                   help="calcified-voxel threshold (default 130 HU, the Agatston convention), e.g. --calcified-hu 130")
    return p


def run(args, progress_factory=None) -> int:
    """Handler of ``spineplan sct-cohort`` (prints the summary table); returns the exit code 0."""
    from SpinePlannerLib.core.params import from_dict
    from SyntheticCTCheckLib.cohort import OUTPUT_FILES, main_cohort, write_cohort
    from SyntheticCTCheckLib.params import CheckParams

    overrides: dict = {}
    if getattr(args, "trust_headers", False):
        overrides["registration.trust_headers"] = True
    if getattr(args, "calcified_hu", None) is not None:
        overrides["lesion.calcified_hu"] = args.calcified_hu
    try:
        params = from_dict(CheckParams, overrides, where="synthetic_ct_check")
    except ValueError as exc:
        raise InputError("sct-cohort options", str(exc)) from None
    if Path(args.cases).is_dir():  # a view of batch results: the same tables from the plans' checks
        from SpinePlannerLib.planning.batch.tables import sct_cohort_from_batch

        if overrides:
            raise InputError("sct-cohort options", "--trust-headers/--calcified-hu apply when checking; a batch "
                                                   "folder was checked with its plans' settings")
        result = sct_cohort_from_batch(args.cases)
        result["outputs"] = write_cohort(result, args.out)
    else:
        result = main_cohort(args.cases, args.out, params=params, progress_factory=progress_factory)
    width = max(len(r["measure"]) for r in result["table"])
    print(f"{'measure':<{width}}  {'real CT':>10}  {'synthetic CT':>12}  {'p (t)':>8}  {'p (Wilcoxon)':>12}")
    for r in result["table"]:
        print(f"{r['measure']:<{width}}  {r['real_ct']:>10}  {r['synthetic_ct']:>12}  {r['p_paired_t']:>8}  "
              f"{r['p_wilcoxon']:>12}")
    print(f"tables written to {Path(args.out)} ({', '.join(OUTPUT_FILES.values())})")
    return 0
