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


_INSIDE_MIN = np.float32(0.5 - 1e-6)
"""A target voxel is inside the source when the trilinear weight of the source's voxels (the
source padded with one voxel of zeros) is at least 0.5: no more than half a voxel outside."""

_CHUNK_VOXELS = 1 << 20
"""Target voxels per chunk of source coordinates (3 float64 each: 24 MiB)."""


def _source_coords(m: np.ndarray, box: tuple[slice, ...], k0: int, k1: int) -> np.ndarray:
    """Continuous source indices ``(3, ni, nj, k1 - k0)`` of the target voxels ``box[0] x box[1] x
    [k0, k1)``.

    Computed in the order of scipy's ``affine_transform`` (offset, then the i, j and k terms),
    so sampling at these points with ``map_coordinates`` gives bitwise its result."""
    i = np.arange(box[0].start, box[0].stop, dtype=float)[:, None, None]
    j = np.arange(box[1].start, box[1].stop, dtype=float)[None, :, None]
    k = np.arange(k0, k1, dtype=float)[None, None, :]
    cc = np.empty((3, i.shape[0], j.shape[1], k.shape[2]))
    for h in range(3):
        cc[h] = m[h, 3]
        cc[h] += i * m[h, 0]
        cc[h] += j * m[h, 1]
        cc[h] += k * m[h, 2]
    return cc


def inside_from_coords(cc: np.ndarray, source_shape) -> np.ndarray:
    """Which points (continuous source indices ``(3, ...)``) lie inside a source grid of
    ``source_shape``: the trilinear interpolation of the source's ones padded with one voxel
    of zeros is at least 0.5 there (at most half a voxel outside along one axis; less at edges
    and corners). That interpolation is the product over the axes of ``clip(min(c + 1, n - c),
    0, 1)``, evaluated here directly from the index map instead of resampling a ones image."""
    frac = np.ones(cc.shape[1:])
    for h, n in enumerate(source_shape):
        frac *= np.clip(np.minimum(cc[h] + 1.0, n - cc[h]), 0.0, 1.0)
    return frac.astype(np.float32) >= _INSIDE_MIN


def _box_of(m: np.ndarray, lo, hi, target_shape) -> tuple[slice, ...] | None:
    """Index box of the target voxels (plus one voxel) whose source indices can lie in the
    continuous source box ``[lo, hi]``; None when it misses the target grid."""
    corners = np.array([[a, b, c, 1.0] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
    t = corners @ np.linalg.inv(m).T
    start = np.maximum(np.floor(t[:, :3].min(axis=0)).astype(int) - 1, 0)
    stop = np.minimum(np.ceil(t[:, :3].max(axis=0)).astype(int) + 2, target_shape)
    if np.any(stop <= start):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))


def _source_crop(m: np.ndarray, box: tuple[slice, ...], source_shape) -> tuple[np.ndarray, np.ndarray]:
    """Index range ``[lo, hi)`` of the source voxels that interpolation reads for the target
    voxels in ``box`` (with a voxel of margin), clipped to the source; ``lo`` is an integer so
    that ``coordinate - lo`` is exact (no effect on the interpolation weights)."""
    t = np.array([[a, b, c, 1.0] for a in (box[0].start, box[0].stop - 1) for b in (box[1].start, box[1].stop - 1)
                  for c in (box[2].start, box[2].stop - 1)])
    s = (t @ m.T)[:, :3]
    n = np.asarray(source_shape)
    lo = np.clip(np.floor(s.min(axis=0)).astype(int) - 1, 0, n - 1)
    hi = np.clip(np.floor(s.max(axis=0)).astype(int) + 3, lo + 1, n)
    return lo, hi


