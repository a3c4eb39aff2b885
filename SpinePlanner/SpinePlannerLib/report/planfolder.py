"""Read a finished plan folder (plan.json, labels/, tracts/, vessels/) for the report and the viewer.

Only what a plan run wrote is read (plus the input images named in ``plan["inputs"]`` when they
still exist); no stage is re-run. Everything is in RAS millimetres.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.imageio import read_volume
from SpinePlannerLib.core.volume import Volume

# display colours (RGB 0-1) shared by the slice figures, the 3D view and the viewer
COLORS = {
    "tumor": (0.90, 0.10, 0.10),
    "cord": (0.95, 0.85, 0.20),
    "csf": (0.25, 0.65, 1.00),
    "cyst": (0.20, 0.90, 0.90),
    "edema": (0.95, 0.55, 0.10),
    "bone": (0.85, 0.85, 0.80),
    "calcification": (1.00, 1.00, 1.00),
    "vessel": (0.75, 0.20, 0.25),
    "feeder": (1.00, 0.85, 0.00),
    "adamkiewicz": (0.10, 0.85, 0.30),
    "anterior_spinal": (0.85, 0.35, 0.85),
    "anterior_spinal_artery": (0.85, 0.35, 0.85),
    "vein": (0.30, 0.40, 0.95),
}
# values of labels/vessels.nii.gz (README: 1 vessel, 2 feeder, 3 Adamkiewicz, 4 anterior spinal, 5 vein)
VESSEL_ROLES = {1: "vessel", 2: "feeder", 3: "adamkiewicz", 4: "anterior_spinal", 5: "vein"}
STRUCTURE_NAMES = {"tumor": "tumor", "cord": "cord", "csf": "thecal sac", "cyst": "cyst", "edema": "edema"}


@dataclass
class PlanFolder:
    """A plan folder's contents, loaded lazily."""

    root: Path
    plan: dict
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, root) -> PlanFolder:
        root = Path(root).resolve()
        path = root / "plan.json"
        if not path.is_file():
            raise InputError(str(root), "no plan.json in this folder (run `spineplan plan` or `spineplan demo` first)")
        try:
            plan = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(str(path), f"not readable as JSON ({exc})") from None
        return cls(root, plan)

    def _output(self, key: str, default: str | None = None) -> Path | None:
        rel = (self.plan.get("outputs") or {}).get(key, default)
        if not rel:
            return None
        p = self.root / rel
        return p if p.exists() else None

    def label(self, name: str) -> Volume | None:
        """``labels/<name>.nii.gz`` (reference grid) or None."""
        key = f"label:{name}"
        if key not in self._cache:
            rel = ((self.plan.get("outputs") or {}).get("labels") or {}).get(name)
            p = self.root / rel if rel else None
            self._cache[key] = read_volume(p, name) if p is not None and p.exists() else None
        return self._cache[key]

    def image(self, role: str) -> Volume | None:
        """The input image of ``role`` when its file still exists (relative paths: against the folder)."""
        key = f"image:{role}"
        if key not in self._cache:
            path = (self.plan.get("inputs") or {}).get(role)
            vol = None
            if path:
                p = Path(path) if Path(path).is_absolute() else self.root / path
                if p.exists():
                    vol = read_volume(p, role)
            self._cache[key] = vol
        return self._cache[key]

    def fa_map(self) -> Volume | None:
        if "fa" not in self._cache:
            p = self._output("fa_map")
            self._cache["fa"] = read_volume(p, "fa") if p else None
        return self._cache["fa"]

    def streamlines(self) -> list[np.ndarray]:
        if "tracts" not in self._cache:
            p = self._output("tracts_tck")
            if p is None:
                self._cache["tracts"] = []
            else:
                from DTITractographyLib.streamline_io import read_tck

                self._cache["tracts"] = [np.asarray(s, float) for s in read_tck(p)]
        return self._cache["tracts"]

    def centerlines(self) -> list[dict]:
        """Vessel branches: ``{"role", "diameter_mm", "points_ras" (n, 3)}``."""
        p = self._output("vessel_centerlines")
        if p is None:
            return []
        data = json.loads(p.read_text())
        return [{"role": b.get("role", "vessel"), "diameter_mm": b.get("diameter_mm"),
                 "points_ras": np.asarray(b["points_ras"], float)} for b in data.get("branches", [])
                if len(b.get("points_ras", [])) >= 2]

    def level_names(self) -> dict[int, str]:
        levels = (self.plan.get("vertebrae") or {}).get("levels") or {}
        return {int(k): v for k, v in levels.items()}

    def tumor_centre_ras(self) -> np.ndarray | None:
        c = (self.plan.get("tumor") or {}).get("centroid_ras")
        if c is not None:
            return np.asarray(c, float)
        tumor = self.label("tumor")
        if tumor is None or not np.any(tumor.array):
            return None
        return tumor.ijk_to_ras(np.asarray(ndimage.center_of_mass(tumor.array > 0)))


def sample_plane(vol: Volume, points_ras: np.ndarray, *, order: int = 1, cval: float = np.nan) -> np.ndarray:
    """Values of ``vol`` at RAS points ``(..., 3)`` (mm): linear (``order=1``) or nearest (0)."""
    shape = points_ras.shape[:-1]
    ijk = vol.ras_to_ijk(points_ras.reshape(-1, 3))
    arr = vol.array if vol.array.ndim == 3 else vol.array[..., 0]
    out = ndimage.map_coordinates(arr.astype(np.float32, copy=False), ijk.T, order=order, cval=cval,
                                  mode="constant", prefilter=False)
    return out.reshape(shape)


def plane_points(centre, u, v, half_u_mm: float, half_v_mm: float, pixel_mm: float) -> np.ndarray:
    """RAS points ``(rows, cols, 3)`` of a plane through ``centre``: columns along ``u``, rows along ``-v``
    (so ``v`` points up in the picture). Directions are unit RAS vectors; sizes in mm."""
    u, v = np.asarray(u, float), np.asarray(v, float)
    cols = np.arange(-half_u_mm, half_u_mm + 1e-6, pixel_mm)
    rows = np.arange(half_v_mm, -half_v_mm - 1e-6, -pixel_mm)
    return np.asarray(centre, float) + cols[None, :, None] * u + rows[:, None, None] * v
