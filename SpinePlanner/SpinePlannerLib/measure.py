"""Tumor measurements in millimetres along the cord axis (L1).

Definitions (CLINICAL.md §8):

* maximal axial diameter — the largest in-plane caliper width of the lesion in planes
  perpendicular to the cord axis, over all such slabs;
* cranio-caudal extent — the lesion's width along the cord axis;
* widths are measured on voxel centres plus one voxel's extent along the measuring direction
  (the union-of-voxels convention, unbiased to within a fraction of a voxel for smooth shapes).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .volume import Volume

SUPERIOR = np.array([0.0, 0.0, 1.0])


def voxel_extent_along(volume: Volume, direction) -> float:
    """Length (mm) of one voxel measured along a unit RAS ``direction``:
    ``sqrt(sum_k (d . a_k)^2)`` with ``a_k`` the affine's columns."""
    d = np.asarray(direction, float)
    return float(np.sqrt(np.sum((d @ volume.affine[:3, :3]) ** 2)))


def mask_points_ras(mask: Volume) -> np.ndarray:
    """RAS coordinates (N, 3) of the non-zero voxel centres."""
    return mask.ijk_to_ras(np.argwhere(mask.array > 0))


def cord_axis(cord: Volume | None, *, near_ras=None, radius_mm: float = 30.0) -> np.ndarray:
    """Unit RAS direction of the cord's long axis, pointing superior.

    Principal axis of the cord voxels (within ``radius_mm`` of ``near_ras`` when given, so a
    curved cord gives the local axis). Without a cord mask the scanner's S axis is returned.
    """
    if cord is None or not np.any(cord.array):
        return SUPERIOR.copy()
    pts = mask_points_ras(cord)
    if near_ras is not None:
        near = pts[np.linalg.norm(pts - np.asarray(near_ras, float), axis=1) <= radius_mm]
        if len(near) >= 20:
            pts = near
    if len(pts) < 3:
        return SUPERIOR.copy()
    centred = pts - pts.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axis = vt[0]
    return axis if axis[2] >= 0 else -axis


def in_plane_basis(axis) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors spanning the plane perpendicular to ``axis`` (first is as close to R as possible)."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    ref = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = ref - axis * np.dot(ref, axis)
    u /= np.linalg.norm(u)
    return u, np.cross(axis, u)


def caliper_width(points: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Range of the projections of ``points`` (N, 3) on each of ``directions`` (M, 3)."""
    proj = points @ directions.T
    return proj.max(axis=0) - proj.min(axis=0)


def max_axial_diameter_mm(mask: Volume, axis, *, n_directions: int = 90) -> float:
    """Largest caliper diameter (mm) in slabs perpendicular to ``axis`` (one voxel thick)."""
    pts = mask_points_ras(mask)
    if len(pts) == 0:
        return 0.0
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    u, v = in_plane_basis(axis)
    ang = np.linspace(0.0, np.pi, n_directions, endpoint=False)
    dirs = np.outer(np.cos(ang), u) + np.outer(np.sin(ang), v)
    vox = np.array([voxel_extent_along(mask, d) for d in dirs])
    thickness = max(voxel_extent_along(mask, axis), 1e-3)
    along = pts @ axis
    slab = np.floor((along - along.min()) / thickness).astype(int)
    best = 0.0
    order = np.argsort(slab)
    slab_sorted = slab[order]
    bounds = np.flatnonzero(np.diff(slab_sorted)) + 1
    for group in np.split(order, bounds):
        widths = caliper_width(pts[group], dirs) + vox
        best = max(best, float(widths.max()))
    return best


def extent_along_mm(mask: Volume, axis) -> float:
    """Width (mm) of the mask along ``axis`` (cranio-caudal extent when ``axis`` is the cord axis)."""
    pts = mask_points_ras(mask)
    if len(pts) == 0:
        return 0.0
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    return float(caliper_width(pts, axis[None, :])[0] + voxel_extent_along(mask, axis))


def dilate_mm(mask: Volume, radius_mm: float) -> np.ndarray:
    """Binary dilation by a ball of ``radius_mm`` (anisotropic voxels handled)."""
    sp = mask.spacing
    r = np.maximum(np.ceil(radius_mm / sp).astype(int), 0)
    zz = np.meshgrid(*[np.arange(-k, k + 1) * s for k, s in zip(r, sp, strict=True)], indexing="ij")
    ball = (zz[0] ** 2 + zz[1] ** 2 + zz[2] ** 2) <= radius_mm**2 + 1e-9
    return ndimage.binary_dilation(mask.array > 0, structure=ball)


def classify_compartment(tumor: Volume, *, cord: Volume | None = None, thecal_sac: Volume | None = None,
                         bone: Volume | None = None, shell_mm: float = 1.5,
                         intramedullary_shell_cord_fraction: float = 0.6,
                         extradural_outside_fraction: float = 0.5) -> tuple[str, dict]:
    """Tumor compartment from overlap with cord, thecal sac (cord + CSF) and bone.

    All masks must share the tumor's grid. Returns ``(compartment, evidence)`` where
    compartment is one of ``intramedullary``, ``intradural_extramedullary``, ``extradural``,
    ``unknown``. Rules (documented settings, not published thresholds):

    * more than ``extradural_outside_fraction`` of the tumor outside the thecal sac -> extradural;
    * otherwise, of the thin shell around the tumor that lies inside the sac, the cord's share
      above ``intramedullary_shell_cord_fraction`` -> intramedullary (the tumor is surrounded by
      cord), else intradural extramedullary.
    """
    t = tumor.array > 0
    n = int(t.sum())
    if n == 0:
        return "unknown", {"reason": "empty tumor mask"}
    if cord is None and thecal_sac is None:
        return "unknown", {"reason": "no cord or thecal sac segmentation to relate the tumor to"}
    cord_a = cord.array > 0 if cord is not None else np.zeros_like(t)
    sac = thecal_sac.array > 0 if thecal_sac is not None else None
    evidence: dict = {}
    if sac is not None:
        sac_full = sac | cord_a
        outside = float(np.count_nonzero(t & ~sac_full)) / n
        evidence["fraction_outside_thecal_sac"] = round(outside, 3)
        if bone is not None:
            evidence["fraction_in_bone"] = round(float(np.count_nonzero(t & (bone.array > 0))) / n, 3)
        if outside > extradural_outside_fraction:
            return "extradural", evidence
    shell = dilate_mm(tumor, shell_mm) & ~t
    if sac is not None:
        shell &= (sac | cord_a)
    n_shell = int(shell.sum())
    if n_shell == 0:
        return "unknown", {**evidence, "reason": "no thecal-sac voxels around the tumor"}
    cord_share = float(np.count_nonzero(shell & cord_a)) / n_shell
    evidence["shell_cord_fraction"] = round(cord_share, 3)
    if cord is None:
        return "unknown", {**evidence, "reason": "no cord segmentation"}
    if cord_share > intramedullary_shell_cord_fraction:
        return "intramedullary", evidence
    return "intradural_extramedullary", evidence