def sample_box(data: np.ndarray, origin, m: np.ndarray, box: tuple[slice, ...], *, order: int,
               fov_shape=None, cval: float = 0.0, out: np.ndarray, out_origin=(0, 0, 0)) -> None:
    """Write into ``out[box]`` (``out``'s element 0 being target voxel ``out_origin``) the values of ``data`` (a source array, or a crop of one whose
    element 0 is the source voxel ``origin``) at the target voxels of ``box``, mapped to source
    indices by ``m`` (4x4, target index -> source index; order 0 or 1, edge values extended).

    With ``fov_shape`` (the whole source's shape) voxels more than half a voxel outside the
    source (:func:`inside_from_coords`) get ``cval``. Bitwise equal to sampling the whole target
    grid with ``ndimage.affine_transform`` and taking ``box``, when ``data`` holds every voxel
    interpolation reads there (or those are outside the source, as extended edges are)."""
    origin = np.asarray(origin, float).reshape(3, 1, 1, 1)
    plane = (box[0].stop - box[0].start) * (box[1].stop - box[1].start)
    step = max(1, _CHUNK_VOXELS // max(plane, 1))
    for k0 in range(box[2].start, box[2].stop, step):
        k1 = min(k0 + step, box[2].stop)
        cc = _source_coords(m, box, k0, k1)
        vals = ndimage.map_coordinates(data, cc - origin if np.any(origin) else cc, order=order, mode="nearest",
                                       prefilter=False)
        if fov_shape is not None:
            vals[~inside_from_coords(cc, fov_shape)] = cval
        o = out_origin
        out[box[0].start - o[0]:box[0].stop - o[0], box[1].start - o[1]:box[1].stop - o[1], k0 - o[2]:k1 - o[2]] = vals


def field_of_view_mask(source_shape, source_affine, target_affine, target_shape) -> np.ndarray:
    """Which voxels of a target grid lie inside a source grid (at most half a voxel outside,
    :func:`inside_from_coords`): what resampling a ones image with ``cval=0`` gives, computed
    from the index map over the target voxels that can overlap the source only."""
    m = target_to_source_index_map(source_affine, target_affine)
    shape = tuple(int(s) for s in target_shape)
    out = np.zeros(shape, bool)
    box = _box_of(m, np.full(3, -1.0), np.asarray(source_shape[:3], float), shape)
    if box is not None:
        sample_box(np.ones((1, 1, 1), bool), (0, 0, 0), m, box, order=0, fov_shape=source_shape[:3], cval=False,
                   out=out)
    return out


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

    Voxel centres on the source's border (up to floating-point noise) keep their value (edge
    values are extended); voxels more than half a voxel outside the source get ``cval``
    (:func:`inside_from_coords`). Only the target voxels that can lie inside the source are
    computed, from only the source voxels they read (order 0 and 1): the cost follows the
    overlap of the two grids, not the target's field of view.
    """
    m = target_to_source_index_map(source.affine, target_affine)
    arr = source.array
    if arr.ndim == 4:
        return np.stack(
            [resample(source.with_array(arr[..., t]), target_affine, target_shape, order=order, cval=cval)
             for t in range(arr.shape[3])], axis=-1)
    shape = tuple(int(s) for s in target_shape)
    dtype = np.float32 if order > 0 else arr.dtype
    n = np.asarray(arr.shape[:3])
    box = _box_of(m, np.full(3, -1.0), n.astype(float), shape)
    out = np.full(shape, cval, dtype=dtype)
    if box is None:
        return out
    if order > 1:  # the spline prefilter is global: sample the whole grid, then keep the field of view
        full = ndimage.affine_transform(arr.astype(np.float32), m[:3, :3], offset=m[:3, 3], output_shape=shape,
                                        order=order, mode="nearest", prefilter=True)
        full[~field_of_view_mask(n, source.affine, target_affine, shape)] = cval
        return full
    lo, hi = _source_crop(m, box, n)
    crop = arr[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    sample_box(crop.astype(dtype, copy=False), lo, m, box, order=order, fov_shape=n, cval=cval, out=out)
    return out


def resample_like(source: Volume, reference: Volume, *, order: int = 1, cval: float = 0.0) -> Volume:
    """``source`` resampled onto ``reference``'s grid; returned as a Volume on that grid."""
    if source.same_grid(reference) and source.array.ndim == 3:
        return source.with_array(source.array.copy())
    return reference.with_array(resample(source, reference.affine, reference.shape3, order=order, cval=cval),
                                name=source.name)


