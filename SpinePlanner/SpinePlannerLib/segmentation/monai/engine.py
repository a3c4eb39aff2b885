"""MONAI segmentation engine: run a 3D network on a :class:`Volume` and return label maps (L1).

A model is either

* a TorchScript file (``.ts`` or ``.pt``) with a JSON sidecar ``<model>.json`` (the same name
  with ``.json`` instead of ``.ts``/``.pt``; a copy may also be embedded in the archive as the
  extra file ``spineplanner.json``), or
* a MONAI bundle directory (https://docs.monai.io/en/stable/mb_specification.html) holding
  ``configs/inference.json`` and ``models/model.ts`` (TorchScript) or ``models/model.pt`` (state
  dict of the ``network_def`` of ``inference.json``). Its sidecar is
  ``configs/spineplanner.json``; without one the geometry is read from the bundle itself
  (``pixdim`` and ``roi_size`` in ``inference.json``, output ``channel_def`` in
  ``configs/metadata.json``).

The sidecar says how the network sees images (all keys but ``labels`` have defaults)::

    {"spacing_mm": [1.5, 1.5, 1.5],        # isotropic or not, RAS-aligned network grid (mm)
     "roi_size": [64, 64, 64],              # sliding-window patch (voxels)
     "channels": ["t2"],                    # image role of each input channel
     "labels": {"background": 0, "cord": 1, "csf": 2, "tumor": 3},   # output channel -> value
     "structures": {"cord": [1], "csf": [1, 2], "tumor": [3]},       # structure = union of labels
     "intensity": {"mode": "percentile", "lower": 1, "upper": 99},   # per channel, native voxels
     "inference": {"overlap": 0.25, "sw_batch_size": 1, "mode": "gaussian"}}

Pipeline: each input is resampled (trilinear, through world coordinates with
:mod:`geometry`) onto a RAS-aligned grid of ``spacing_mm`` that covers the reference volume,
normalised, and run through ``monai.inferers.sliding_window_inference``; the softmax
probabilities are resampled back onto the reference grid channel by channel and the label of
highest probability is kept. torch and monai are imported inside the functions that need them,
so this module imports without the ``ml`` extra (``pip install spineplan[ml]``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.geometry import resample
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.planning.context import Progress, no_progress

SIDECAR_FORMAT = "spineplanner-monai-model/1"
EMBEDDED_SIDECAR = "spineplanner.json"
BUNDLE_SIDECAR = "configs/spineplanner.json"
MODELS_DIR = Path(__file__).resolve().parent / "models"
PHANTOM_MODEL = MODELS_DIR / "phantom_unet_t2.ts"
"""The network the project trains on its own phantoms (``Utilities/train_phantom_unet.py``)."""

INTENSITY_MODES = ("percentile", "zscore", "range", "none")


# -- model description ----------------------------------------------------------------------------
@dataclass
class ModelSpec:
    """What the engine needs to know about a network.

    Attributes
    ----------
    path : Path
        The model as given (TorchScript file or bundle directory).
    weights : Path
        The file holding the network (``.ts``/``.pt``).
    kind : str
        ``"torchscript"`` (a TorchScript archive) or ``"state_dict"`` (a bundle's ``model.pt``,
        built from ``configs/inference.json`` ``network_def``).
    spacing_mm : tuple of 3 floats
        Voxel size of the network's RAS-aligned grid (mm).
    roi_size : tuple of 3 ints
        Sliding-window patch size (voxels).
    channels : tuple of str
        Image role of each input channel (e.g. ``("t2",)``).
    labels : dict[str, int]
        Name -> label value; value ``v`` is output channel ``v``.
    structures : dict[str, tuple[int, ...]]
        Structure name -> the label values whose union it is (default: each non-zero label alone).
    intensity : list of dict
        Normalisation per channel (see :func:`normalise_intensity`).
    overlap, sw_batch_size, blend_mode : sliding-window settings.
    sidecar : dict
        The raw sidecar document (training record included).
    """

    path: Path
    weights: Path
    kind: str
    spacing_mm: tuple[float, float, float]
    roi_size: tuple[int, int, int]
    channels: tuple[str, ...]
    labels: dict[str, int]
    structures: dict[str, tuple[int, ...]]
    intensity: list[dict]
    overlap: float = 0.25
    sw_batch_size: int = 1
    blend_mode: str = "gaussian"
    bundle_dir: Path | None = None
    sidecar: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return max(self.labels.values()) + 1


def _read_json(path: Path, name: str) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(name, f"{path.name} is not readable JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError(name, f"{path.name} must hold a JSON object")
    return doc


def _embedded_sidecar(archive: Path) -> dict | None:
    """The ``spineplanner.json`` extra file of a TorchScript archive (a zip), read without torch."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for entry in zf.namelist():
                if entry.endswith("/extra/" + EMBEDDED_SIDECAR):
                    return json.loads(zf.read(entry).decode("utf-8"))
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return None


