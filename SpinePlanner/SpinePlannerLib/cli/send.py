"""``spineplan send DIR --host H --port P --aet AE``: C-STORE an export to a PACS or navigation
station; prints one line per object; exit 0 when every object was stored, 1 otherwise, 2 when
no association could be made or DIR holds no export."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("send", help="send an export to a PACS / navigation station (DICOM C-STORE)")
    p.add_argument("plan_dir", metavar="DIR", help="an export folder, or a plan folder holding export/")
    p.add_argument("--host", required=True, help="the PACS or navigation station, e.g. --host 127.0.0.1")
    p.add_argument("--port", required=True, type=int, help="its DICOM port, e.g. --port 104")
    p.add_argument("--aet", required=True, help="the called AE title of the server, e.g. --aet ORTHANC")
    p.add_argument("--calling-aet", default="SPINEPLAN", help="our AE title (default SPINEPLAN), e.g. --calling-aet PLANNER")
    p.add_argument("--retries", type=int, default=2, help="new associations for objects that failed (default 2), e.g. --retries 5")
    p.add_argument("--timeout", type=float, default=30.0, help="network timeout, seconds (default 30), e.g. --timeout 60")
    p.set_defaults(run=run)


def run(args, progress_factory=None) -> int:
    """Run the command; ``progress_factory(name)`` gives a ``progress(fraction, message)``."""
    from SpinePlannerLib.export.send import export_files, report_lines, send_files

    files = export_files(args.plan_dir)
    results = send_files(files, host=args.host, port=args.port, called_aet=args.aet, calling_aet=args.calling_aet,
                         retries=max(0, args.retries), timeout_s=args.timeout,
                         progress=progress_factory("send") if progress_factory else (lambda f, m: None))
    for line in report_lines(results):
        print(line)
    return 0 if all(r.ok for r in results) else 1
