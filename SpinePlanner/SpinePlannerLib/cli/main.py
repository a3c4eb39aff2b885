"""The ``spineplan`` command line.

Exit codes: 0 success (stages may be skipped), 2 bad input (one line on stderr naming the input),
1 internal failure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

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
        self.print_usage(sys.stderr)
        raise InputError("arguments", message)


def _parse_seed(text: str):
    try:
        parts = [float(p) for p in text.replace(" ", "").split(",")]
    except ValueError:
        raise InputError("--tumor-seed", f"expected R,A,S in mm, got {text!r}") from None
    if len(parts) != 3:
        raise InputError("--tumor-seed", f"expected three numbers R,A,S, got {len(parts)}")
    return tuple(parts)


def build_parser() -> argparse.ArgumentParser:
    p = _ArgParser(prog="spineplan", description="Spinal tumor surgery planning (headless 3D Slicer core).")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_ArgParser)

    plan = sub.add_parser("plan", help="plan a case from its images")
    for role, what in (("t1", "T1-weighted MRI"), ("t2", "T2-weighted MRI"), ("t1c", "contrast T1 MRI"),
                       ("stir", "STIR MRI"), ("ct", "CT (file or DICOM folder)"), ("sct", "synthetic CT"),
                       ("angio", "CT/MR angiography"), ("swi", "susceptibility-weighted MRI"),
                       ("gre", "T2*-weighted gradient-echo MRI")):
        plan.add_argument(f"--{role}", metavar="F", help=what)
    plan.add_argument("--dwi", metavar="F", help="diffusion MRI: 4D NIfTI (with --bval/--bvec) or NRRD DWI")
    plan.add_argument("--bval", metavar="F")
    plan.add_argument("--bvec", metavar="F")
    plan.add_argument("--tumor-seg", metavar="F", help="tumor label map (any grid overlapping the images)")
    plan.add_argument("--tumor-seed", metavar="R,A,S", help="a point inside the tumor, RAS mm")
    plan.add_argument("--cord-seg", metavar="F", help="spinal cord label map")
    plan.add_argument("--level-anchor", metavar="LEVEL,R,A,S",
                      help="name one vertebra, e.g. T10,0,-5,40 (a point in it, RAS mm): levels are counted from it")
    plan.add_argument("--params", metavar="FILE.json", help="stage parameter overrides (see README)")
    plan.add_argument("--out", required=True, metavar="DIR")
    plan.add_argument("--no-scene", action="store_true", help="skip writing scene.mrb")

    demo = sub.add_parser("demo", help="generate the phantom case and plan it end to end")
    demo.add_argument("--out", required=True, metavar="DIR")
    demo.add_argument("--kind", default="intramedullary-displacing", help="phantom kind (see `spineplan phantom -h`)")
    demo.add_argument("--seed", type=int, default=0)

    ph = sub.add_parser("phantom", help="write a digital spine-tumor phantom case")
    ph.add_argument("--kind", required=True)
    ph.add_argument("--out", required=True, metavar="DIR")
    ph.add_argument("--seed", type=int, default=0)

    from SpinePlannerLib.cli import sct_cohort

    sct_cohort.add_parser(sub)
    return p


def _cmd_plan(args, progress_factory) -> int:
    from SpinePlannerLib.planning.pipeline import CaseInputs, run_plan

    images = {r: getattr(args, r) for r in IMAGE_ROLES if getattr(args, r)}
    if args.tumor_seg and args.tumor_seed:
        raise InputError("--tumor-seed", "give either --tumor-seg or --tumor-seed, not both")
    from SpinePlannerLib.planning.params_file import merge_level_anchor, read_stage_params

    params = read_stage_params(args.params) if args.params else {}
    if args.level_anchor:
        params = merge_level_anchor(params, args.level_anchor)
    inputs = CaseInputs(images=images, params=params, dwi=args.dwi, bval=args.bval, bvec=args.bvec, tumor_seg=args.tumor_seg,
                        cord_seg=args.cord_seg,
                        tumor_seed_ras=_parse_seed(args.tumor_seed) if args.tumor_seed else None)
    plan = run_plan(inputs, Path(args.out), progress_factory=progress_factory, write_scene=not args.no_scene)
    _summary(plan, Path(args.out))
    return EXIT_OK


def _summary(plan: dict, out: Path) -> None:
    stages = ", ".join(f"{k}: {v['status']}" for k, v in plan["stages"].items())
    print(f"plan written to {out / 'plan.json'} ({stages})")
    for w in plan.get("warnings", []):
        print(f"warning: {w}")


def _cmd_phantom(args) -> int:
    from SpinePlannerLib.phantom.case import PHANTOM_KINDS, write_phantom

    if args.kind not in PHANTOM_KINDS:
        raise InputError("--kind", f"unknown phantom kind {args.kind!r}; choose one of {', '.join(PHANTOM_KINDS)}")
    files = write_phantom(args.kind, Path(args.out), seed=args.seed)
    print(f"phantom '{args.kind}' written to {args.out} ({len(files)} files)")
    return EXIT_OK


def _cmd_demo(args, progress_factory) -> int:
    from SpinePlannerLib.planning.demo import run_demo

    plan = run_demo(Path(args.out), kind=args.kind, seed=args.seed, progress_factory=progress_factory)
    _summary(plan, Path(args.out))
    return EXIT_OK


def main(argv=None) -> int:
    from SpinePlannerLib.cli.progress import TerminalProgress

    try:
        args = build_parser().parse_args(argv)
        progress = TerminalProgress(enabled=not args.quiet)
        if args.command == "plan":
            return _cmd_plan(args, progress)
        if args.command == "phantom":
            return _cmd_phantom(args)
        if args.command == "demo":
            return _cmd_demo(args, progress)
        if args.command == "sct-cohort":
            from SpinePlannerLib.cli import sct_cohort

            return sct_cohort.run(args, progress)
    except InputError as exc:
        print(error_line(exc), file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("spineplan: interrupted", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # internal failure: one line plus where the details went
        log = Path(tempfile.gettempdir()) / "spineplan-last-error.log"
        import traceback

        log.write_text(traceback.format_exc())
        print(f"spineplan: internal error: {type(exc).__name__}: {exc} (details in {log})", file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
