"""Benchmark: ``spineplan plan`` with a 512 x 512 x 600 CT (0.5 mm), new code side by side with old.

Goal (issue 10, item 7): the whole plan in < 120 s wall and < 4 GiB peak memory on 2 cores;
the cost must follow the anatomy, not the CT's field of view.

The case (built deterministically, no random numbers): the ``extradural-lytic`` phantom
(seed 0: T9-L1, a lytic vertebral tumor; T1, T2, sCT, CT angiogram and DWI as written by
``spineplan phantom``) whose CT (82 x 82 x 128 voxels of 1 mm, oblique) is replaced by the same
anatomy on a 512 x 512 x 600 grid of 0.5 mm (256 x 256 x 300 mm, the same oblique direction
matrix, centred on the phantom CT's centre): trilinear interpolation of the phantom CT inside its
field of view, the phantom's air value (the median of its voxels below -500 HU) outside; int16 HU,
gzipped NIfTI (301 MB raw). Every other image is the phantom's own. The plan is run as a user
would: ``spineplan --quiet plan --t1 .. --t2 .. --ct BIG --sct .. --angio .. --dwi .. --bval ..
--bvec .. --tumor-seed (truth centroid) --out DIR`` (scene.mrb included), in a child process per
code version; wall time, CPU time (user + system of the child) and peak resident memory are
taken from ``os.wait4`` for that child only.

The old code is the unchanged tree (``--base /work/base``), the new one this checkout. The old
code takes about 15 min here: run it once and keep its figures (``--save-base FILE``), then
compare later runs with ``--base-figures FILE``.

Usage::

    python benchmarks/bench_large_ct.py --build /tmp/bigct            # build the case only
    python benchmarks/bench_large_ct.py --case /tmp/bigct --only base --save-base base.json
    python benchmarks/bench_large_ct.py --case /tmp/bigct --base-figures base.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

GOAL_WALL_S = 120.0
GOAL_RSS_GIB = 4.0
SHAPE = (512, 512, 600)
SPACING_MM = 0.5
KIND = "extradural-lytic"
REPO = Path(__file__).resolve().parents[1]


def _pythonpath(root: Path) -> str:
    return os.pathsep.join(str(root / p) for p in ("SpinePlanner", "DTITractography", "SyntheticCTCheck"))


def build_case(case_dir: Path) -> None:
    """Write the phantom and replace its CT by the 512 x 512 x 600, 0.5 mm CT (see module doc)."""
    import nibabel as nib
    import numpy as np
    from scipy import ndimage

    case_dir.mkdir(parents=True, exist_ok=True)
    src = case_dir / "phantom"
    if not (src / "truth.json").exists():
        subprocess.run([sys.executable, "-m", "SpinePlannerLib.cli", "--quiet", "phantom", "--kind", KIND,
                        "--out", str(src), "--seed", "0"], check=True,
                       env={**os.environ, "PYTHONPATH": _pythonpath(REPO)})
    img = nib.load(str(src / "ct.nii.gz"))
    small = np.asarray(img.dataobj).astype(np.float32)
    a_small = img.affine
    direction = a_small[:3, :3] / np.linalg.norm(a_small[:3, :3], axis=0)
    centre = a_small[:3, :3] @ ((np.array(small.shape) - 1) / 2.0) + a_small[:3, 3]
    a_big = np.eye(4)
    a_big[:3, :3] = direction * SPACING_MM
    a_big[:3, 3] = centre - a_big[:3, :3] @ ((np.array(SHAPE) - 1) / 2.0)
    air = float(np.median(small[small < -500]))
    m = np.linalg.inv(a_small) @ a_big
    big = np.empty(SHAPE, np.int16)
    ii, jj = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    for k in range(SHAPE[2]):  # slab by slab: keeps the builder's memory small
        pts = np.stack([ii, jj, np.full_like(ii, k), np.ones_like(ii)]).reshape(4, -1).astype(np.float64)
        idx = (m @ pts)[:3]
        inside = np.all((idx >= -0.5) & (idx <= (np.array(small.shape) - 0.5)[:, None]), axis=0)
        vals = np.full(idx.shape[1], air, np.float32)
        if inside.any():
            vals[inside] = ndimage.map_coordinates(small, idx[:, inside], order=1, mode="nearest")
        big[:, :, k] = np.rint(vals).reshape(SHAPE[:2]).astype(np.int16)
    out = nib.Nifti1Image(big, a_big)
    out.header.set_xyzt_units("mm")
    nib.save(out, str(case_dir / "ct_512x512x600.nii.gz"))


def plan_command(case_dir: Path, out_dir: Path) -> list[str]:
    src = case_dir / "phantom"
    truth = json.loads((src / "truth.json").read_text())
    seed = ",".join(f"{v:.3f}" for v in truth["tumor"]["centroid_ras"])
    cmd = [sys.executable, "-m", "SpinePlannerLib.cli", "--quiet", "plan", "--out", str(out_dir),
           "--ct", str(case_dir / "ct_512x512x600.nii.gz"), f"--tumor-seed={seed}"]
    for role in ("t1", "t2", "sct", "angio"):
        cmd += [f"--{role}", str(src / f"{role}.nii.gz")]
    cmd += ["--dwi", str(src / "dwi.nii.gz"), "--bval", str(src / "dwi.bval"), "--bvec", str(src / "dwi.bvec")]
    return cmd


def run_plan(root: Path, case_dir: Path, out_dir: Path, threads: int, nice: int) -> dict:
    """Run the plan with the code under ``root`` in a child; wall, CPU and peak RSS of that child."""
    env = {**os.environ, "PYTHONPATH": _pythonpath(root)}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = plan_command(case_dir, out_dir)
    if nice:
        cmd = ["nice", "-n", str(nice)] + cmd
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd="/tmp")
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    plan = json.loads((out_dir / "plan.json").read_text()) if (out_dir / "plan.json").exists() else {}
    return {"code": str(root), "exit": os.waitstatus_to_exitcode(status), "wall_s": round(wall, 1),
            "cpu_s": round(ru.ru_utime + ru.ru_stime, 1), "peak_rss_gib": round(ru.ru_maxrss / 2**20, 2),
            "stages_s": {k: v.get("seconds") for k, v in plan.get("stages", {}).items()},
            "stage_status": {k: v.get("status") for k, v in plan.get("stages", {}).items()}}


def _print(base: dict | None, new: dict | None) -> None:
    rows = [("wall (s)", "wall_s"), ("CPU (s)", "cpu_s"), ("peak RSS (GiB)", "peak_rss_gib")]
    print(f"{'':22}{'today':>10}{'new':>10}{'new/today':>11}")
    for label, key in rows:
        b = base.get(key) if base else None
        n = new.get(key) if new else None
        ratio = f"{n / b:.3f}" if b and n else "-"
        print(f"{label:22}{b if b is not None else '-':>10}{n if n is not None else '-':>10}{ratio:>11}")
    stages = list((new or base or {}).get("stages_s", {}))
    for s in stages:
        b = (base or {}).get("stages_s", {}).get(s)
        n = (new or {}).get("stages_s", {}).get(s)
        ratio = f"{n / b:.3f}" if b and n else "-"
        print(f"  stage {s:16}{b if b is not None else '-':>10}{n if n is not None else '-':>10}{ratio:>11}")
    if new:
        ok = new["wall_s"] < GOAL_WALL_S and new["peak_rss_gib"] < GOAL_RSS_GIB and new["exit"] == 0
        print(f"goal < {GOAL_WALL_S:.0f} s and < {GOAL_RSS_GIB:.0f} GiB: {'met' if ok else 'NOT met'} "
              f"(wall {new['wall_s'] / GOAL_WALL_S:.2f} x goal, memory {new['peak_rss_gib'] / GOAL_RSS_GIB:.2f} x goal)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", type=Path, default=Path("/tmp/bench_large_ct"), help="case folder (built if missing)")
    p.add_argument("--build", type=Path, help="only build the case into this folder")
    p.add_argument("--base", type=Path, default=Path("/work/base"), help="checkout of today's code")
    p.add_argument("--only", choices=("base", "new"), help="run only one side")
    p.add_argument("--base-figures", type=Path, help="JSON of an earlier run of today's code (not rerun)")
    p.add_argument("--save-base", type=Path, help="write today's figures to this JSON")
    p.add_argument("--save-new", type=Path, help="write the new code's figures to this JSON")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--nice", type=int, default=0)
    args = p.parse_args(argv)
    if args.build:
        build_case(args.build)
        return 0
    if not (args.case / "ct_512x512x600.nii.gz").exists():
        build_case(args.case)
    base = new = None
    if args.base_figures:
        base = json.loads(args.base_figures.read_text())
    elif args.only != "new":
        base = run_plan(args.base, args.case, args.case / "plan_today", args.threads, args.nice)
        if args.save_base:
            args.save_base.write_text(json.dumps(base, indent=1))
    if args.only != "base":
        new = run_plan(REPO, args.case, args.case / "plan_new", args.threads, args.nice)
        if args.save_new:
            args.save_new.write_text(json.dumps(new, indent=1))
    _print(base, new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
