"""The ``spineplan`` command line.

Exit codes: 0 success (stages may be skipped), 2 bad input (one line on stderr naming the input),
1 internal failure.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

from SpinePlannerLib.cli.export import after_plan as export_after_plan
from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.planning.context import ROLES

IMAGE_ROLES = tuple(r for r in ROLES if r != "dwi")

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2

FLAGS = {"params": "--params", "level anchor": "--level-anchor", "tumor seed": "--tumor-seed",
         "tumor segmentation": "--tumor-seg", "cord segmentation": "--cord-seg", "bval": "--bval",
         "bvec": "--bvec", "dwi": "--dwi", "swi": "--swi", "gre": "--gre",
         **{role: f"--{role}" for role in IMAGE_ROLES}}
"""Input names the Lib raises (:class:`InputError` ``name``: the quantity) -> this CLI's flags."""


def flag_for(name: str) -> str:
    """The CLI's own name for an input the Lib names by quantity (``"tumor seed"`` -> ``--tumor-seed``);
    ``"bval/bvec"`` -> ``--bval/--bvec``; anything else (a file path, a cohort case) unchanged."""
    parts = name.split("/")
    if all(p in FLAGS for p in parts):
        return "/".join(FLAGS[p] for p in parts)
    return name


def error_line(exc: InputError) -> str:
    """One line for stderr naming the input by its flag."""
    return f"spineplan: error: {flag_for(exc.name)}: {exc.problem}"


class _ArgParser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors are bad input too: exit 2, one line
        raise InputError("arguments", f"{message} (see {self.prog} -h)")


def _parse_seed(text: str):
    try:
        parts = [float(p) for p in text.replace(" ", "").split(",")]
    except ValueError:
        raise InputError("--tumor-seed", f"expected R,A,S in mm, got {text!r}") from None
    if len(parts) != 3:
        raise InputError("--tumor-seed", f"expected three numbers R,A,S, got {len(parts)}")
    if not all(math.isfinite(v) for v in parts):
        raise InputError("--tumor-seed", f"coordinates must be finite numbers in mm, got {text!r}")
    return tuple(parts)


IMAGE_HELP = (
    ("t1", "T1-weighted MRI", "t1.nii.gz"), ("t2", "T2-weighted MRI", "t2.nii.gz"),
    ("t1c", "contrast-enhanced T1 MRI", "t1c.nii.gz"), ("stir", "STIR MRI", "stir.nii.gz"),
    ("ct", "CT in HU", "ct.nii.gz or dicom/ct/"), ("sct", "MRI-derived synthetic CT in HU", "sct.nii.gz"),
    ("angio", "CT or MR angiography", "cta.nii.gz"), ("swi", "susceptibility-weighted MRI", "swi.nii.gz"),
    ("gre", "T2*-weighted gradient-echo MRI", "gre.nii.gz"),
)
"""Image options of ``spineplan plan``: role, what it is, an example value."""

SERIES_HELP = " A DICOM folder with several series: add ::SERIES_UID (e.g. dicom/::1.2.840.113619.2.5.1)."


