"""Helpers shared by the segmentation engines (L1): working grids, components, overlap scores.

The engines segment on a *working grid* whose axes point approximately along R, A and S, so
that "axial slice" means ``array[:, :, k]`` whatever the acquisition orientation. For images
whose voxel axes are already (nearly) aligned with the patient axes the working grid is an
exact permutation/flip of the original voxels (no interpolation); strongly anisotropic images
are resampled through world coordinates onto an isotropic grid.
"""

from __future__ import annotations

from itertools import permutations

import numpy as np
from scipy import ndimage

from SpinePlannerLib.core.geometry import resample, resample_labels, resample_mask_like
from SpinePlannerLib.core.volume import Volume


def axis_permutation(affine) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Voxel axis and sign that best follows each of R, A, S.

    Returns ``(perm, signs)``: working axis ``r`` is source axis ``perm[r]``, traversed in the
    direction ``signs[r]`` (+1 or -1).
    """
    d = np.asarray(affine, float)[:3, :3]
    d = d / np.linalg.norm(d, axis=0)
    best = max(permutations(range(3)), key=lambda p: sum(abs(d[r, p[r]]) for r in range(3)))
    signs = tuple(1 if d[r, best[r]] >= 0 else -1 for r in range(3))
    return tuple(best), signs


def ras_aligned_view(volume: Volume) -> Volume:
    """The same voxels with axes permuted and flipped to run along +R, +A, +S (exact)."""
    perm, signs = axis_permutation(volume.affine)
    arr = np.transpose(volume.array, perm)
    aff = np.eye(4)
    aff[:3, 3] = volume.affine[:3, 3]
    for r in range(3):
        col = volume.affine[:3, perm[r]]
        if signs[r] < 0:
            arr = np.flip(arr, axis=r)
            aff[:3, 3] += col * (volume.shape3[perm[r]] - 1)
            col = -col
        aff[:3, r] = col
    return Volume(np.ascontiguousarray(arr), aff, volume.name, dict(volume.meta))


def working_grid(volume: Volume, *, spacing_mm: float, max_anisotropy: float, order: int = 1,
                 min_spacing_mm: float = 0.0) -> Volume:
    """A RAS-aligned grid of ``volume``.

    An exact axis permutation when the voxels are nearly isotropic (largest/smallest size at
    most ``max_anisotropy``) and not finer than ``min_spacing_mm``; otherwise an isotropic
    resampling (through world coordinates) of the same field of view at ``spacing_mm`` (or the
    smallest voxel size when that is coarser and the image is not too fine).
    """
    view = ras_aligned_view(volume)
    sp = view.spacing
    if sp.max() / sp.min() <= max_anisotropy and sp.min() >= min_spacing_mm:
        return view
    step = isotropic_step(sp, spacing_mm=spacing_mm, min_spacing_mm=min_spacing_mm)
    extent = (np.asarray(view.shape3) - 1) * sp
    shape = tuple(int(np.floor(e / step)) + 1 for e in extent)
    aff = view.affine.copy()
    aff[:3, :3] = view.direction * step
    arr = resample(view, aff, shape, order=order, cval=float(np.min(view.array)))
    return Volume(arr, aff, volume.name, dict(volume.meta))


def isotropic_step(spacing, *, spacing_mm: float, min_spacing_mm: float = 0.0) -> float:
    """Voxel size (mm) of an isotropic resampling of voxels of size ``spacing``: ``spacing_mm``,
    or the smallest voxel size when that is finer (at least 0.2 mm), unless the voxels are finer
    than ``min_spacing_mm`` (then ``spacing_mm``)."""
    sp_min = float(np.min(spacing))
    if sp_min < min_spacing_mm:
        return spacing_mm
    return max(min(sp_min, spacing_mm), 0.2)


def mask_to_grid(mask: np.ndarray, grid: Volume, target: Volume) -> Volume:
    """A 0/1 mask on ``grid`` carried onto ``target``'s grid through world coordinates."""
    src = grid.with_array(mask.astype(np.uint8))
    if src.same_grid(target):
        return src
    return resample_mask_like(src, target)


def labels_to_grid(labels: np.ndarray, grid: Volume, target: Volume) -> Volume:
    """An integer label map on ``grid`` carried onto ``target``'s grid (per-label linear
    interpolation of the indicator, each target voxel taking the label of largest weight >= 0.5)."""
    src = grid.with_array(labels)
    if src.same_grid(target):
        return src.with_array(labels.copy())
    return target.with_array(resample_labels(labels, grid.affine, target.affine, target.shape3))


def largest_component(mask: np.ndarray, *, structure=None) -> np.ndarray:
    """The largest connected component of a binary mask (empty stays empty)."""
    lab, n = ndimage.label(mask, structure=structure)
    if n <= 1:
        return lab > 0
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def component_at(mask: np.ndarray, point, *, structure=None) -> np.ndarray:
    """The connected component of ``mask`` containing voxel ``point`` (or the one nearest to it)."""
    lab, n = ndimage.label(mask, structure=structure)
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    idx = tuple(int(round(c)) for c in point)
    value = lab[idx] if all(0 <= i < s for i, s in zip(idx, mask.shape, strict=True)) else 0
    if value == 0:
        pts = np.argwhere(lab > 0)
        value = lab[tuple(pts[np.argmin(np.sum((pts - np.asarray(point)) ** 2, axis=1))])]
    return lab == value


