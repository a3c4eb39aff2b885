"""``spineplan report DIR``: write report.html and report.pdf for an existing plan folder.

``--figure PNG`` also saves the two-view 3D picture (with legend, level names, orientation
marker and scale bar); relative paths are taken from the current directory, e.g.
``spineplan report demo_out --figure docs/demo.png`` regenerates the README figure.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("report", help="write report.html and report.pdf for a plan folder")
    p.add_argument("plan_dir", metavar="DIR", help="a folder written by `spineplan plan` or `spineplan demo`")
    p.add_argument("--no-pdf", action="store_true", help="write only report.html, e.g. --no-pdf")
    p.add_argument("--figure", metavar="PNG", help="also save the 3D view picture here (e.g. docs/demo.png)")
    p.set_defaults(run=run)
    return p


def print_result(res) -> None:
    print(f"report written to {res.html} ({res.seconds:.1f} s; 3D: {res.view_3d_method})")
    if res.pdf is not None:
        print(f"PDF written to {res.pdf}")
    elif res.pdf_reason != "not requested":
        print(f"warning: no PDF: {res.pdf_reason}")
    if res.figure is not None:
        print(f"3D figure written to {res.figure}")


def run(args, progress_factory=None) -> int:  # noqa: ARG001 - the common signature
    from SpinePlannerLib.report.build import write_report

    print_result(write_report(args.plan_dir, pdf=not args.no_pdf, figure=args.figure))
    return 0