def _find_first(obj, match):
    """Depth-first search of nested dicts/lists for the first value ``match(value) -> result``
    turns into something other than None; returns that result."""
    found = match(obj)
    if found is not None:
        return found
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else ()
    for v in values:
        found = _find_first(v, match)
        if found is not None:
            return found
    return None


def _find_key(obj, key: str):
    """Value of the first ``key`` found in nested dicts/lists (MONAI bundle configs)."""
    return _find_first(obj, lambda o: o.get(key) if isinstance(o, dict) and key in o else None)


def _find_target(obj, fragment: str) -> dict | None:
    """First component (``{"_target_": ...}``) whose target name contains ``fragment``."""
    return _find_first(obj, lambda o: o if isinstance(o, dict) and fragment in str(o.get("_target_", "")) else None)


def _sidecar_from_bundle(bundle: Path, name: str) -> dict:
    """Best-effort sidecar from a bundle's own ``inference.json`` and ``metadata.json``."""
    inference = _read_json(bundle / "configs" / "inference.json", name)
    meta_path = bundle / "configs" / "metadata.json"
    meta = _read_json(meta_path, name) if meta_path.is_file() else {}
    doc: dict = {}
    pixdim = _find_key(inference, "pixdim")
    if isinstance(pixdim, (int, float)) or (isinstance(pixdim, list) and all(isinstance(v, (int, float))
                                                                              for v in pixdim)):
        doc["spacing_mm"] = pixdim
    roi = _find_key(inference, "roi_size")
    if not (isinstance(roi, list) and all(isinstance(v, int) for v in roi)):
        roi = _find_key(meta.get("network_data_format", {}).get("inputs", {}), "spatial_shape")
    if isinstance(roi, list) and all(isinstance(v, int) for v in roi):
        doc["roi_size"] = roi
    outputs = meta.get("network_data_format", {}).get("outputs", {})
    channel_def = _find_key(outputs, "channel_def")
    if isinstance(channel_def, dict):
        try:
            doc["labels"] = {str(v): int(k) for k, v in channel_def.items()}
        except ValueError:
            pass
    rng = _find_target(inference, "ScaleIntensityRange")
    if rng is not None and all(isinstance(rng.get(k), (int, float)) for k in ("a_min", "a_max")):
        doc["intensity"] = {"mode": "range", "a_min": rng["a_min"], "a_max": rng["a_max"],
                            "b_min": rng.get("b_min", 0.0), "b_max": rng.get("b_max", 1.0),
                            "clip": bool(rng.get("clip", False))}
    elif _find_target(inference, "NormalizeIntensity") is not None:
        nz = _find_target(inference, "NormalizeIntensity").get("nonzero", False)
        doc["intensity"] = {"mode": "zscore", "nonzero": bool(nz) if isinstance(nz, bool) else False}
    missing = [k for k in ("spacing_mm", "roi_size", "labels") if k not in doc]
    if missing:
        raise InputError(name, f"bundle does not state {', '.join(missing)} in a form the engine can read; "
                               f"add {BUNDLE_SIDECAR} with spacing_mm, roi_size, channels, labels and intensity")
    return doc


