"""Train the project's own small MONAI network on its phantoms (reproducible, CPU, minutes).

The network is a 3D UNet (MONAI ``UNet``, channels 8-16-32-64) that labels a T2-weighted image
on a RAS-aligned isotropic grid of ``SPACING_MM``: 0 background, 1 cord, 2 CSF (thecal sac
without cord and tumor), 3 tumor. Training cases are the digital phantoms of every kind for a
few generator seeds (``spineplan phantom``), with augmentation (left-right flips, intensity
scale/shift, Gaussian noise, bias-like smooth intensity fields, random crops centred on
foreground half the time). Everything is seeded: the same command gives the same file.

The result is a TorchScript file whose archive carries ``extra/spineplan.json`` (labels,
spacing, patch size, intensity normalisation), read by :mod:`seg_monai` without torch and by
:mod:`monai_infer` at inference. It proves the pluggable MONAI path; it is not a clinical model.

Usage (needs the ``ml`` extra: ``pip install .[ml]``)::

    python -m SpinePlannerLib.monai_train --out phantom_unet.pt [--iterations 400] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SPACING_MM = 1.2
PATCH = (64, 64, 64)
LABELS = {"0": "background", "1": "cord", "2": "csf", "3": "tumor"}
CHANNELS = (8, 16, 32, 64)


def phantom_training_pair(case_dir: Path):
    """(image, label) arrays of one phantom case on the RAS-aligned ``SPACING_MM`` grid."""
    from .geometry import resample
    from .imageio import read_volume
    from .seg_common import working_grid

    t2 = read_volume(case_dir / "t2.nii.gz")
    grid = working_grid(t2, spacing_mm=SPACING_MM, max_anisotropy=1.0, min_spacing_mm=SPACING_MM * 1.01)
    img = grid.array.astype(np.float32)
    lab = np.zeros(grid.shape3, np.uint8)
    for value, name in ((2, "csf"), (1, "cord"), (3, "tumor")):
        m = read_volume(case_dir / "labels" / f"{name}.nii.gz")
        frac = resample(m.with_array((m.array > 0).astype(np.float32)), grid.affine, grid.shape3, order=1)
        lab[frac >= 0.5] = value
    return normalise(img), lab


def normalise(img: np.ndarray) -> np.ndarray:
    """Intensity normalisation shared by training and inference: 1st..99th percentile of the
    non-zero voxels mapped to 0..1."""
    v = img[img > 0]
    lo, hi = (np.percentile(v, [1.0, 99.0]) if v.size else (0.0, 1.0))
    return ((img - lo) / max(hi - lo, 1e-6)).astype(np.float32)


def _augment(img, lab, rng):
    if rng.random() < 0.5:
        img, lab = img[::-1], lab[::-1]  # left-right
    img = img * rng.uniform(0.85, 1.15) + rng.uniform(-0.08, 0.08)
    # smooth multiplicative field (coil bias) along the long axis
    ramp = 1.0 + rng.uniform(-0.1, 0.1) * np.linspace(-1, 1, img.shape[2])[None, None, :]
    img = img * ramp + rng.normal(0.0, rng.uniform(0.0, 0.05), img.shape)
    return np.ascontiguousarray(img, np.float32), np.ascontiguousarray(lab)


def _crop(img, lab, rng):
    shape = np.asarray(img.shape)
    pad = np.maximum(np.asarray(PATCH) - shape, 0)
    if pad.any():
        img = np.pad(img, [(0, p) for p in pad])
        lab = np.pad(lab, [(0, p) for p in pad])
        shape = np.asarray(img.shape)
    if rng.random() < 0.5 and lab.any():
        centre = np.argwhere(lab > 0)[rng.integers(int((lab > 0).sum()))]
    else:
        centre = rng.integers(0, shape)
    lo = np.clip(centre - np.asarray(PATCH) // 2, 0, shape - np.asarray(PATCH))
    sl = tuple(slice(int(a), int(a) + p) for a, p in zip(lo, PATCH, strict=True))
    return img[sl], lab[sl]


def train(out: Path, *, seeds=(0, 1), iterations: int = 400, batch: int = 2, lr: float = 3e-3,
          log=print) -> dict:
    """Generate phantoms, train, save TorchScript with metadata; returns the metadata."""
    import torch
    from monai.losses import DiceCELoss
    from monai.networks.nets import UNet
    from monai.utils import set_determinism

    from .phantom import PHANTOM_KINDS, write_phantom

    set_determinism(seed=0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in seeds:
            for kind in PHANTOM_KINDS:
                case = Path(tmp) / f"{kind}-{s}"
                write_phantom(kind, case, seed=int(s))
                pairs.append(phantom_training_pair(case))
                log(json.dumps({"type": "progress", "message": f"phantom {kind} seed {s}"}))
    net = UNet(spatial_dims=3, in_channels=1, out_channels=len(LABELS), channels=CHANNELS,
               strides=(2, 2, 2), num_res_units=1)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=iterations)
    t0 = time.perf_counter()
    net.train()
    for it in range(iterations):
        xs, ys = [], []
        for _ in range(batch):
            img, lab = pairs[int(rng.integers(len(pairs)))]
            img, lab = _crop(*_augment(img, lab, rng), rng)
            xs.append(img[None])
            ys.append(lab[None].astype(np.int64))
        x = torch.from_numpy(np.stack(xs))
        y = torch.from_numpy(np.stack(ys))
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        sched.step()
        if it % 20 == 0 or it == iterations - 1:
            log(json.dumps({"type": "progress", "fraction": (it + 1) / iterations,
                            "message": f"iteration {it + 1}/{iterations} loss {float(loss):.4f}"}))
    net.eval()
    meta = {"format": "spineplan-monai-1", "labels": LABELS, "spacing_mm": SPACING_MM, "roi_size": list(PATCH),
            "input": "T2-weighted MRI", "normalisation": "percentile 1..99 of non-zero voxels -> 0..1",
            "network": f"monai.networks.nets.UNet channels={list(CHANNELS)} strides=[2,2,2] num_res_units=1",
            "training": {"phantom_seeds": list(map(int, seeds)), "iterations": iterations, "batch": batch,
                         "seconds": round(time.perf_counter() - t0, 1), "torch": torch.__version__},
            "note": "trained on the project's digital phantoms only; proves the MONAI path, not for clinical use"}
    scripted = torch.jit.script(net)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(scripted, str(out), _extra_files={"spineplan.json": json.dumps(meta)})
    return meta


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="train the phantom UNet (MONAI, CPU)")
    p.add_argument("--out", required=True)
    p.add_argument("--iterations", type=int, default=400)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    meta = train(Path(args.out), seeds=args.seeds, iterations=args.iterations)
    print(json.dumps({"type": "result", "output": str(args.out), "meta": meta}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
