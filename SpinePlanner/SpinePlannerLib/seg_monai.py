"""The MONAI engine: run a network out of process and carry its labels onto the reference grid.

This module never imports torch or monai. It resamples the image onto the grid the network
expects (RAS-aligned, isotropic ``spacing_mm`` from the model's metadata), writes it to a
temporary NIfTI, runs :mod:`monai_infer` in a separate Python process (``python`` may be
another interpreter, e.g. one that has the ``ml`` extra; inside Slicer the shell passes
Slicer's own), relays its JSON-line progress and reads the label map back. Label names come
from the model's metadata (TorchScript ``extra/spineplan.json`` or a bundle's configs).

Selectable per structure: the segmentation stage runs the classical engines first and, for
the structures whose engine is ``"monai"``, replaces their label maps by the network's; when
torch/monai or the model are missing it says so and keeps the classical result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .context import Progress, no_progress
from .errors import InputError
from .geometry import resample
from .imageio import read_volume, write_volume
from .monai_infer import resolve_model
from .seg_common import labels_to_grid, ras_aligned_view
from .volume import Volume

INFER_SCRIPT = Path(__file__).with_name("monai_infer.py")
DEFAULT_MODEL = Path(__file__).with_name("models") / "phantom_unet.pt"
"""The project's own network (trained on the phantoms by :mod:`monai_train`)."""


def ml_available(python: str | None = None, *, timeout_s: float = 120.0) -> tuple[bool, str]:
    """Whether ``python`` (default: this interpreter) can import torch and monai, checked in a
    subprocess so this process never loads them. Returns ``(ok, reason)``."""
    python = python or sys.executable
    try:
        proc = subprocess.run([python, "-c", "import torch, monai; print(torch.__version__, monai.__version__)"],
                              capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"could not run {python}: {exc}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["import failed"])[-1]
        return False, f"torch/monai not importable by {python} ({last}); install the ml extra: pip install .[ml]"
    return True, proc.stdout.strip()


@dataclass
class MonaiResult:
    """Label map on the input grid with names, and the run's facts."""

    labels: Volume
    names: dict = field(default_factory=dict)  # value -> structure name
    device: str = "cpu"
    seconds: float = 0.0
    model: str = ""
    meta: dict = field(default_factory=dict)


def network_grid(volume: Volume, spacing_mm: float) -> Volume:
    """``volume`` resampled (linear, through world coordinates) onto a RAS-aligned isotropic grid
    of ``spacing_mm`` covering the same field of view."""
    view = ras_aligned_view(volume)
    extent = (np.asarray(view.shape3) - 1) * view.spacing
    shape = tuple(int(np.floor(e / spacing_mm)) + 1 for e in extent)
    aff = view.affine.copy()
    aff[:3, :3] = view.direction * spacing_mm
    return Volume(resample(view, aff, shape, order=1, cval=0.0), aff, volume.name)


def run_monai_model(volume: Volume, model, *, python: str | None = None, device: str = "auto",
                    timeout_s: float = 1800.0, progress: Progress = no_progress) -> MonaiResult:
    """Run ``model`` (TorchScript file or MONAI bundle folder) on ``volume`` out of process.

    Raises
    ------
    InputError
        The model path does not exist or is not a TorchScript file / bundle.
    RuntimeError
        The inference process failed (its error line is in the message).
    """
    model = Path(model)
    try:
        ts, meta = resolve_model(model)
    except FileNotFoundError as exc:
        raise InputError("segmentation model", str(exc)) from None
    spacing = float(meta.get("spacing_mm", 1.0))
    grid = network_grid(volume, spacing)
    python = python or sys.executable
    with tempfile.TemporaryDirectory(prefix="spineplan-monai-") as tmp:
        src, dst = Path(tmp) / "image.nii.gz", Path(tmp) / "labels.nii.gz"
        write_volume(grid, src)
        cmd = [python, str(INFER_SCRIPT), "--model", str(model), "--input", str(src), "--output", str(dst),
               "--device", device]
        env = {**os.environ, "PYTHONNOUSERSITE": "1"}
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        result, error = None, None
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue
            if msg.get("type") == "progress":
                progress(float(msg.get("fraction", 0.0)), msg.get("message", ""))
            elif msg.get("type") == "result":
                result = msg
            elif msg.get("type") == "error":
                error = msg.get("message", "")
            if time.perf_counter() - t0 > timeout_s:
                proc.kill()
                raise RuntimeError(f"MONAI inference exceeded {timeout_s:.0f} s")
        stderr = proc.stderr.read() if proc.stderr else ""
        proc.wait()
        if proc.returncode != 0 or result is None:
            detail = error or (stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"MONAI inference failed: {detail}")
        out = read_volume(dst)
    labels_net = grid.with_array(out.array.astype(np.uint8))
    labels = labels_to_grid(labels_net.array, labels_net, volume)
    names = {int(k): str(v) for k, v in (result.get("labels") or meta.get("labels") or {}).items()}
    return MonaiResult(labels, names, result.get("device", "cpu"), float(result.get("seconds", 0.0)), str(model), meta)


def apply_monai_engine(ctx, params, section: dict, progress: Progress = no_progress) -> None:
    """Replace the label maps of the structures whose engine is ``"monai"`` (cord -> cord and
    csf, tumor -> tumor) by the network's, on the reference grid. User-given labels are kept.
    Records ``section["monai"]``; without torch/monai or a model it warns and keeps the
    classical results."""
    wanted = [s for s, e in (("cord", params.cord_engine), ("tumor", params.tumor_engine)) if e == "monai"]
    info: dict = {"structures": wanted, "ran": False}
    section["monai"] = info
    if not wanted:
        return
    model = Path(params.model_path) if params.model_path else DEFAULT_MODEL
    info["model"] = str(model)
    python = params.python or sys.executable
    ok, why = ml_available(python)
    if not ok:
        info["reason"] = why
        ctx.warn(f"MONAI engine not run ({why}); classical results kept")
        return
    ref = ctx.reference
    result = run_monai_model(ref, model, python=python, device=params.device, progress=progress)
    info.update(ran=True, device=result.device, seconds=round(result.seconds, 2),
                labels={str(k): v for k, v in result.names.items()},
                training=result.meta.get("training"), note=result.meta.get("note", ""))
    by_name = {v: k for k, v in result.names.items()}
    arr = result.labels.array
    replaced = []

    def take(name: str, values) -> None:
        mask = np.isin(arr, values)
        if name in ctx.given_labels or not mask.any():
            return
        ctx.labels[name] = ref.with_array(mask.astype(np.uint8), name=name)
        replaced.append(name)

    if "cord" in wanted and "cord" in by_name:
        take("cord", [by_name["cord"]])
        sac_values = [by_name[n] for n in ("cord", "csf", "tumor") if n in by_name]
        take("csf", sac_values)
    if "tumor" in wanted and "tumor" in by_name:
        take("tumor", [by_name["tumor"]])
    info["replaced"] = replaced
    if "cord" in replaced:
        section["engines"]["cord"] = "monai"
        section["cord"].update(found=True, method="monai", source="monai", approximate=False,
                               reason=f"MONAI network {model.name}")
    if "tumor" in replaced:
        section["engines"]["tumor"] = "monai"
        section["tumor"] = {"source": "monai", "method": f"MONAI network {model.name} (no seed needed)",
                            "volume_ml": round(float(ctx.labels["tumor"].array.sum() * ref.voxel_volume_ml), 3)}
        ctx.plan.setdefault("tumor", {})["source"] = "segmentation (MONAI)"
