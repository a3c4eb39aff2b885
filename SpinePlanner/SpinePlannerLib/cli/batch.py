"""``spineplan batch CASES``: plan a cohort on Dask (local worker processes or an existing cluster).

Exit codes: 0 every case planned (or reused), 3 the batch finished but some cases failed (see
``batch.csv``), 2 bad input for the batch as a whole (the cases table, an option), 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path

EXIT_SOME_FAILED = 3
EXIT_INTERRUPTED = 130

EPILOG = """\
CASES is a CSV (one row per case; columns: case, t1, t2, t1c, stir, swi, gre, ct, sct, angio, dwi, bval,
bvec, tumor_seg, cord_seg, tumor_seed "R,A,S", level_anchor "LEVEL,R,A,S", params; paths relative to the
CSV) or a folder of case folders whose inputs are named by role (t2.nii.gz, ct/ DICOM folder, dwi.nii.gz +
dwi.bval + dwi.bvec, tumor_seg.nii.gz, tumor_seed.txt, params.json, case.json), or hold a DICOM study whose
series are sorted into roles by their DICOM attributes. Outputs in --out: one plan folder per case,
batch.json + batch.csv, cohort/ tables and index.html. See the README (Batch planning)."""


def add_parser(subparsers):
    """Add ``batch`` to the ``spineplan`` subcommands; returns the parser."""
    import argparse

    p = subparsers.add_parser("batch", help="plan many cases on Dask (locally or on a cluster)", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cases", metavar="CASES", help="a CSV of cases or a folder of case folders")
    p.add_argument("--out", required=True, metavar="DIR", help="one plan folder per case, batch.json, batch.csv, e.g. --out cohort_plans")
    p.add_argument("--workers", type=int, metavar="N", help="local worker processes (default: cores / threads), e.g. --workers 2")
    p.add_argument("--threads-per-case", type=int, metavar="T",
                   help="numerical threads per case (default: cores / workers, at least 1), e.g. --threads-per-case 1")
    p.add_argument("--memory-limit", metavar="SIZE",
                   help="memory limit per local worker (= per case), e.g. 4GiB (default: memory / workers)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster, e.g. tcp://host:8786")
    p.add_argument("--resume", action="store_true",
                   help="skip cases whose plan folder is complete and made from the same inputs and parameters, e.g. --resume")
    p.add_argument("--retries", type=int, default=1, metavar="N",
                   help="times a case is retried after its worker process died (default 1), e.g. --retries 2")
    p.add_argument("--no-scene", action="store_true", help="do not write scene.mrb for each case, e.g. --no-scene")
    p.set_defaults(run=run)
    return p


def run(args, progress_factory=None) -> int:  # noqa: ARG001 - the common signature
    """Handler of ``spineplan batch``."""
    from SpinePlannerLib.core.errors import InputError
    from SpinePlannerLib.planning.batch.cases import discover_cases
    from SpinePlannerLib.planning.batch.progress import BatchProgress
    from SpinePlannerLib.planning.batch.runner import BatchOptions, run_batch

    try:
        import distributed  # noqa: F401
    except ImportError:
        raise InputError("batch", "needs Dask: pip install 'spineplan[batch]' (dask[distributed])") from None
    out = Path(args.out)
    if args.retries < 0:
        raise InputError("--retries", "must be 0 or more")
    if args.memory_limit:
        from dask.utils import parse_bytes

        try:
            parse_bytes(args.memory_limit)
        except ValueError:
            raise InputError("--memory-limit", f"expected a size such as 4GiB, got {args.memory_limit!r}") from None
    cases = discover_cases(args.cases, work_dir=out / ".batch" / "dicom")
    opts = BatchOptions(out=out, workers=args.workers, threads_per_case=args.threads_per_case,
                        scheduler=args.scheduler, resume=args.resume, memory_limit=args.memory_limit,
                        retries=args.retries, write_scene=not args.no_scene)
    progress = BatchProgress(len(cases), enabled=not args.quiet)
    try:
        record = run_batch(cases, opts, source=str(Path(args.cases).resolve()), progress=progress)
    except KeyboardInterrupt:
        print(f"spineplan: batch interrupted; finished cases are complete, state in {out / 'batch.json'} "
              "(run again with --resume)")
        return EXIT_INTERRUPTED
    counts = record.counts()
    print(f"batch written to {out} ({counts['done']} done, {counts['reused']} reused, {counts['failed']} failed; "
          f"batch.csv, cohort/, index.html)")
    return EXIT_SOME_FAILED if counts["failed"] else 0
