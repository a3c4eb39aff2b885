"""``spineplan view DIR [--port N] [--host H]``: serve a plan folder in the web viewer.

Bound to 127.0.0.1 unless ``--host`` says otherwise (with a warning: the viewer has no login).
Needs the optional extra ``viewer`` (``pip install ".[viewer]"``).
"""

from __future__ import annotations

import argparse
import sys

from SpinePlannerLib.core.errors import InputError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("view", help="web viewer of a plan folder (3 slice views + 3D, in the browser)")
    p.add_argument("plan_dir", metavar="DIR", help="a folder written by `spineplan plan` or `spineplan demo`")
    p.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 = any free port), e.g. --port 8080")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only), e.g. --host 127.0.0.1")
    p.set_defaults(run=run)
    return p


def run(args, progress_factory=None) -> int:  # noqa: ARG001 - the common signature
    try:
        from SpinePlannerLib.viewer.app import PlanViewer
    except ImportError as exc:
        raise InputError("spineplan view", f"the viewer needs the optional extra: pip install \"spineplan[viewer]\" "
                                           f"({exc.name} missing)") from None
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: binding to {args.host}: anyone who can reach this address sees the case (no login)",
              file=sys.stderr)
    viewer = PlanViewer(args.plan_dir)
    sys.argv = sys.argv[:1]  # trame parses the command line itself: keep spineplan's arguments from it
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"spineplan viewer: http://{shown}:{args.port}/  (Ctrl-C to stop)", flush=True)
    viewer.start(port=args.port, host=args.host)
    return 0
