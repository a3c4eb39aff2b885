"""Out-of-process MONAI inference: a TorchScript network or a MONAI bundle on one image.

Run as a separate process (inside Slicer too, so the GUI stays responsive and torch never
loads into Slicer's interpreter)::

    python monai_infer.py --model MODEL --input image.nii.gz --output labels.nii.gz [--device auto]

It imports only numpy, SimpleITK, torch and monai. The input is already on the grid the
network expects (the caller resamples); the output label map (argmax over the network's
channels, uint8) has the input's geometry. Progress and the outcome are JSON lines on stdout::

    {"type": "progress", "fraction": 0.4, "message": "window 12/30"}
    {"type": "result", "output": "...", "device": "cpu", "seconds": 3.2, "labels": {...}}
    {"type": "error", "message": "..."}

``MODEL`` is a TorchScript file (``.pt``/``.ts``; its archive may carry ``extra/spineplan.json``
with ``roi_size``, ``labels`` and the normalisation) or a MONAI bundle folder holding
``models/model.ts`` and optionally ``configs/metadata.json`` / ``configs/inference.json`` (whose
``roi_size`` is used when present).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import zipfile
from pathlib import Path


def emit(kind: str, **fields) -> None:
    print(json.dumps({"type": kind, **fields}), flush=True)


def read_torchscript_metadata(path: Path) -> dict:
    """``extra/spineplan.json`` of a TorchScript archive (zip), or {} (no torch needed)."""
    try:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.endswith("extra/spineplan.json"):
                    return json.loads(z.read(name).decode())
    except (zipfile.BadZipFile, OSError, ValueError):
        return {}
    return {}


def resolve_model(model: Path) -> tuple[Path, dict]:
    """The TorchScript file and metadata of a model file or MONAI bundle folder."""
    model = Path(model)
    if model.is_dir():
        ts = next((p for p in (model / "models" / "model.ts", model / "models" / "model.pt") if p.is_file()), None)
        if ts is None:
            raise FileNotFoundError(f"{model}: a MONAI bundle needs models/model.ts (TorchScript)")
        meta = read_torchscript_metadata(ts)
        for cfg in ("metadata.json", "inference.json"):
            f = model / "configs" / cfg
            if f.is_file():
                data = json.loads(f.read_text())
                if "roi_size" in data:
                    meta.setdefault("roi_size", data["roi_size"])
                fmt = data.get("network_data_format", {}).get("outputs", {}).get("pred", {})
                if "channel_def" in fmt:
                    meta.setdefault("labels", fmt["channel_def"])
        return ts, meta
    if not model.is_file():
        raise FileNotFoundError(f"model not found: {model}")
    return model, read_torchscript_metadata(model)


def normalise(arr):
    import numpy as np

    v = arr[arr > 0]
    lo, hi = (np.percentile(v, [1.0, 99.0]) if v.size else (0.0, 1.0))
    return ((arr - lo) / max(hi - lo, 1e-6)).astype(np.float32)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="MONAI sliding-window inference (out of process)")
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--overlap", type=float, default=0.25)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    try:
        import numpy as np
        import SimpleITK as sitk
        import torch
        from monai.inferers import sliding_window_inference

        if args.threads > 0:
            torch.set_num_threads(args.threads)
        ts, meta = resolve_model(Path(args.model))
        device = "cuda" if args.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
        emit("progress", fraction=0.02, message=f"loading {ts.name} on {device}")
        net = torch.jit.load(str(ts), map_location=device)
        net.eval()
        image = sitk.ReadImage(args.input)
        # voxel order [i, j, k] as in the file (SimpleITK gives [k, j, i]); roi_size is i, j, k
        arr = np.ascontiguousarray(np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0))).astype(np.float32)
        x = torch.from_numpy(normalise(arr)[None, None]).to(device)
        roi = tuple(int(r) for r in meta.get("roi_size", (64, 64, 64)))
        # windows larger than the image are padded by MONAI (sizes stay divisible by the strides)
        step = [max(int(r * (1 - args.overlap)), 1) for r in roi]
        total = math.prod(max(math.ceil((s - r) / st), 0) + 1 for s, r, st in zip(arr.shape, roi, step, strict=True))
        done = [0]

        def predictor(patch):
            out = net(patch)
            done[0] += patch.shape[0]
            emit("progress", fraction=0.05 + 0.9 * min(done[0] / max(total, 1), 1.0),
                 message=f"window {done[0]}/{total}")
            return out

        with torch.no_grad():
            logits = sliding_window_inference(x, roi, 1, predictor, overlap=args.overlap, mode="gaussian")
        labels = torch.argmax(logits, dim=1)[0].to("cpu").numpy().astype(np.uint8)
        out = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(labels, (2, 1, 0))))
        out.CopyInformation(image)
        sitk.WriteImage(out, args.output, True)
        emit("result", output=args.output, device=device, seconds=round(time.perf_counter() - t0, 2),
             labels=meta.get("labels", {}), windows=total)
        return 0
    except Exception as exc:  # reported to the parent as one JSON line
        emit("error", message=f"{type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