def ball(radius_mm: float, spacing) -> np.ndarray:
    """Boolean ball structuring element of ``radius_mm`` for voxels of ``spacing`` (mm)."""
    sp = np.asarray(spacing, float)
    r = np.maximum(np.floor(radius_mm / sp + 1e-9).astype(int), 0)
    grids = np.meshgrid(*[np.arange(-k, k + 1) * s for k, s in zip(r, sp, strict=True)], indexing="ij")
    return sum(g**2 for g in grids) <= radius_mm**2 + 1e-9


def disk(radius_mm: float, spacing2) -> np.ndarray:
    """Boolean disk structuring element (2D) of ``radius_mm`` for pixels of ``spacing2`` (mm)."""
    return ball(radius_mm, tuple(spacing2))


def dice(a, b) -> float:
    """Dice overlap of two binary arrays (1.0 when both are empty)."""
    a = np.asarray(a) > 0
    b = np.asarray(b) > 0
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * float(np.count_nonzero(a & b)) / total


def robust_range(values: np.ndarray) -> tuple[float, float]:
    """1st and 99th percentiles of ``values`` (a subsample for large arrays)."""
    a = np.asarray(values)
    if a.size <= 400_000:
        v = a.ravel()
    elif a.flags.c_contiguous:
        v = a.ravel()[:: a.size // 400_000]
    else:  # the same samples as from the raveled copy, without copying the whole array
        v = a[np.unravel_index(np.arange(0, a.size, a.size // 400_000), a.shape)]
    lo, hi = np.percentile(v, [1.0, 99.0])
    return float(lo), float(hi)


def convex_per_axial_slice(mask: Volume) -> Volume:
    """``mask`` with each axial slice replaced by its convex hull (on the nearest RAS-aligned
    voxel ordering, exact; returned on ``mask``'s grid). The thecal sac's outline including a
    tumor that displaces the CSF at its rim."""
    from skimage.morphology import convex_hull_image

    view = ras_aligned_view(mask.with_array((mask.array > 0).astype(np.uint8)))
    out = np.zeros(view.shape3, bool)
    for k in range(view.shape3[2]):
        sl = view.array[:, :, k] > 0
        if sl.sum() >= 3:
            out[:, :, k] = convex_hull_image(sl)
    return mask_to_grid(out, view, mask)


def nanmedian_quiet(values: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmedian`` that gives NaN for all-NaN slices without a warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(values, axis=axis)


def running(values: np.ndarray, window: int, fn=nanmedian_quiet) -> np.ndarray:
    """``fn(windows, axis=1)`` (nan-aware) over a centred window of ``window`` samples of a 1D
    array, shrinking at the ends (a running median by default)."""
    half = max(1, window // 2)
    pad = np.r_[np.full(half, np.nan), values, np.full(half, np.nan)]
    return fn(np.lib.stride_tricks.sliding_window_view(pad, 2 * half + 1), axis=1)


OUTLIER_MM = 2.5
"""Default of :func:`drop_outliers`: the spine's own curvature moves a centreline point less than
0.5 mm from the running median over 20 mm."""


def outlier_points(pts: np.ndarray, *, window_mm: float = 20.0, max_mm: float = OUTLIER_MM) -> np.ndarray:
    """Which points of a line (N, 3; mm, ordered along it) lie farther than ``max_mm`` from the
    running median of their neighbours over ``window_mm`` of the line (e.g. stray cord fragments
    beside a tumor), measured across the line (the median lags along the line near its ends).
    Two passes: the second catches the shoulders of a removed excursion. Returns a boolean array
    (True: outlier); nothing is flagged on lines of fewer than 5 points or when fewer than 2
    would be left."""
    pts = np.asarray(pts, float)
    out = np.zeros(len(pts), bool)
    for _ in range(2):
        idx = np.flatnonzero(~out)
        if len(idx) < 5:
            break
        p = pts[idx]
        step = float(np.median(np.linalg.norm(np.diff(p, axis=0), axis=1))) or 1.0
        window = max(5, int(round(window_mm / step)))
        med = np.stack([running(p[:, i], window) for i in range(p.shape[1])], axis=1)
        tangent = np.gradient(med, axis=0)
        tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-12)
        off = p - med
        across = off - np.sum(off * tangent, axis=1, keepdims=True) * tangent
        far = np.linalg.norm(across, axis=1) > max_mm
        if (~far).sum() < 2:
            break
        out[idx[far]] = True
    return out


def drop_outliers(pts: np.ndarray, *, window_mm: float = 20.0, max_mm: float = OUTLIER_MM) -> np.ndarray:
    """The points of a line (N, 3; mm) without those :func:`outlier_points` flags."""
    pts = np.asarray(pts, float)
    return pts[~outlier_points(pts, window_mm=window_mm, max_mm=max_mm)]