def _triple(value, key: str, name: str, kind=float) -> tuple:
    vals = [value] * 3 if isinstance(value, (int, float)) else value
    if not isinstance(vals, (list, tuple)) or len(vals) != 3:
        raise InputError(name, f"sidecar {key} must be a number or a list of 3 numbers, got {value!r}")
    try:
        out = tuple(kind(v) for v in vals)
    except (TypeError, ValueError):
        raise InputError(name, f"sidecar {key} must hold numbers, got {value!r}") from None
    if any(v <= 0 for v in out):
        raise InputError(name, f"sidecar {key} must be positive, got {value!r}")
    return out


def _intensity_spec(value, n_channels: int, name: str) -> list[dict]:
    specs = value if isinstance(value, list) else [value or {"mode": "percentile"}] * n_channels
    if len(specs) != n_channels:
        raise InputError(name, f"sidecar intensity lists {len(specs)} entries for {n_channels} channel(s)")
    for s in specs:
        if not isinstance(s, dict) or s.get("mode", "percentile") not in INTENSITY_MODES:
            raise InputError(name, f"sidecar intensity mode must be one of {INTENSITY_MODES}, got {s!r}")
        if s.get("mode") == "range" and not all(k in s for k in ("a_min", "a_max")):
            raise InputError(name, "sidecar intensity mode 'range' needs a_min and a_max")
    return [dict(s) for s in specs]


def spec_from_sidecar(doc: dict, *, path: Path, weights: Path, kind: str, bundle_dir: Path | None = None) -> ModelSpec:
    """Validate a sidecar document and build a :class:`ModelSpec` (raises :class:`InputError`)."""
    name = str(path)
    labels = doc.get("labels")
    if not isinstance(labels, dict) or not labels:
        raise InputError(name, "sidecar must map label names to values, e.g. {\"background\": 0, \"cord\": 1}")
    try:
        labels = {str(k): int(v) for k, v in labels.items()}
    except (TypeError, ValueError):
        raise InputError(name, f"sidecar label values must be integers, got {doc['labels']!r}") from None
    if sorted(labels.values()) != list(range(len(labels))):
        raise InputError(name, f"sidecar label values must be 0..{len(labels) - 1} (one per output channel), "
                               f"got {sorted(labels.values())}")
    structures_doc = doc.get("structures") or {k: [v] for k, v in labels.items() if v != 0}
    structures = {}
    for key, values in structures_doc.items():
        vals = tuple(int(v) for v in (values if isinstance(values, list) else [values]))
        if any(v not in labels.values() or v == 0 for v in vals):
            raise InputError(name, f"sidecar structure {key!r} uses unknown or background label values {vals}")
        structures[str(key)] = vals
    channels = doc.get("channels", ["image"])
    if isinstance(channels, str):
        channels = [channels]
    if not channels or not all(isinstance(c, str) for c in channels):
        raise InputError(name, f"sidecar channels must list the image role of each input channel, got {channels!r}")
    inference = doc.get("inference", {})
    overlap = float(inference.get("overlap", 0.25))
    if not 0.0 <= overlap < 1.0:
        raise InputError(name, f"sidecar inference overlap must be in [0, 1), got {overlap}")
    return ModelSpec(
        path=path, weights=weights, kind=kind,
        spacing_mm=_triple(doc.get("spacing_mm", 1.5), "spacing_mm", name),
        roi_size=_triple(doc.get("roi_size", 64), "roi_size", name, int),
        channels=tuple(channels), labels=labels, structures=structures,
        intensity=_intensity_spec(doc.get("intensity"), len(channels), name),
        overlap=overlap, sw_batch_size=int(inference.get("sw_batch_size", 1)),
        blend_mode=str(inference.get("mode", "gaussian")), bundle_dir=bundle_dir, sidecar=dict(doc))


