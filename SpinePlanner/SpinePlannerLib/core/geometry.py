"""Resampling through world (RAS) coordinates and small geometric helpers.

Everything here works for oblique, anisotropic and arbitrarily ordered grids because it maps
target voxel centres to RAS and then into the source grid's voxel indices; there is no
per-axis shortcut.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from SpinePlannerLib.core.volume import Volume


def target_to_source_index_map(source_affine, target_affine) -> np.ndarray:
    """4x4 matrix mapping target voxel indices to (continuous) source voxel indices."""
    return np.linalg.inv(np.asarray(source_affine, float)) @ np.asarray(target_affine, float)


def resample(source: Volume, target_affine, target_shape, *, order: int = 1, cval: float = 0.0) -> np.ndarray:
    """Sample ``source`` at the voxel centres of a target grid.

    Parameters
    ----------
    source : Volume
        3D image (4D images are resampled volume by volume along the last axis).
    target_affine : array (4, 4)
        ``ijk -> RAS`` of the target grid (mm).
    target_shape : tuple of 3 ints
        Target grid shape.
    order : int
        Spline order (0 nearest, 1 trilinear, 3 cubic).
    cval : float
        Value outside the source field of view.

    Returns
    -------
    np.ndarray indexed ``[i, j, k]`` of the target grid (float32 for order > 0, source dtype for order 0).
    """
    m = target_to_source_index_map(source.affine, target_affine)
    arr = source.array
    if arr.ndim == 4:
        return np.stack(
            [resample(source.with_array(arr[..., t]), target_affine, target_shape, order=order, cval=cval)
             for t in range(arr.shape[3])], axis=-1)
    data = arr.astype(np.float32) if order > 0 else arr
    shape = tuple(int(s) for s in target_shape)
    # 'nearest' extends edge values so that voxel centres lying on the source's border (up to
    # floating-point noise) keep their value; then everything further than half a voxel outside
    # the source is set to cval, using a linear ramp of a zero-padded ones image (0.5 there).
    out = ndimage.affine_transform(data, m[:3, :3], offset=m[:3, 3], output_shape=shape, order=order,
                                   mode="nearest", prefilter=order > 1)
    ones = np.pad(np.ones(arr.shape[:3], np.float32), 1)
    inside = ndimage.affine_transform(ones, m[:3, :3], offset=m[:3, 3] + 1.0, output_shape=shape, order=1,
                                      mode="constant", cval=0.0) >= 0.5 - 1e-6
    out[~inside] = cval
    return out


def resample_like(source: Volume, reference: Volume, *, order: int = 1, cval: float = 0.0) -> Volume:
    """``source`` resampled onto ``reference``'s grid; returned as a Volume on that grid."""
    if source.same_grid(reference) and source.array.ndim == 3:
        return source.with_array(source.array.copy())
    return reference.with_array(resample(source, reference.affine, reference.shape3, order=order, cval=cval),
                                name=source.name)


def resample_mask_like(mask: Volume, reference: Volume) -> Volume:
    """Binary mask resampled to ``reference``'s grid through world coordinates.

    Linear interpolation of the 0/1 mask thresholded at 0.5: the partial-volume-correct way to
    carry a mask between grids of different resolution (nearest neighbour drops thin structures
    and shifts borders by up to half a voxel).
    """
    # A mask is absent outside its grid: pad with one zero voxel so that its border interpolates
    # towards 0 exactly as an interior border does (a mask cropped to its extent, as Slicer
    # exports segments, then resamples identically to the uncropped one).
    padded = np.pad((mask.array > 0).astype(np.float32), 1)
    affine = mask.affine.copy()
    affine[:3, 3] = mask.ijk_to_ras([-1.0, -1.0, -1.0])
    frac = resample(Volume(padded, affine), reference.affine, reference.shape3, order=1, cval=0.0)
    return reference.with_array((frac >= 0.5).astype(np.uint8), name=mask.name)


def world_overlap_fraction(a: Volume, b: Volume) -> float:
    """Fraction of ``a``'s voxel-centre bounding box (RAS) that lies inside ``b``'s bounding box."""
    amin, amax = a.bounds_ras()
    bmin, bmax = b.bounds_ras()
    inter = np.clip(np.minimum(amax, bmax) - np.maximum(amin, bmin), 0, None)
    size = np.maximum(amax - amin, 1e-6)
    return float(np.prod(inter) / np.prod(size))


def mask_centroid_ras(mask: Volume) -> np.ndarray | None:
    """RAS centroid (mm) of the non-zero voxels, or None for an empty mask."""
    idx = np.argwhere(mask.array > 0)
    if idx.size == 0:
        return None
    return mask.ijk_to_ras(idx.mean(axis=0))


def mask_volume_ml(mask: Volume) -> float:
    """Volume of the non-zero voxels in mL."""
    return float(np.count_nonzero(mask.array) * mask.voxel_volume_ml)
