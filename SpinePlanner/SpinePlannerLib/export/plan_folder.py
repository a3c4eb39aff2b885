"""Read a finished plan folder: ``plan.json``, the reference image it names, and the label maps
of ``labels/`` as one binary mask per exported structure (on the reference grid, RAS affine)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.imageio import read_volume
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.export.structures import (
    Structure,
    base_keys,
    base_structure,
    vertebra_structure,
    vessel_structure,
)


@dataclass
class PlanFolder:
    """A finished plan, as the exporters see it.

    ``reference`` is the image ``labels/`` are on (RAS affine, voxel values as read);
    ``reference_path`` the file or DICOM folder it came from (or ``reference_dicom_files``, the
    files of its DICOM series, e.g. from Slicer's DICOM database); ``masks`` maps each
    :class:`Structure` to its boolean ``[i, j, k]`` mask on the reference grid (non-empty only).
    """

    folder: Path
    plan: dict
    reference_role: str
    reference_path: Path
    reference: Volume
    masks: list[tuple[Structure, np.ndarray]] = field(default_factory=list)
    reference_dicom_files: list[Path] | None = None

    @property
    def reference_is_dicom(self) -> bool:
        return bool(self.reference_dicom_files) or self.reference_path.is_dir()

    def mask(self, key: str) -> np.ndarray | None:
        for s, m in self.masks:
            if s.key == key:
                return m
        return None


def _reference_source(plan: dict, folder: Path) -> tuple[str, Path]:
    role = plan.get("reference_role")
    path = (plan.get("inputs") or {}).get(role) if role else None
    if not path:
        raise InputError(str(folder), "plan.json names no reference image (reference_role/inputs)")
    p = Path(path)
    if not p.is_absolute():
        p = (folder / p).resolve()
    if p.is_file() and p.suffix.lower() == ".dcm":
        p = p.parent
    if not p.exists():
        raise InputError(str(folder), f"reference image {role} not found at {p} (moved since planning?)")
    return role, p


def load_plan_folder(folder, *, reference: Volume | None = None, reference_dicom_files=None) -> PlanFolder:
    """Read ``folder`` (a complete plan: ``plan.json`` present) and its label maps.

    ``reference`` (the reference image as a Volume) and ``reference_dicom_files`` (the files of
    its DICOM series) are for callers that hold the image already, e.g. the Slicer module whose
    plan.json names scene nodes rather than files; otherwise the image is read from the path
    plan.json records.

    Raises
    ------
    InputError
        No ``plan.json``, unreadable JSON, reference image missing, or a label map not on the
        reference grid.
    """
    folder = Path(folder)
    pj = folder / "plan.json"
    if not pj.is_file():
        raise InputError(str(folder), "not a finished plan folder (no plan.json)")
    try:
        plan = json.loads(pj.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(str(pj), f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    files = [Path(f) for f in reference_dicom_files] if reference_dicom_files else None
    if reference is None:
        role, path = _reference_source(plan, folder)
        reference = read_volume(path, f"reference image ({role})")
    else:
        role = plan.get("reference_role") or "reference"
        path = files[0].parent if files else Path(str((plan.get("inputs") or {}).get(role, "")))
    pf = PlanFolder(folder, plan, role, path, reference, reference_dicom_files=files)
    pf.masks = _read_masks(folder / "labels", plan, reference)
    return pf


def _label(path: Path, reference: Volume) -> np.ndarray | None:
    if not path.is_file():
        return None
    vol = read_volume(path, f"label map {path.name}")
    if not vol.same_grid(reference, tol_mm=1e-3):
        raise InputError(str(path), "label map is not on the reference image's grid")
    return np.asarray(vol.array)


def _read_masks(labels: Path, plan: dict, reference: Volume) -> list[tuple[Structure, np.ndarray]]:
    out = []
    for key in base_keys():
        arr = _label(labels / f"{key}.nii.gz", reference)
        if arr is not None and np.any(arr > 0):
            out.append((base_structure(key), arr > 0))
    vert = _label(labels / "vertebrae.nii.gz", reference)
    if vert is not None:
        names = {int(k): v for k, v in ((plan.get("vertebrae") or {}).get("levels") or {}).items()}
        for idx in sorted(int(v) for v in np.unique(vert) if v > 0):
            mask = np.rint(vert) == idx
            out.append((vertebra_structure(names.get(idx, f"V{idx}"), idx), mask))
    vessels = _label(labels / "vessels.nii.gz", reference)
    if vessels is not None:
        for value in sorted(int(v) for v in np.unique(vessels) if v > 0):
            try:
                out.append((vessel_structure(value), np.rint(vessels) == value))
            except KeyError:
                continue
    return out