def load_model_spec(model_path) -> ModelSpec:
    """Describe a model (TorchScript file or MONAI bundle directory) without loading torch.

    Parameters
    ----------
    model_path : str or Path
        ``<name>.ts`` / ``<name>.pt`` with ``<name>.json`` beside it (or embedded), or a bundle
        directory (``configs/inference.json`` + ``models/model.ts`` or ``models/model.pt``).

    Raises
    ------
    InputError
        Missing path, a bundle without the expected files, or an unusable sidecar.
    """
    p = Path(model_path)
    name = str(p)
    if not p.exists():
        raise InputError(name, "model not found; give a TorchScript file (.ts/.pt) or a MONAI bundle folder")
    if p.is_dir():
        inference = p / "configs" / "inference.json"
        if not inference.is_file():
            raise InputError(name, "not a MONAI bundle: configs/inference.json is missing")
        ts, pt = p / "models" / "model.ts", p / "models" / "model.pt"
        if ts.is_file():
            weights, kind = ts, "torchscript"
        elif pt.is_file():
            weights, kind = pt, "state_dict"
        else:
            raise InputError(name, "MONAI bundle has neither models/model.ts nor models/model.pt")
        side = p / BUNDLE_SIDECAR
        doc = _read_json(side, name) if side.is_file() else _sidecar_from_bundle(p, name)
        return spec_from_sidecar(doc, path=p, weights=weights, kind=kind, bundle_dir=p)
    if p.suffix.lower() not in (".ts", ".pt", ".pth"):
        raise InputError(name, f"unsupported model file type {p.suffix!r}; expected a TorchScript .ts/.pt file "
                               "or a MONAI bundle folder")
    side = p.with_suffix(".json")
    if side.is_file():
        doc = _read_json(side, name)
    else:
        doc = _embedded_sidecar(p)
        if doc is None:
            raise InputError(name, f"no sidecar {side.name} beside the model (and none embedded): it must state "
                                   "spacing_mm, roi_size, channels, labels and intensity")
    return spec_from_sidecar(doc, path=p, weights=p, kind="torchscript")


# -- network loading -------------------------------------------------------------------------------
_NETWORKS: dict = {}


def _torch():
    try:
        import torch
    except ImportError:
        raise InputError("MONAI engine", "needs torch and monai: pip install 'spineplan[ml]' "
                                         "(in Slicer: install the PyTorch extension, then MONAI)") from None
    return torch


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; ``"cpu"``/``"cuda[:n]"`` pass through."""
    torch = _torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and not device.startswith("cuda"):
        raise InputError("device", f"must be 'auto', 'cpu' or 'cuda[:n]', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device", "CUDA was requested but torch sees no GPU; use 'auto' or 'cpu'")
    return device


def load_network(spec: ModelSpec, *, device: str = "cpu"):
    """The network of ``spec`` in eval mode on ``device`` (cached per file, mtime and device)."""
    torch = _torch()
    w = spec.weights
    key = (str(w.resolve()), w.stat().st_mtime_ns, device)
    if key in _NETWORKS:
        return _NETWORKS[key]
    name = str(spec.path)
    if spec.kind == "torchscript":
        try:
            net = torch.jit.load(str(w), map_location=device)
        except (RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputError(name, f"{w.name} is not a loadable TorchScript archive ({first[:160]}); a state dict "
                                   "needs a MONAI bundle whose configs/inference.json defines network_def") from None
    else:
        try:
            from monai.bundle import ConfigParser
        except ImportError:
            raise InputError("MONAI engine", "needs monai: pip install 'spineplan[ml]'") from None
        parser = ConfigParser()
        parser.read_config(str(spec.bundle_dir / "configs" / "inference.json"))
        parser["bundle_root"] = str(spec.bundle_dir)
        if "network_def" not in parser.get():
            raise InputError(name, "bundle's configs/inference.json has no network_def to build models/model.pt")
        try:
            net = parser.get_parsed_content("network_def")
            state = torch.load(str(w), map_location=device, weights_only=True)
            if isinstance(state, dict) and isinstance(state.get("model"), dict):
                state = state["model"]
            elif isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
                state = state["state_dict"]
            net.load_state_dict(state)
        except InputError:
            raise
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputError(name, f"could not build the bundle network from models/model.pt ({first[:200]})") from None
        net = net.to(device)
    net.eval()
    _NETWORKS.clear()  # keep at most one network in memory
    _NETWORKS[key] = net
    return net


# -- geometry and intensities ------------------------------------------------------------------------
def network_grid(reference: Volume, spacing_mm) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A RAS-aligned grid of voxel size ``spacing_mm`` covering ``reference``'s field of view.

    Returns the ``ijk -> RAS`` affine (i along R, j along A, k along S; diagonal by construction)
    and the shape. The grid spans the RAS bounding box of ``reference``'s voxel *corners*, so
    every reference voxel centre lies inside it whatever the reference's orientation.
    """
    sp = np.asarray(spacing_mm, float)
    n = np.asarray(reference.shape3, float)
    corners = np.array([[a, b, c] for a in (-0.5, n[0] - 0.5) for b in (-0.5, n[1] - 0.5)
                        for c in (-0.5, n[2] - 0.5)])
    ras = reference.ijk_to_ras(corners)
    lo, hi = ras.min(axis=0), ras.max(axis=0)
    shape = np.maximum(np.ceil((hi - lo) / sp - 1e-6).astype(int), 1)
    centre = (lo + hi) / 2.0
    affine = np.diag([*sp, 1.0])
    affine[:3, 3] = centre - sp * (shape - 1) / 2.0
    return affine, tuple(int(s) for s in shape)


