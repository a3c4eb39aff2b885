"""A planned straight trajectory for navigation: entry, target, direction, length and the structures
it passes close to (L1; RAS mm).

The target is a point of the tumor (its centre in the corridor's cross-section); the entry is where
the line from the target along the corridor direction leaves the last bone it crosses (the
laminotomy/laminectomy site) plus ``bone_margin_mm``, or the dorsal surface of the thecal sac plus
``soft_margin_mm`` when no bone lies on the line within ``max_length_mm``. Skin entry needs a body
outline, which is not segmented: the trajectory stops at the bone.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from SpinePlannerLib.core.volume import Volume


def _inside(mask: Volume, pts: np.ndarray) -> np.ndarray:
    ijk = np.rint(mask.ras_to_ijk(pts)).astype(int)
    ok = np.all((ijk >= 0) & (ijk < np.array(mask.shape3)), axis=1)
    out = np.zeros(len(pts), bool)
    out[ok] = mask.array[tuple(ijk[ok].T)] > 0
    return out


def plan_trajectory(target_ras, direction_ras, *, bone: Volume | None, structures: dict[str, Volume],
                    clearance_mm: float = 3.0, max_length_mm: float = 80.0, step_mm: float = 0.5,
                    bone_margin_mm: float = 2.0, soft_margin_mm: float = 10.0, sac: Volume | None = None) -> dict:
    """Entry/target of a straight corridor and the named structures within ``clearance_mm`` of it.

    Parameters
    ----------
    target_ras : array-like
        Target point (RAS mm).
    direction_ras : array-like
        Direction from the target towards the entry (e.g. posterior), RAS.
    bone : Volume or None
        Bone mask or vertebra label map (non-zero = bone).
    structures : dict[str, Volume]
        Masks to check for proximity (cord, vessels, feeders, ...): min distance to the path (mm).
    """
    target = np.asarray(target_ras, float)
    d = np.asarray(direction_ras, float)
    d = d / np.linalg.norm(d)
    ts = np.arange(0.0, max_length_mm + step_mm / 2, step_mm)
    pts = target + ts[:, None] * d
    entry_t, basis = None, "none"
    if bone is not None:
        hit = _inside(bone, pts)
        if hit.any():
            entry_t, basis = float(ts[np.flatnonzero(hit).max()] + bone_margin_mm), "posterior bone surface"
    if entry_t is None and sac is not None:
        hit = _inside(sac, pts)
        if hit.any():
            entry_t, basis = float(ts[np.flatnonzero(hit).max()] + soft_margin_mm), "dorsal thecal sac surface"
    if entry_t is None:
        entry_t, basis = float(max_length_mm), f"no bone or sac on the line within {max_length_mm:g} mm"
    path = target + np.arange(0.0, entry_t + step_mm / 2, step_mm)[:, None] * d
    near = {}
    for name, m in structures.items():
        if m is None or not np.any(m.array):
            continue
        pts_m = m.ijk_to_ras(np.argwhere(m.array > 0))
        dist, _ = cKDTree(pts_m).query(path, k=1, distance_upper_bound=clearance_mm + 1e-6)
        finite = dist[np.isfinite(dist)]
        if len(finite):
            near[name] = round(float(finite.min()), 2)
    entry = target + entry_t * d
    return {"entry_ras": [round(float(x), 2) for x in entry], "target_ras": [round(float(x), 2) for x in target],
            "direction_ras": [round(float(x), 4) for x in -d], "length_mm": round(entry_t, 1), "entry_basis": basis,
            "structures_within_clearance_mm": near, "clearance_mm": clearance_mm,
            "note": "entry at the bone (skin not segmented); direction points from entry to target"}
