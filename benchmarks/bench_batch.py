"""Benchmark: `spineplan batch` (Dask, 1 and 2 local workers) against a plain sequential loop of
`spineplan plan` on the same cases, as cases per hour and ratios; memory per case.

Cases: phantom cases (``--kinds``, seeds 0..``--seeds``-1) planned from their T2, CT, synthetic CT
and the tumor label (``--no-scene`` unless ``--scene``), written once into a temporary folder.
Every run is a fresh process (``spineplan plan`` per case for the loop; one ``spineplan batch``
for each worker count, cluster start-up included), so the figures are what a user sees.
Memory per case: the peak resident memory of the process planning it (the batch measures it in
the worker around each case; for the loop, ``ru_maxrss`` of each ``spineplan plan`` process).

Usage::

    python benchmarks/bench_batch.py [--kinds idem-calcified,idem-soft] [--seeds 1] [--scene]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def spineplan(*args: str) -> list[str]:
    return [sys.executable, "-m", "SpinePlannerLib.cli", "--quiet", *args]


def make_cases(root: Path, kinds: list[str], seeds: int) -> Path:
    """Phantom cases and their ``cases.csv`` (t2, ct, sct, tumor_seg)."""
    from SpinePlannerLib.phantom.case import write_phantom

    lines = ["case,t2,ct,sct,tumor_seg"]
    for kind in kinds:
        for seed in range(seeds):
            cid = f"{kind}-{seed}"
            write_phantom(kind, root / cid, seed=seed)
            lines.append(f"{cid},{cid}/t2.nii.gz,{cid}/ct.nii.gz,{cid}/sct.nii.gz,{cid}/labels/tumor.nii.gz")
    (root / "cases.csv").write_text("\n".join(lines) + "\n")
    return root / "cases.csv"


def sequential(csv_path: Path, out: Path, scene: bool) -> tuple[float, list[float]]:
    """Wall time of a loop of ``spineplan plan`` over the CSV rows, and each process's peak RSS (MiB)."""
    import csv

    rows = list(csv.DictReader(csv_path.open()))
    peaks = []  # running maximum over the plan processes so far
    t0 = time.perf_counter()
    for r in rows:
        args = ["plan", "--out", str(out / r["case"])]
        for col in ("t2", "ct", "sct"):
            args += [f"--{col}", str(csv_path.parent / r[col])]
        args += ["--tumor-seg", str(csv_path.parent / r["tumor_seg"])] + ([] if scene else ["--no-scene"])
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run(spineplan(*args), check=True, stdout=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        peaks.append(max(after, before) / 1024.0)  # ru_maxrss: KiB on Linux, max over the children so far
    return time.perf_counter() - t0, peaks


def batch(csv_path: Path, out: Path, workers: int, scene: bool) -> tuple[float, dict]:
    """Wall time of one ``spineplan batch`` (cluster start included) and its batch.json."""
    args = ["batch", str(csv_path), "--out", str(out), "--workers", str(workers)] + ([] if scene else ["--no-scene"])
    t0 = time.perf_counter()
    subprocess.run(spineplan(*args), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, json.loads((out / "batch.json").read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", default="idem-calcified,idem-soft", help="comma-separated phantom kinds")
    ap.add_argument("--seeds", type=int, default=1, help="seeds per kind")
    ap.add_argument("--scene", action="store_true", help="also write scene.mrb per case")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        root = Path(tmp)
        csv_path = make_cases(root / "cases", args.kinds.split(","), args.seeds)
        n = len(csv_path.read_text().splitlines()) - 1
        print(f"{n} cases, {os.cpu_count()} cores, scene {'on' if args.scene else 'off'}")
        seq_s, seq_peaks = sequential(csv_path, root / "seq", args.scene)
        rows = [("sequential `spineplan plan` loop", seq_s, None)]
        mem = {"sequential": [max(seq_peaks)]}  # ru_maxrss of children is a running maximum
        for workers in (1, 2):
            wall, doc = batch(csv_path, root / f"batch{workers}", workers, args.scene)
            failed = [e["case"] for e in doc["cases"] if e["status"] != "done"]
            if failed:
                print(f"warning: cases not planned with {workers} worker(s): {failed}")
            rows.append((f"batch, {workers} worker(s) x {doc['cluster']['threads_per_case']} thread(s)", wall, doc))
            mem[f"batch {workers}"] = [e["peak_rss_mb"] for e in doc["cases"] if e.get("peak_rss_mb")]
        print(f"{'run':<42} {'wall s':>8} {'cases/h':>8} {'ratio vs loop':>14}")
        for name, wall, _ in rows:
            print(f"{name:<42} {wall:8.1f} {n / wall * 3600:8.0f} {seq_s / wall:14.2f}")
        for name, peaks in mem.items():
            if peaks:
                print(f"peak memory per case, {name}: median {statistics.median(peaks):.0f} MiB, max {max(peaks):.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