def normalise_intensity(array: np.ndarray, spec: dict, *, stats_from: np.ndarray | None = None) -> np.ndarray:
    """Map intensities as a network expects them.

    Parameters
    ----------
    array : np.ndarray
        Values to map (any shape).
    spec : dict
        ``{"mode": "percentile", "lower": 1, "upper": 99, "b_min": 0, "b_max": 1, "clip": False,
        "nonzero": False}`` maps the ``lower``..``upper`` percentiles to ``b_min``..``b_max``;
        ``{"mode": "zscore", "nonzero": False}`` subtracts the mean and divides by the standard
        deviation; ``{"mode": "range", "a_min", "a_max", "b_min", "b_max", "clip"}`` maps a fixed
        range (e.g. CT HU); ``{"mode": "none"}`` leaves values as they are.
    stats_from : np.ndarray, optional
        Voxels to take percentiles/mean/std from (default ``array``): the native image, so that
        padding added by resampling does not shift the statistics.

    Returns
    -------
    np.ndarray float32
    """
    mode = spec.get("mode", "percentile")
    x = np.asarray(array, np.float32)
    src = np.asarray(stats_from if stats_from is not None else array, np.float32)
    if spec.get("nonzero", False):
        src = src[src != 0] if np.any(src != 0) else src
    src = src.ravel()
    if mode == "none":
        return x.copy()
    if mode == "zscore":
        mean, std = float(src.mean()), float(src.std())
        return ((x - mean) / max(std, 1e-8)).astype(np.float32)
    b_min, b_max = float(spec.get("b_min", 0.0)), float(spec.get("b_max", 1.0))
    if mode == "percentile":
        a_min, a_max = (float(v) for v in np.percentile(src, [spec.get("lower", 1.0), spec.get("upper", 99.0)]))
    elif mode == "range":
        a_min, a_max = float(spec["a_min"]), float(spec["a_max"])
    else:
        raise ValueError(f"unknown intensity mode {mode!r}; choose one of {INTENSITY_MODES}")
    out = (x - a_min) / max(a_max - a_min, 1e-8) * (b_max - b_min) + b_min
    if spec.get("clip", False):
        out = np.clip(out, min(b_min, b_max), max(b_min, b_max))
    return out.astype(np.float32)


