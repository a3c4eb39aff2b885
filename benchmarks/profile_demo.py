"""Profile ``spineplan demo`` (cProfile), this checkout side by side with another one.

Runs the demo in a child process per code version (``--base``: the other checkout, e.g. the
unchanged code), alternating ``--repeat`` times, and prints per stage the best of the plan's
own stage seconds, the wall and CPU time of the whole child (best of runs), and the top
functions by own time of the last profiled run of each version. Goal (issue 10): demo < 15 s
wall on an idle machine.

Usage::

    python benchmarks/profile_demo.py --base /work/base [--kind intramedullary-displacing] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(root: Path, kind: str, out: Path, prof: Path | None) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(root / p) for p in
                                                       ("SpinePlanner", "DTITractography", "SyntheticCTCheck"))}
    cmd = [sys.executable] + (["-m", "cProfile", "-o", str(prof)] if prof else []) + [
        "-m", "SpinePlannerLib.cli", "--quiet", "demo", "--kind", kind, "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd="/tmp", stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    plan = json.loads((out / "plan.json").read_text())
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "exit": os.waitstatus_to_exitcode(status),
            "stages": {k: v["seconds"] for k, v in plan["stages"].items()}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", type=Path, required=True, help="the other checkout (e.g. the unchanged code)")
    p.add_argument("--kind", default="intramedullary-displacing")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--profile", action="store_true", help="run under cProfile and print the top functions")
    args = p.parse_args(argv)
    runs: dict[str, list[dict]] = {"base": [], "new": []}
    with tempfile.TemporaryDirectory(prefix="profile_demo_") as tmp:
        for r in range(args.repeat):
            for name, root in (("base", args.base), ("new", REPO)):
                prof = Path(tmp) / f"{name}.prof" if args.profile else None
                runs[name].append(_run(root, args.kind, Path(tmp) / f"{name}{r}", prof))
        best = {n: {"wall_s": min(x["wall_s"] for x in v), "cpu_s": min(x["cpu_s"] for x in v),
                    "stages": {s: min(x["stages"][s] for x in v) for s in v[0]["stages"]}} for n, v in runs.items()}
        print(f"{'(best of ' + str(args.repeat) + ')':28}{'base':>9}{'new':>9}{'new/base':>10}")
        for s in best["new"]["stages"]:
            b, n = best["base"]["stages"].get(s), best["new"]["stages"][s]
            print(f"  stage {s:20}{b:>9.2f}{n:>9.2f}{(n / b if b else float('nan')):>10.2f}")
        for key, label in (("wall_s", "demo wall (s)"), ("cpu_s", "demo CPU (s)")):
            b, n = best["base"][key], best["new"][key]
            print(f"{label:28}{b:>9.2f}{n:>9.2f}{n / b:>10.2f}")
        if args.profile:
            for name in ("base", "new"):
                print(f"\n-- {name}: top functions by own time (last run)")
                pstats.Stats(str(Path(tmp) / f"{name}.prof")).sort_stats("tottime").print_stats(12)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
