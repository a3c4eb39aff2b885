"""Out-of-process MONAI segmentation: the child process of :func:`monai_engine.run_out_of_process`.

Inside Slicer the planner runs this with Slicer's Python (``PythonSlicer``) so that torch never
loads into the GUI process and the GUI stays responsive::

    python -m SpinePlannerLib.segmentation.monai.worker --model MODEL --input [ROLE=]IMAGE [--input ...]
        --output-dir DIR [--structures cord,csf,tumor] [--device auto] [--threads N]

``MODEL`` is a TorchScript file with its sidecar or a MONAI bundle folder (see
:mod:`monai_engine`); each ``--input`` is a NIfTI/NRRD image, optionally prefixed by its role
(default: the model's ``channels`` in order). The first input is the output grid. The child
writes ``DIR/<structure>.nii.gz`` (0/1 uint8) and ``DIR/labels.nii.gz`` (label values) and
streams JSON lines on stdout, one object per line::

    {"type": "progress", "fraction": 0.42, "message": "network window 3/8"}
    {"type": "result", "outputs": {"cord": ".../cord.nii.gz", ...}, "labelmap": ".../labels.nii.gz",
     "labels": {"background": 0, ...}, "device": "cpu", "seconds": 4.1, ...}
    {"type": "error", "kind": "input", "name": "--model", "problem": "...", "message": "..."}

Exit status: 0 success, 2 bad input (``kind: "input"``), 1 any other failure. Imports: numpy,
nibabel, SimpleITK, torch, monai and SpinePlannerLib's L1 modules (no Slicer, no Qt).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path


def emit(msg_type: str, /, **fields) -> None:
    """One JSON line on stdout, flushed at once so that the parent sees it now."""
    sys.stdout.write(json.dumps({"type": msg_type, **fields}) + "\n")
    sys.stdout.flush()


def _progress(fraction: float, message: str) -> None:
    emit("progress", fraction=round(float(fraction), 4), message=message)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="monai_worker", description="MONAI segmentation of one case (JSON-line output)")
    p.add_argument("--model", required=True, help="TorchScript file (.ts/.pt) with sidecar, or MONAI bundle folder")
    p.add_argument("--input", action="append", required=True, metavar="[ROLE=]PATH",
                   help="input image; repeat for multi-channel models; the first one is the output grid")
    p.add_argument("--output-dir", required=True, help="folder for <structure>.nii.gz and labels.nii.gz")
    p.add_argument("--structures", default="cord,csf,tumor", help="comma-separated structure names")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:n]")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Do the work of one invocation; returns the result document (raises on failure)."""
    from SpinePlannerLib.core.errors import InputError
    from SpinePlannerLib.core.imageio import read_volume, write_volume
    from SpinePlannerLib.segmentation.monai import engine as me

    t0 = time.perf_counter()
    spec = me.load_model_spec(args.model)
    if args.threads > 0:
        me._torch().set_num_threads(args.threads)
    structures = tuple(s.strip() for s in args.structures.split(",") if s.strip())
    me.check_structures(spec, structures)
    pairs = [(s.split("=", 1) if "=" in s and not Path(s).exists() else (None, s)) for s in args.input]
    if any(role is None for role, _ in pairs):
        if any(role is not None for role, _ in pairs):
            raise InputError("--input", "give a role for every input (ROLE=PATH) or for none")
        if len(pairs) != len(spec.channels):
            raise InputError("--input", f"the model needs {len(spec.channels)} image(s) "
                                        f"({', '.join(spec.channels)}), got {len(pairs)}")
        pairs = list(zip(spec.channels, [p for _, p in pairs], strict=True))
    volumes = {role: read_volume(path, f"--input {role}") for role, path in pairs}
    reference = volumes[pairs[0][0]]

    def sub(f, m):
        _progress(0.02 + 0.9 * f, m)

    _progress(0.01, f"read {len(volumes)} image(s)")
    labels = me.infer_labels(volumes, spec,
                             reference=reference, device=args.device, progress=sub)
    masks = me.structures_from_labels(labels, spec, structures)
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = {s: str(write_volume(m, out_dir / f"{s}.nii.gz")) for s, m in masks.items()}
    labelmap = str(write_volume(labels, out_dir / "labels.nii.gz"))
    _progress(1.0, "written")
    return {"outputs": outputs, "labelmap": labelmap, "labels": spec.labels,
            "structures": {s: list(v) for s, v in spec.structures.items() if s in structures},
            "voxels": {s: int(m.array.sum()) for s, m in masks.items()},
            "device": labels.meta["device"], "network_shape": labels.meta["network_shape"],
            "network_spacing_mm": labels.meta["network_spacing_mm"], "model": str(spec.path),
            "seconds": round(time.perf_counter() - t0, 2)}


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        from SpinePlannerLib.core.errors import InputError
    except ImportError as exc:  # the package itself is not importable: nothing else can work
        emit("error", kind="runtime", message=f"SpinePlannerLib not importable ({exc})")
        return 1
    try:
        result = run(args)
    except InputError as exc:
        emit("error", kind="input", name=exc.name, problem=exc.problem, message=str(exc))
        return 2
    except Exception as exc:  # reported to the parent as one JSON line; traceback on stderr
        traceback.print_exc(file=sys.stderr)
        emit("error", kind="runtime", message=f"{type(exc).__name__}: {exc}")
        return 1
    emit("result", **result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