def prepare_input(volumes: Mapping[str, Volume], spec: ModelSpec, *, reference: Volume) -> tuple[np.ndarray, np.ndarray]:
    """Network input ``(C, X, Y, Z)`` float32 on :func:`network_grid` of ``reference``, and its affine.

    Each channel is resampled trilinearly through world coordinates (outside its field of view
    it takes the image's minimum) and normalised with statistics of its native voxels.
    """
    affine, shape = network_grid(reference, spec.spacing_mm)
    chans = []
    for role, norm in zip(spec.channels, spec.intensity, strict=True):
        vol = volumes[role]
        arr = resample(vol, affine, shape, order=1, cval=float(np.min(vol.array)))
        chans.append(normalise_intensity(arr, norm, stats_from=vol.array))
    return np.stack(chans, axis=0), affine


def _match_inputs(volume, spec: ModelSpec) -> dict[str, Volume]:
    if isinstance(volume, Volume):
        if len(spec.channels) != 1:
            raise InputError(str(spec.path), f"the model needs {len(spec.channels)} images ({', '.join(spec.channels)}); "
                                             "pass a dict role -> Volume")
        volume = {spec.channels[0]: volume}
    missing = [r for r in spec.channels if r not in volume]
    if missing:
        raise InputError(str(spec.path), f"the model needs image role(s) {', '.join(missing)} "
                                         f"(given: {', '.join(volume) or 'none'})")
    for role in spec.channels:
        v = volume[role]
        if v.array.ndim != 3:
            raise InputError(role, f"the MONAI engine needs a 3D image, got {v.array.ndim}D")
    return dict(volume)


def _count_windows(shape, roi, overlap: float) -> int:
    n = 1
    for s, r in zip(shape, roi, strict=True):
        step = max(int(r * (1.0 - overlap)), 1)
        n *= 1 if s <= r else int(np.ceil((s - r) / step)) + 1
    return n


# -- inference -------------------------------------------------------------------------------------------
def predict_probabilities(net, image: np.ndarray, spec: ModelSpec, *, device: str = "cpu",
                          progress: Progress = no_progress) -> np.ndarray:
    """Sliding-window softmax probabilities ``(n_classes, X, Y, Z)`` (float32) of a prepared input."""
    torch = _torch()
    from monai.inferers import sliding_window_inference

    total = max(_count_windows(image.shape[1:], spec.roi_size, spec.overlap), 1)
    done = [0]

    def predictor(x):
        out = net(x)
        if isinstance(out, (list, tuple)):
            out = out[0]
        done[0] += x.shape[0]
        progress(min(done[0] / total, 1.0), f"network window {min(done[0], total)}/{total}")
        return out

    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(image[None])).to(device)
        logits = sliding_window_inference(x, spec.roi_size, spec.sw_batch_size, predictor, overlap=spec.overlap,
                                          mode=spec.blend_mode, padding_mode="replicate")
        if logits.shape[1] != spec.n_classes:
            raise InputError(str(spec.path), f"network gives {logits.shape[1]} output channels but the sidecar "
                                             f"names {spec.n_classes} labels")
        prob = torch.softmax(logits.float(), dim=1)[0]
    return prob.cpu().numpy().astype(np.float32)


def probabilities_to_labels(prob: np.ndarray, grid_affine, reference: Volume) -> np.ndarray:
    """Arg-max label (uint8, ``[i, j, k]`` of ``reference``) of probabilities resampled trilinearly
    from the network grid onto ``reference`` through world coordinates, one channel at a time."""
    grid = Volume(prob[0], grid_affine)
    best = resample(grid, reference.affine, reference.shape3, order=1, cval=1.0)
    labels = np.zeros(reference.shape3, np.uint8)
    for c in range(1, prob.shape[0]):
        grid.array = prob[c]
        p = resample(grid, reference.affine, reference.shape3, order=1, cval=0.0)
        better = p > best
        labels[better] = c
        best = np.where(better, p, best)
    return labels