def _add_plan_parser(sub) -> None:
    from SpinePlannerLib.cli import export as export_cli

    plan = sub.add_parser("plan", help="plan a case from its images",
                          description="Plan a case. Images: NIfTI, NRRD/NHDR, MHA or a DICOM series folder. "
                                      "Coordinates are RAS millimetres as Slicer shows them.")
    for role, what, example in IMAGE_HELP:
        plan.add_argument(f"--{role}", metavar="F|DIR", help=f"{what}, e.g. --{role} {example}.{SERIES_HELP}")
    plan.add_argument("--dwi", metavar="F", help="diffusion MRI: 4D NIfTI (with --bval/--bvec) or a NRRD DWI, "
                                                 "e.g. --dwi dwi.nii.gz")
    plan.add_argument("--bval", metavar="F", help="FSL b-values of --dwi (s/mm^2, one per volume), e.g. --bval dwi.bval")
    plan.add_argument("--bvec", metavar="F", help="FSL gradient directions of --dwi (3 rows or one row per volume), "
                                                  "e.g. --bvec dwi.bvec")
    plan.add_argument("--tumor-seg", metavar="F", help="tumor label map on any grid overlapping the images, "
                                                       "e.g. --tumor-seg tumor.nii.gz")
    plan.add_argument("--tumor-seed", metavar="R,A,S", help="a point inside the tumor, RAS mm (Slicer's markups "
                                                            "coordinates), e.g. --tumor-seed -3,-11,20")
    plan.add_argument("--cord-seg", metavar="F", help="spinal cord label map, e.g. --cord-seg cord.nii.gz")
    plan.add_argument("--level-anchor", metavar="LEVEL,R,A,S",
                      help="name the vertebra containing a point (RAS mm): levels are counted from it, "
                           "e.g. --level-anchor T10,0,-5,40")
    plan.add_argument("--params", metavar="FILE.json", help="stage parameter overrides (JSON, see README), "
                                                            "e.g. --params params.json")
    plan.add_argument("--out", required=True, metavar="DIR",
                      help="output folder, created or replaced as a whole (never one holding an input), "
                           "e.g. --out plan_out")
    plan.add_argument("--pain", choices=("none", "occasional", "mechanical"),
                      help="SINS pain (clinical; imaging cannot tell): none, occasional (not mechanical) or "
                           "mechanical, e.g. --pain mechanical")
    plan.add_argument("--myelopathy", choices=("yes", "no"), help="clinical myelopathy (NOMS neurologic), e.g. --myelopathy no")
    plan.add_argument("--histology", metavar="TEXT", help="primary tumor histology for NOMS radiosensitivity, "
                                                          "e.g. --histology 'renal cell carcinoma'")
    plan.add_argument("--no-scene", action="store_true", help="skip writing scene.mrb, e.g. --no-scene")
    plan.add_argument("--no-report", action="store_true", help="skip writing report.html and report.pdf, e.g. --no-report")
    export_cli.add_plan_option(plan)


def build_parser() -> argparse.ArgumentParser:
    from SpinePlannerLib import __version__
    from SpinePlannerLib.phantom.case import PHANTOM_KINDS

    p = _ArgParser(prog="spineplan", description="Spinal tumor surgery planning (headless 3D Slicer core). "
                                                 "Global options (--quiet) may be given anywhere.")
    p.add_argument("--quiet", action="store_true", help="no progress display, e.g. spineplan --quiet demo --out d")
    p.add_argument("--version", action="version", version=f"spineplan {__version__}",
                   help="print the version and exit, e.g. spineplan --version")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_ArgParser)
    _add_plan_parser(sub)
    kinds = ", ".join(PHANTOM_KINDS)

    demo = sub.add_parser("demo", help="generate the phantom case and plan it end to end")
    demo.add_argument("--out", required=True, metavar="DIR",
                      help="output folder (phantom in DIR/case, plan beside it), e.g. --out demo_out")
    demo.add_argument("--kind", default="intramedullary-displacing", choices=PHANTOM_KINDS, metavar="KIND",
                      help=f"phantom kind, one of: {kinds} (default %(default)s), e.g. --kind idem-calcified")
    demo.add_argument("--seed", type=_seed_int, default=0, metavar="N",
                      help="phantom random seed, 0..2^32-1 (default 0), e.g. --seed 3")
    demo.add_argument("--no-report", action="store_true", help="skip writing report.html and report.pdf, e.g. --no-report")

    ph = sub.add_parser("phantom", help="write a digital spine-tumor phantom case",
                        description=f"Write a digital phantom case. Kinds: {kinds}.")
    ph.add_argument("--kind", required=True, choices=PHANTOM_KINDS, metavar="KIND",
                    help=f"one of: {kinds}; e.g. --kind intramedullary-displacing")
    ph.add_argument("--out", required=True, metavar="DIR", help="folder to write the case to, e.g. --out case1")
    ph.add_argument("--seed", type=_seed_int, default=0, metavar="N",
                    help="random seed, 0..2^32-1 (default 0): same seed, byte-identical files; e.g. --seed 3")

    from SpinePlannerLib.cli import sct_cohort

    sct_cohort.add_parser(sub)
    _add_command_modules(sub)
    return p


def _add_command_modules(sub) -> None:
    """Subcommands that live in their own ``cli/<command>.py`` (``add_parser`` sets ``run``)."""
    from SpinePlannerLib.cli import batch, export, igtl, report, send, view

    for module in (report, view, export, send, igtl, batch):
        module.add_parser(sub)


def _seed_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must lie in 0..4294967295, got {value}")
    return value