def nonzero_box(array: np.ndarray) -> tuple[slice, ...] | None:
    """Index bounding box (slices) of the non-zero voxels of a 3D array; None when there are none."""
    axes = [np.flatnonzero(array.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    if any(len(a) == 0 for a in axes):
        return None
    return tuple(slice(int(a[0]), int(a[-1]) + 1) for a in axes)


def mask_fraction(mask: np.ndarray, affine, target_affine, target_shape) -> np.ndarray:
    """Linear interpolation (float32) of the 0/1 ``mask`` (on ``affine``), padded with one voxel
    of zeros, at the voxel centres of a target grid; 0 far from the mask.

    Computed only over the target voxels near the mask's bounding box, from the voxels of that
    box: bitwise equal to resampling the whole padded mask over the whole target grid."""
    shape = tuple(int(s) for s in target_shape)
    out = np.zeros(shape, np.float32)
    nz = nonzero_box(mask)
    if nz is None:
        return out
    # the padded mask's frame (index 0 = voxel -1 of the mask), as the full-grid resampling uses
    padded_affine = np.asarray(affine, float).copy()
    padded_affine[:3, 3] = (np.asarray(affine, float) @ np.array([-1.0, -1.0, -1.0, 1.0]))[:3]
    m = target_to_source_index_map(padded_affine, target_affine)
    lo = np.array([s.start for s in nz])  # padded index of the zero voxel before the box
    hi = np.array([s.stop for s in nz]) + 1  # padded index of the zero voxel after the box
    box = _box_of(m, lo - 1.0, hi + 1.0, shape)
    if box is None:
        return out
    crop = np.zeros(tuple(hi - lo + 1), np.float32)
    crop[1:-1, 1:-1, 1:-1] = mask[nz] > 0
    sample_box(crop, lo, m, box, order=1, out=out)
    return out


def resample_labels(labels: np.ndarray, affine, target_affine, target_shape) -> np.ndarray:
    """An integer label map (on ``affine``) carried onto a target grid: per label, linear
    interpolation of its indicator (edge values extended half a voxel, 0 further outside); each
    target voxel takes the label of largest weight >= 0.5 (the smaller label on a tie).

    Each label is interpolated only around its own bounding box, from the voxels of that box:
    bitwise equal to interpolating every indicator over the whole target grid, at the cost of
    the labelled anatomy rather than of (number of labels) x (target field of view)."""
    shape = tuple(int(s) for s in target_shape)
    out = np.zeros(shape, dtype=labels.dtype)
    n = np.asarray(labels.shape[:3])
    m = target_to_source_index_map(affine, target_affine)
    values = np.unique(labels[labels > 0])
    whole = nonzero_box(labels)
    if whole is None:
        return out
    union = _box_of(m, np.array([s.start for s in whole]) - 1.0, np.array([s.stop for s in whole], float), shape)
    if union is None:
        return out
    best = np.zeros(tuple(s.stop - s.start for s in union), np.float32)
    for value in values:
        nz = nonzero_box(labels == value) if len(values) > 1 else whole
        lo = np.maximum([s.start - 1 for s in nz], 0)
        hi = np.minimum([s.stop + 1 for s in nz], n)
        box = _box_of(m, np.array([s.start for s in nz]) - 1.0, np.array([s.stop for s in nz], float), shape)
        if box is None:
            continue
        crop = (labels[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] == value).astype(np.float32)
        part = np.zeros(tuple(s.stop - s.start for s in box), np.float32)
        sample_box(crop, lo, m, box, order=1, fov_shape=n, cval=0.0, out=part, out_origin=[s.start for s in box])
        rel = tuple(slice(b.start - u.start, b.stop - u.start) for b, u in zip(box, union, strict=True))
        take = (part >= 0.5) & (part > best[rel])
        out[box][take] = value
        np.maximum(best[rel], part, out=best[rel])
    return out


def resample_mask_like(mask: Volume, reference: Volume) -> Volume:
    """Binary mask resampled to ``reference``'s grid through world coordinates.

    Linear interpolation of the 0/1 mask thresholded at 0.5: the partial-volume-correct way to
    carry a mask between grids of different resolution (nearest neighbour drops thin structures
    and shifts borders by up to half a voxel). A mask already on ``reference``'s grid (within
    1e-4 mm) is returned as 0/1 unchanged (interpolation at its own voxel centres would give
    it back).
    """
    # A mask is absent outside its grid: pad with one zero voxel so that its border interpolates
    # towards 0 exactly as an interior border does (a mask cropped to its extent, as Slicer
    # exports segments, then resamples identically to the uncropped one).
    if mask.array.ndim == 3 and mask.same_grid(reference):
        return reference.with_array((mask.array > 0).astype(np.uint8), name=mask.name)
    frac = mask_fraction(mask.array > 0, mask.affine, reference.affine, reference.shape3)
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