def infer_labels(volume, spec: ModelSpec, *, reference: Volume | None = None, device: str = "auto",
                 progress: Progress = no_progress) -> Volume:
    """The network's label map on the reference grid.

    Parameters
    ----------
    volume : Volume or mapping role -> Volume
        The input image(s), RAS, any grid; one per entry of ``spec.channels``.
    spec : ModelSpec
        From :func:`load_model_spec`.
    reference : Volume, optional
        Output grid (default: the first channel's image).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda[:n]"``.
    progress : callable(fraction, message)

    Returns
    -------
    Volume
        uint8 label values of ``spec.labels`` on the reference grid; ``meta`` holds ``labels``,
        the network grid (``network_shape``, ``network_spacing_mm``), ``device`` and ``seconds``.
    """
    t0 = time.perf_counter()
    inputs = _match_inputs(volume, spec)
    ref = reference if reference is not None else inputs[spec.channels[0]]
    dev = resolve_device(device)
    progress(0.0, f"loading network {spec.weights.name}")
    net = load_network(spec, device=dev)
    progress(0.05, "resampling to the network grid")
    image, affine = prepare_input(inputs, spec, reference=ref)

    def sub(f, m):
        progress(0.1 + 0.75 * f, m)

    prob = predict_probabilities(net, image, spec, device=dev, progress=sub)
    progress(0.88, "resampling labels to the input grid")
    labels = probabilities_to_labels(prob, affine, ref)
    progress(1.0, "network inference done")
    return ref.with_array(labels, name="monai_labels", labels=dict(spec.labels), network_shape=list(image.shape[1:]),
                          network_spacing_mm=list(spec.spacing_mm), device=dev,
                          seconds=round(time.perf_counter() - t0, 2), model=str(spec.path))


def check_structures(spec: ModelSpec, structures) -> None:
    """Raise :class:`InputError` naming the structures the model does not segment."""
    unknown = [s for s in structures if s not in spec.structures]
    if unknown:
        raise InputError(str(spec.path), f"the model does not segment {', '.join(unknown)} "
                                         f"(it knows {', '.join(spec.structures)})")


def structures_from_labels(labels: Volume, spec: ModelSpec, structures) -> dict[str, Volume]:
    """0/1 uint8 masks (same grid) of the requested structures (union of their label values)."""
    check_structures(spec, structures)
    out = {}
    for s in structures:
        mask = np.isin(labels.array, spec.structures[s]).astype(np.uint8)
        out[s] = labels.with_array(mask, name=s, engine="monai", model=str(spec.path))
    return out


def segment_with_model(volume, model_path, *, structures=("cord", "csf", "tumor"), device: str = "auto",
                       progress: Progress = no_progress) -> dict[str, Volume]:
    """Segment structures with a MONAI network, in this process.

    Parameters
    ----------
    volume : Volume or mapping role -> Volume
        Input image(s) in RAS on any grid (oblique/anisotropic allowed); a single Volume for a
        one-channel model (the phantom model expects a T2-weighted image).
    model_path : str or Path
        TorchScript file with sidecar, or MONAI bundle directory (see the module docstring).
    structures : sequence of str
        Names from the sidecar's ``structures`` (phantom model: ``cord``, ``csf`` = thecal sac =
        cord + CSF without intradural tumor, ``tumor`` = intradural tumor; it was not trained on
        extradural tumors).
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:n]"``.
    progress : callable(fraction, message)

    Returns
    -------
    dict structure -> Volume
        0/1 uint8 masks on the grid of ``volume`` (the first channel's image), plus
        ``"labels"``: the full label map (``meta["labels"]`` maps names to values).

    Raises
    ------
    InputError
        Bad model path, bundle without the expected files, missing input roles, unknown
        structures, or torch/monai not installed.
    """
    spec = load_model_spec(model_path)
    structures = tuple(structures)
    check_structures(spec, structures)  # before the (slow) inference
    labels = infer_labels(volume, spec, device=device, progress=progress)
    out = structures_from_labels(labels, spec, structures)
    out["labels"] = labels
    return out


# -- out of process ----------------------------------------------------------------------------------------
def _package_root() -> str:
    return str(Path(__file__).resolve().parents[3])  # the folder holding SpinePlannerLib


