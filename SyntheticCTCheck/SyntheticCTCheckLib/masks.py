"""Mask and grid helpers shared by the lesion, void and bone measurements (L1).

Distances use ``scipy.ndimage.distance_transform_edt`` with the voxel spacing, exact for grids
whose axes are orthogonal (any rotation, anisotropic spacing), which is what scanners produce.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from SpinePlannerLib.core.registration import crop_volume, distance_from_mask_mm
from SpinePlannerLib.core.volume import Volume

__all__ = ["crop_box", "crop_volume", "distance_from_mask_mm", "mm3_to_voxels", "padded", "remove_small_components",
           "shell_mask"]


def crop_box(mask: np.ndarray, spacing, margin_mm: float) -> tuple[slice, ...]:
    """Index box (slices) around the non-zero voxels of ``mask`` grown by ``margin_mm``."""
    idx = np.argwhere(mask)
    if idx.size == 0:
        raise ValueError("crop_box: empty mask")
    pad = np.ceil(margin_mm / np.asarray(spacing, float)).astype(int) + 1
    lo = np.maximum(idx.min(axis=0) - pad, 0)
    hi = np.minimum(idx.max(axis=0) + pad + 1, mask.shape[:3])
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def shell_mask(mask: np.ndarray, spacing, inner_mm: float, outer_mm: float) -> np.ndarray:
    """Voxels whose distance (mm) to ``mask`` lies in ``(inner_mm, outer_mm]``."""
    d = distance_from_mask_mm(mask, spacing)
    return (d > inner_mm) & (d <= outer_mm)


def remove_small_components(mask: np.ndarray, min_voxels: int) -> np.ndarray:
    """``mask`` without the face-connected components smaller than ``min_voxels``."""
    if min_voxels <= 1 or not mask.any():
        return mask
    lab, n = ndimage.label(mask)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[lab]


def mm3_to_voxels(volume: Volume, mm3: float) -> int:
    """Number of voxels (at least 1) covering ``mm3`` cubic millimetres."""
    return max(int(np.ceil(mm3 / (volume.voxel_volume_ml * 1000.0) - 1e-9)), 1)


def padded(mask: Volume, voxels: int = 1) -> Volume:
    """``mask`` with a border of ``voxels`` zero voxels (affine shifted to keep world positions).

    :func:`SpinePlannerLib.core.geometry.resample` extends edge values by half a voxel; a mask that
    touches its grid's border (Slicer crops exported segments to their extent) would grow by up
    to half a voxel there. Padding with zeros first makes the border interpolate to 0 as it does
    inside a larger grid.
    """
    arr = np.pad(mask.array, [(voxels, voxels)] * 3 + [(0, 0)] * (mask.array.ndim - 3))
    affine = mask.affine.copy()
    affine[:3, 3] = mask.ijk_to_ras(np.full(3, -float(voxels)))
    return Volume(arr, affine, mask.name, dict(mask.meta))
