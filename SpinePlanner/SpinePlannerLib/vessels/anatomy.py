"""Anatomical frame for vessel findings: cord centreline, midline side and vertebral level (L1).

``CordFrame`` gives, for any RAS point, its position relative to the nearest cord centreline
point: ``right`` (mm towards the patient's right, perpendicular to the cord axis), ``anterior``
(mm towards anterior) and ``along`` (mm along the cord axis, superior positive). ``LevelMap``
names the vertebral level of a point from the vertebra label map (values = level index) and the
level names of ``plan["vertebrae"]["levels"]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.measurement.lesion import cord_axis, mask_points_ras

ANTERIOR = np.array([0.0, 1.0, 0.0])


@dataclass
class CordFrame:
    """Cord centreline samples (RAS mm) with unit tangents (superior) and local radii (mm).

    ``from_mask`` builds it from a cord segmentation; ``straight`` from one point and an axis
    (no cord: the midline is only as good as that point).
    """

    centers: np.ndarray  # (M, 3)
    tangents: np.ndarray  # (M, 3)
    radii: np.ndarray  # (M,) mean distance of cord voxels from the centre, mm (0 if unknown)
    from_cord: bool = True

    @classmethod
    def from_mask(cls, cord: Volume, *, bin_mm: float = 3.0) -> CordFrame | None:
        pts = mask_points_ras(cord)
        if len(pts) < 20:
            return None
        axis = cord_axis(cord)
        t = (pts - pts.mean(axis=0)) @ axis
        bins = np.floor((t - t.min()) / bin_mm).astype(int)
        centers, radii = [], []
        for b in np.unique(bins):
            sel = pts[bins == b]
            if len(sel) < 5:
                continue
            c = sel.mean(axis=0)
            d = sel - c
            d -= np.outer(d @ axis, axis)
            centers.append(c)
            radii.append(float(np.sqrt(2.0) * np.sqrt(np.mean(np.sum(d**2, axis=1)))))
        if len(centers) < 2:
            return None
        centers = np.array(centers)
        tangents = np.gradient(centers, axis=0)
        norms = np.linalg.norm(tangents, axis=1, keepdims=True)
        tangents = np.where(norms > 1e-9, tangents / np.maximum(norms, 1e-9), axis)
        tangents[tangents @ axis < 0] *= -1
        return cls(centers, tangents, np.array(radii), True)

    @classmethod
    def straight(cls, point_ras, axis=(0.0, 0.0, 1.0), *, half_length_mm: float = 500.0) -> CordFrame:
        axis = np.asarray(axis, float) / np.linalg.norm(axis)
        p = np.asarray(point_ras, float)
        centers = np.stack([p - half_length_mm * axis, p, p + half_length_mm * axis])
        return cls(centers, np.tile(axis, (3, 1)), np.zeros(3), False)

    def _nearest(self, points: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(points[:, None, :] - self.centers[None, :, :], axis=2)
        return np.argmin(d, axis=1)

    def local(self, points_ras) -> np.ndarray:
        """(N, 3) local coordinates ``(right, anterior, along)`` in mm of RAS points (N, 3)."""
        p = np.atleast_2d(np.asarray(points_ras, float))
        idx = self._nearest(p)
        c, t = self.centers[idx], self.tangents[idx]
        if not self.from_cord:  # straight axis: project exactly
            c = self.centers[1] + np.outer((p - self.centers[1]) @ t[0], t[0])
        a = ANTERIOR[None, :] - (t @ ANTERIOR)[:, None] * t
        a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-9)
        r = np.cross(a, t)
        d = p - c
        return np.stack([np.sum(d * r, axis=1), np.sum(d * a, axis=1), np.sum(d * t, axis=1)], axis=1)

    def axis_at(self, point_ras) -> np.ndarray:
        return self.tangents[self._nearest(np.atleast_2d(np.asarray(point_ras, float)))[0]]

    def radius_at(self, point_ras) -> float:
        return float(self.radii[self._nearest(np.atleast_2d(np.asarray(point_ras, float)))[0]])


def side_of(frame: CordFrame | None, point_ras, *, min_offset_mm: float = 1.0) -> str | None:
    """``"right"`` or ``"left"`` of the cord's midsagittal plane (patient sides); None within
    ``min_offset_mm`` of it or without a frame."""
    if frame is None:
        return None
    x = float(frame.local(point_ras)[0, 0])
    if abs(x) < min_offset_mm:
        return None
    return "right" if x > 0 else "left"


@dataclass
class LevelMap:
    """Vertebral level centroids (RAS) with names, ordered along the cord axis."""

    names: list[str]
    centroids: np.ndarray  # (L, 3)
    axis: np.ndarray

    @classmethod
    def from_labels(cls, vertebrae: Volume | None, level_names: dict | None, *, axis=None) -> LevelMap | None:
        """From a label map of level indices and ``{"1": "T9", ...}``; None when either is missing."""
        if vertebrae is None or not level_names or not np.any(vertebrae.array):
            return None
        arr = np.asarray(vertebrae.array)
        names, cents = [], []
        for value in np.unique(arr[arr > 0]):
            name = level_names.get(str(int(value)))
            if name is None:
                continue
            idx = np.argwhere(arr == value)
            cents.append(vertebrae.ijk_to_ras(idx.mean(axis=0)))
            names.append(str(name))
        if not names:
            return None
        cents = np.array(cents)
        if axis is None:
            if len(cents) >= 2:
                _, _, vt = np.linalg.svd(cents - cents.mean(axis=0), full_matrices=False)
                axis = vt[0] if vt[0][2] >= 0 else -vt[0]
            else:
                axis = np.array([0.0, 0.0, 1.0])
        axis = np.asarray(axis, float) / np.linalg.norm(axis)
        order = np.argsort(cents @ axis)
        return cls([names[i] for i in order], cents[order], axis)

    def level_of(self, point_ras) -> str | None:
        """Name of the vertebra nearest along the cord axis; None beyond the labelled levels."""
        p = np.asarray(point_ras, float)
        proj = (self.centroids - p) @ self.axis
        i = int(np.argmin(np.abs(proj)))
        spacing = float(np.median(np.diff(self.centroids @ self.axis))) if len(self.names) > 1 else 30.0
        if abs(proj[i]) > 0.75 * abs(spacing):
            return None
        return self.names[i]