def run_out_of_process(model_path, *volume_paths, output_dir, roles=None, structures=("cord", "csf", "tumor"),
                       device: str = "auto", threads: int | None = None, python: str = sys.executable,
                       progress: Progress = no_progress, timeout_s: float | None = None) -> dict:
    """Run :mod:`SpinePlannerLib.segmentation.monai.worker` in a child Python and relay its progress.

    Parameters
    ----------
    model_path : str or Path
        TorchScript file or MONAI bundle directory.
    *volume_paths : str or Path
        Input image files, in the order of the model's ``channels`` (or named by ``roles``).
    output_dir : str or Path
        Where the child writes ``<structure>.nii.gz`` masks and ``labels.nii.gz``.
    roles : sequence of str, optional
        Role of each input path (default: the model's ``channels`` in order).
    structures, device : as :func:`segment_with_model`.
    threads : int, optional
        ``torch.set_num_threads`` in the child.
    python : str
        Interpreter with torch and monai (in Slicer: the path of ``PythonSlicer``).
    progress : callable(fraction, message)
        Receives each ``{"type": "progress"}`` line of the child.
    timeout_s : float, optional
        Kill the child after this many seconds.

    Returns
    -------
    dict
        The child's ``{"type": "result", ...}`` document: ``outputs`` (structure -> path),
        ``labelmap`` (path), ``labels``, ``device``, ``seconds``.

    Raises
    ------
    InputError
        What the child reported as a bad input (model, images, options).
    RuntimeError
        The child failed otherwise (its last error lines are in the message).
    """
    if not volume_paths:
        raise InputError("MONAI engine", "no input image given")
    cmd = [python, "-m", "SpinePlannerLib.segmentation.monai.worker", "--model", str(model_path), "--output-dir", str(output_dir),
           "--structures", ",".join(structures), "--device", device]
    if roles is not None:
        if len(roles) != len(volume_paths):
            raise InputError("roles", f"{len(roles)} role(s) for {len(volume_paths)} image(s)")
        cmd += [a for role, p in zip(roles, volume_paths, strict=True) for a in ("--input", f"{role}={p}")]
    else:
        cmd += [a for p in volume_paths for a in ("--input", str(p))]
    if threads is not None:
        cmd += ["--threads", str(int(threads))]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([_package_root(), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    result, error, other = None, None, []
    timed_out = threading.Event()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
        def kill():
            timed_out.set()
            proc.kill()

        watchdog = threading.Timer(timeout_s, kill) if timeout_s is not None else None
        if watchdog is not None:
            watchdog.daemon = True
            watchdog.start()
        try:
            # stderr goes to a thread so that a chatty child cannot block on a full pipe
            err_lines: list[str] = []
            reader = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)
            reader.start()
            for line in proc.stdout:
                msg = _parse_line(line)
                if msg is None:
                    if line.strip():
                        other.append(line.rstrip())
                elif msg.get("type") == "progress":
                    progress(float(msg.get("fraction", 0.0)), str(msg.get("message", "")))
                elif msg.get("type") == "result":
                    result = msg
                elif msg.get("type") == "error":
                    error = msg
            proc.wait()
            reader.join(timeout=5.0)
        except BaseException:
            proc.kill()
            raise
        finally:
            if watchdog is not None:
                watchdog.cancel()
    if timed_out.is_set():
        raise RuntimeError(f"MONAI inference did not finish within {timeout_s} s (process killed)")
    if error is not None:
        if error.get("kind") == "input":
            raise InputError(str(error.get("name", "MONAI engine")), str(error.get("problem", error.get("message"))))
        raise RuntimeError(f"MONAI inference failed: {error.get('message')}")
    if proc.returncode != 0 or result is None:
        tail = "\n".join([*other[-5:], *"".join(err_lines).strip().splitlines()[-10:]])
        raise RuntimeError(f"MONAI inference process exited with code {proc.returncode}:\n{tail}")
    return result


def _parse_line(line: str) -> dict | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        msg = json.loads(line)
    except json.JSONDecodeError:
        return None
    return msg if isinstance(msg, dict) and "type" in msg else None
