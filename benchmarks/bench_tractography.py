"""Benchmark: our DTI fit and deterministic tracking against MRtrix3, side by side.

Same DWI (the phantom's, or the synthetic cord with ``--synthetic``), same fit mask (cord +
canal margin on the DWI grid), same seeding (N random seeds per seed-mask voxel), step size,
angle, length limits and FA cut-off, single thread on both sides:

* fit:      ``fit_tensors`` (WLS, DIPY model)  vs ``dwi2tensor -mask ... -nthreads 0`` (WLS)
* tracking: ``track`` (DIPY EuDX on the tensor)  vs ``tckgen -algorithm Tensor_Det -nthreads 0``

MRtrix times are wall-clock times of the commands; "net" figures subtract the time of
``mrinfo`` on the same image (process start-up and header parsing; image loading stays in). Each
measurement is the best of ``--repeat`` runs. Goals (issue 3): our fit no slower than 2x
MRtrix3, our tracking at least 0.5x its throughput.

Usage::

    python benchmarks/bench_tractography.py [--kind intramedullary-displacing] [--synthetic]
                                            [--seeds-per-voxel 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# single thread on our side too: BLAS/OpenMP pools must be sized before numpy is imported
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
for sub in ("SpinePlanner", "DTITractography"):
    sys.path.insert(0, str(REPO / sub))

from DTITractographyLib.analysis import prepare_masks  # noqa: E402
from DTITractographyLib.params import TrackingParams  # noqa: E402
from DTITractographyLib.tensor_fit import fit_tensors  # noqa: E402
from DTITractographyLib.tracking import track  # noqa: E402
from SpinePlannerLib.core.dwi_io import ras_to_fsl_bvecs, read_dwi  # noqa: E402
from SpinePlannerLib.core.imageio import read_volume, write_volume  # noqa: E402


def _load_case(args, work: Path):
    """(dwi, cord, tumor, description, dwi path, bval path, bvec path)."""
    if not args.synthetic:
        try:
            from SpinePlannerLib.phantom.case import write_phantom
        except ImportError:
            print("phantom generator not available; using the synthetic cord (--synthetic)")
        else:
            case = work / "phantom"
            write_phantom(args.kind, case, seed=0)
            dwi = read_dwi(case / "dwi.nii.gz", case / "dwi.bval", case / "dwi.bvec")
            return (dwi, read_volume(case / "labels" / "cord.nii.gz"), read_volume(case / "labels" / "tumor.nii.gz"),
                    f"phantom {args.kind}", case / "dwi.nii.gz", case / "dwi.bval", case / "dwi.bvec")
    from DTITractographyLib.synthetic import make_synthetic_cord

    syn = make_synthetic_cord("displacing", length_mm=120.0, n_directions=30)
    dwi = syn.dwi
    write_volume(dwi.volume, work / "dwi.nii.gz")
    np.savetxt(work / "dwi.bval", dwi.bvals[None, :], fmt="%g")
    np.savetxt(work / "dwi.bvec", ras_to_fsl_bvecs(dwi.bvecs_ras, dwi.volume.affine).T, fmt="%.8f")
    return dwi, syn.cord, syn.tumor, "synthetic displacing cord (120 mm)", work / "dwi.nii.gz", \
        work / "dwi.bval", work / "dwi.bvec"


def _best(fn, repeat: int):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")


def _tck_count(path: Path) -> int:
    import nibabel as nib

    return len(nib.streamlines.load(str(path), lazy_load=False).streamlines)


def _agreement_mm(ours, tck: Path) -> tuple[float, float]:
    """Median / 95th-percentile distance (mm) from our streamline points to MRtrix3's: both in
    RAS, so a frame error (bvec flip, affine) would show as millimetres here."""
    import nibabel as nib
    from scipy.spatial import cKDTree

    theirs = np.concatenate([np.asarray(s) for s in nib.streamlines.load(str(tck)).streamlines])
    d, _ = cKDTree(theirs).query(np.concatenate(ours)[::7])
    return float(np.median(d)), float(np.percentile(d, 95))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", default="intramedullary-displacing")
    p.add_argument("--synthetic", action="store_true", help="use the synthetic cord instead of the phantom")
    p.add_argument("--seeds-per-voxel", type=int, default=4)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    for tool in ("dwi2tensor", "tckgen", "mrinfo"):
        if shutil.which(tool) is None:
            print(f"MRtrix3 '{tool}' not found: apt-get install -y mrtrix3", file=sys.stderr)
            return 2
    params = TrackingParams(seeds_per_voxel=args.seeds_per_voxel, n_threads=1)
    with tempfile.TemporaryDirectory(prefix="bench-tract-") as tmp:
        work = Path(tmp)
        dwi, cord, tumor, what, dwi_path, bval, bvec = _load_case(args, work)
        masks = prepare_masks(dwi, cord, tumor)
        canal = masks.canal.array > 0
        write_volume(masks.canal, work / "canal.nii.gz")
        write_volume(masks.seed, work / "seed.nii.gz")
        grad = ["-fslgrad", str(bvec), str(bval)]
        print(f"data: {what}; DWI {dwi.volume.shape3} x {len(dwi.bvals)} volumes, voxels "
              f"{np.round(dwi.volume.spacing, 2).tolist()} mm; fit mask {int(canal.sum())} voxels, "
              f"{int(masks.seed.array.sum())} seed voxels x {args.seeds_per_voxel}")

        fit_tensors(dwi, canal)  # warm-up (imports)
        t_fit, tensors = _best(lambda: fit_tensors(dwi, canal), args.repeat)
        t_track, sl = _best(lambda: track(tensors, masks.seed.array > 0, canal, params=params), args.repeat)

        t_info, _ = _best(lambda: _run(["mrinfo", "-quiet", str(dwi_path)] + grad), args.repeat)
        t_fit_mr, _ = _best(lambda: _run(["dwi2tensor", "-quiet", "-force", "-nthreads", "0", "-mask",
                                          str(work / "canal.nii.gz"), str(dwi_path), str(work / "dt.mif")] + grad),
                            args.repeat)
        tck = work / "mrtrix.tck"
        t_track_mr, _ = _best(lambda: _run(
            ["tckgen", "-quiet", "-force", "-nthreads", "0", "-algorithm", "Tensor_Det", str(dwi_path), str(tck),
             "-seed_random_per_voxel", str(work / "seed.nii.gz"), str(args.seeds_per_voxel), "-select", "0",
             "-mask", str(work / "canal.nii.gz"), "-step", str(params.step_size_mm), "-angle",
             str(params.max_angle_deg), "-cutoff", str(params.fa_stop), "-minlength", str(params.min_length_mm),
             "-maxlength", str(params.max_length_mm)] + grad), args.repeat)
        n_mr = _tck_count(tck)
        agreement = _agreement_mm(sl, tck)

    fit_mr_net = max(t_fit_mr - t_info, 1e-6)
    track_mr_net = max(t_track_mr - t_info, 1e-6)
    ours_tp = len(sl) / t_track
    mr_tp_raw = n_mr / t_track_mr
    mr_tp_net = n_mr / track_mr_net
    rows = [
        ("tensor fit (s)", f"{t_fit:.3f}", f"{t_fit_mr:.3f} raw / {fit_mr_net:.3f} net",
         f"{t_fit / t_fit_mr:.2f} raw / {t_fit / fit_mr_net:.2f} net", "<= 2.0"),
        ("streamlines", f"{len(sl)}", f"{n_mr}", f"{len(sl) / max(n_mr, 1):.2f}", ""),
        ("tracking (s)", f"{t_track:.3f}", f"{t_track_mr:.3f} raw / {track_mr_net:.3f} net", "", ""),
        ("throughput (streamlines/s)", f"{ours_tp:.0f}", f"{mr_tp_raw:.0f} raw / {mr_tp_net:.0f} net",
         f"{ours_tp / mr_tp_raw:.2f} raw / {ours_tp / mr_tp_net:.2f} net", ">= 0.5"),
    ]
    print(f"agreement: our streamline points lie {agreement[0]:.2f} mm (median) / {agreement[1]:.2f} mm (95th pct) "
          "from MRtrix3's (same RAS frame)")
    print(f"MRtrix start-up + header (mrinfo): {t_info:.3f} s; best of {args.repeat} runs, single thread")
    print(f"{'':28s} {'ours (DIPY)':>14s} {'MRtrix3':>28s} {'ratio ours/MRtrix':>24s} {'goal':>8s}")
    for name, a, b, c, goal in rows:
        print(f"{name:28s} {a:>14s} {b:>28s} {c:>24s} {goal:>8s}")
    fit_ok = t_fit / fit_mr_net <= 2.0
    track_ok = ours_tp / mr_tp_net >= 0.5
    print(f"goals: fit {'met' if fit_ok else 'NOT met'}, tracking throughput {'met' if track_ok else 'NOT met'} "
          "(net figures)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
