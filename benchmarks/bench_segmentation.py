"""Benchmark: classical segmentation engines against the issue's runtime goals, side by side.

Goals (issue 4): cord + CSF on a 0.8 mm T2 of a 100 x 100 x 60 mm field in < 10 s; tumor from
a seed in < 5 s (2 cores). The T2 is the phantom's, resampled through world coordinates onto
an axis-aligned 0.8 mm grid of that field centred on the tumor (125 x 125 x 75 voxels); the
seed is the phantom's tumor centroid. Also timed, for information: the same steps on the real
cervical T2 (SCT example, 1 mm) and vertebra labelling on the real 3 mm abdominal CT when
``../shared/data`` is present. Each figure is the best of ``--repeat`` runs; the "ratio" column
is measured / goal (below 1 meets the goal).

Usage::

    python benchmarks/bench_segmentation.py [--kind idem-soft] [--repeat 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def _set_threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="idem-soft")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    _set_threads(args.threads)

    import json

    import numpy as np

    repo = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(repo / "SpinePlanner"))
    from SpinePlannerLib.core.geometry import resample
    from SpinePlannerLib.core.imageio import read_volume
    from SpinePlannerLib.core.volume import Volume
    from SpinePlannerLib.phantom.case import write_phantom
    from SpinePlannerLib.segmentation.cord import segment_cord
    from SpinePlannerLib.segmentation.tumor import grow_tumor
    from SpinePlannerLib.segmentation.vertebrae_ct import segment_vertebrae_ct

    def best(fn):
        times, out = [], None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return min(times), out

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        case = Path(tmp) / args.kind
        write_phantom(args.kind, case, seed=0)
        truth = json.loads((case / "truth.json").read_text())
        t2 = read_volume(case / "t2.nii.gz")
        seed = np.asarray(truth["tumor"]["centroid_ras"], float)
        spacing, field = 0.8, np.array([100.0, 100.0, 60.0])
        shape = tuple(int(round(f / spacing)) for f in field)
        aff = np.diag([spacing, spacing, spacing, 1.0])
        aff[:3, 3] = seed - spacing * (np.asarray(shape) - 1) / 2.0
        bench_t2 = Volume(resample(t2, aff, shape, order=1, cval=float(t2.array.min())), aff, "t2")

        secs, cord = best(lambda: segment_cord(bench_t2, contrast="t2"))
        rows.append(("cord + CSF, phantom T2 0.8 mm " + "x".join(map(str, shape)), secs, 10.0,
                     f"found={cord.found}"))
        sac = cord.csf if cord.found else None
        secs, tumor = best(lambda: grow_tumor(bench_t2, seed, allowed=sac))
        rows.append(("tumor from seed, same T2", secs, 5.0, f"{tumor.stats['volume_ml']:.2f} mL"))

    shared = repo.parent / "shared" / "data"
    if shared.is_dir():
        real = read_volume(shared / "sct" / "t2.nii.gz")
        secs, res = best(lambda: segment_cord(real, contrast="t2"))
        rows.append(("cord + CSF, real cervical T2 1 mm 60x55x52", secs, 10.0, f"found={res.found}"))
        ct = read_volume(shared / "totalsegmentator" / "example_ct_sm.nii.gz")
        secs, vr = best(lambda: segment_vertebrae_ct(ct))
        rows.append(("vertebrae + levels, real CT 3 mm 122x101x30", secs, None, ",".join(vr.names.values())))

    print(f"threads={args.threads} cpus={os.cpu_count()} repeat={args.repeat} (best of)")
    print(f"{'step':52s} {'seconds':>8s} {'goal':>6s} {'ratio':>6s}  note")
    for name, secs, goal, note in rows:
        goal_s = f"{goal:6.1f}" if goal else "     -"
        ratio = f"{secs / goal:6.2f}" if goal else "     -"
        print(f"{name:52s} {secs:8.2f} {goal_s} {ratio}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
