"""``spineplan igtl DIR --host H --port P``: push a plan over OpenIGTLink (e.g. to 3D Slicer's
OpenIGTLinkIF server, default port 18944)."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("igtl", help="push a plan live over OpenIGTLink (models, points, tracts, status)")
    p.add_argument("plan_dir", metavar="DIR", help="a plan folder (holds plan.json)")
    p.add_argument("--host", default="127.0.0.1", help="the OpenIGTLink server (default 127.0.0.1), e.g. --host 127.0.0.1")
    p.add_argument("--port", type=int, default=18944, help="its port (default 18944), e.g. --port 18944")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the connection (default 10), e.g. --timeout 30")
    p.set_defaults(run=run)


def run(args, progress_factory=None) -> int:
    """Run the command; ``progress_factory(name)`` gives a ``progress(fraction, message)``."""
    from SpinePlannerLib.export.igtl import push_plan
    from SpinePlannerLib.export.plan_folder import load_plan_folder

    pf = load_plan_folder(args.plan_dir)
    lines = push_plan(pf, host=args.host, port=args.port, timeout_s=args.timeout,
                      progress=progress_factory("igtl") if progress_factory else (lambda f, m: None))
    for line in lines:
        print(line)
    return 0
