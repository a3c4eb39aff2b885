"""``spineplan export DIR``: DICOM (SEG, RTSTRUCT, tract density, report), STL/OBJ meshes and a
glTF scene from a finished plan folder (see :mod:`SpinePlannerLib.export`)."""

from __future__ import annotations

from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a finished plan folder (DICOM, meshes, glTF)")
    p.add_argument("plan_dir", metavar="DIR", help="a plan folder (holds plan.json)")
    p.add_argument("--format", default="all", metavar="FMT",
                   help="dicom, stl, obj, gltf, a comma list, or all (default), e.g. --format dicom,stl")
    p.add_argument("--out", metavar="EXPORT_DIR", help="output folder (default DIR/export), e.g. --out nav_export")
    p.add_argument("--deidentify", action="store_true",
                   help="no patient identifiers in anything written (new study, pseudonymous patient), e.g. --deidentify")
    p.add_argument("--mesh-frame", choices=("LPS", "RAS"), default="LPS",
                   help="frame of the mesh vertices in mm (default LPS, as DICOM and most printers), e.g. --mesh-frame RAS")
    p.set_defaults(run=run)


def add_plan_option(plan_parser) -> None:
    """``spineplan plan ... --export [FMT]``: export the finished plan to ``OUT/export``."""
    from SpinePlannerLib.export.run import parse_formats

    plan_parser.add_argument("--export", nargs="?", const="all", metavar="FMT", type=parse_formats,
                             help="after planning, export to OUT/export (formats as for `spineplan export`, default all), "
                                  "e.g. --export dicom")


def after_plan(args, progress_factory=None) -> None:
    """Run the export a ``plan --export`` asked for (nothing when it did not)."""
    formats = getattr(args, "export", None)
    if not formats:
        return
    from SpinePlannerLib.export.run import export_plan, parse_formats

    formats = parse_formats(formats) if isinstance(formats, str) else formats  # argparse converts non-default values only
    manifest = export_plan(Path(args.out), formats=formats,
                           progress=progress_factory("export") if progress_factory else (lambda f, m: None))
    print(summary(manifest))


def summary(manifest: dict) -> str:
    n_dicom = len(manifest.get("dicom", []))
    kinds = sorted({r["what"] for r in manifest.get("dicom", [])})
    n_mesh = len(manifest.get("meshes", []))
    return (f"export written to {manifest['out']}: {n_dicom} DICOM file(s) ({', '.join(kinds) or 'none'}), "
            f"{n_mesh} mesh file(s) ({manifest['mesh_frame']} mm)")


def run(args, progress_factory=None) -> int:
    """Run the command; ``progress_factory(name)`` gives a ``progress(fraction, message)``."""
    from SpinePlannerLib.export.run import export_plan, parse_formats

    formats = parse_formats(args.format)
    manifest = export_plan(Path(args.plan_dir), args.out, formats=formats, deidentify=args.deidentify,
                           frame=args.mesh_frame,
                           progress=progress_factory("export") if progress_factory else (lambda f, m: None))
    print(summary(manifest))
    return 0