def _cmd_plan(args, progress_factory) -> int:
    from SpinePlannerLib.planning.pipeline import CaseInputs, run_plan

    images = {r: getattr(args, r) for r in IMAGE_ROLES if getattr(args, r)}
    if args.tumor_seg and args.tumor_seed:
        raise InputError("--tumor-seed", "give either --tumor-seg or --tumor-seed, not both")
    from SpinePlannerLib.planning.params_file import merge_level_anchor, read_stage_params

    params = read_stage_params(args.params) if args.params else {}
    if args.level_anchor:
        params = merge_level_anchor(params, args.level_anchor)
    params = _merge_clinical(params, args)
    inputs = CaseInputs(images=images, params=params, dwi=args.dwi, bval=args.bval, bvec=args.bvec, tumor_seg=args.tumor_seg,
                        cord_seg=args.cord_seg,
                        tumor_seed_ras=_parse_seed(args.tumor_seed) if args.tumor_seed else None)
    plan = run_plan(inputs, args.out, progress_factory=progress_factory, write_scene=not args.no_scene)
    _summary(plan, Path(args.out))
    _report(args)
    export_after_plan(args, progress_factory)  # after the report: the export encapsulates report.pdf
    return EXIT_OK


def _merge_clinical(params: dict, args) -> dict:
    """``--pain/--myelopathy/--histology`` into the ``clinical`` section (over a --params file's)."""
    from SpinePlannerLib.planning.params_file import validate_stage_params

    given = {"pain": args.pain, "myelopathy": None if args.myelopathy is None else args.myelopathy == "yes",
             "histology": args.histology}
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        return params
    return validate_stage_params({**params, "clinical": {**params.get("clinical", {}), **given}})


def _summary(plan: dict, out: Path) -> None:
    stages = ", ".join(f"{k}: {v['status']}" for k, v in plan["stages"].items())
    print(f"plan written to {out / 'plan.json'} ({stages})")
    for w in plan.get("warnings", []):
        print(f"warning: {w}")


def _cmd_phantom(args) -> int:
    from SpinePlannerLib.phantom.case import write_phantom
    from SpinePlannerLib.planning.demo import phantom_plan_command

    if not args.out.strip():
        raise InputError("--out", "is empty; give a folder name, e.g. --out case1")
    out = Path(args.out)
    files = write_phantom(args.kind, out, seed=args.seed)
    print(f"phantom '{args.kind}' (seed {args.seed}) written to {out} ({len(files)} files); plan it with:")
    print("  " + phantom_plan_command(out, out.parent / f"{out.name}_plan"))
    return EXIT_OK


def _cmd_demo(args, progress_factory) -> int:
    from SpinePlannerLib.planning.demo import run_demo

    plan = run_demo(args.out, kind=args.kind, seed=args.seed, progress_factory=progress_factory)
    _summary(plan, Path(args.out))
    _report(args)
    return EXIT_OK


def _report(args) -> None:
    """report.html/.pdf after a plan (the plan stands without them: a failure is a warning)."""
    if args.no_report:
        return
    from SpinePlannerLib.cli import report as report_cmd
    from SpinePlannerLib.report.build import write_report

    try:
        report_cmd.print_result(write_report(args.out))
    except Exception as exc:  # noqa: BLE001 - the plan is written; the report must not turn it into a failure
        print(f"warning: report not written: {type(exc).__name__}: {exc}", file=sys.stderr)


def _dispatch(args) -> int:
    from SpinePlannerLib.cli.progress import TerminalProgress

    progress = TerminalProgress(enabled=not args.quiet)
    if args.command == "plan":
        return _cmd_plan(args, progress)
    if args.command == "phantom":
        return _cmd_phantom(args)
    if args.command == "demo":
        return _cmd_demo(args, progress)
    if getattr(args, "run", None) is not None:  # subcommands in their own cli/<command>.py
        return args.run(args, progress)
    if args.command == "sct-cohort":
        from SpinePlannerLib.cli import sct_cohort

        return sct_cohort.run(args, progress)
    return EXIT_INTERNAL


def main(argv=None) -> int:
    """Run ``spineplan`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    from SpinePlannerLib.cli.argv import normalise_argv
    from SpinePlannerLib.cli.runtime import private_tempdir, terminate_as_exit, write_error_log
    from SpinePlannerLib.core.libwarnings import quiet_library_warnings

    log_root = tempfile.gettempdir()
    try:
        with terminate_as_exit(), quiet_library_warnings(), private_tempdir():
            args = build_parser().parse_args(normalise_argv(sys.argv[1:] if argv is None else argv))
            return _dispatch(args)
    except InputError as exc:
        print(error_line(exc), file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("spineplan: interrupted; the output folder was left as it was", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # internal failure: one line plus where the details went
        log = write_error_log(log_root)
        where = f"details in {log}" if log else "no log could be written"
        print(f"spineplan: internal error: {type(exc).__name__}: {exc} ({where})", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
