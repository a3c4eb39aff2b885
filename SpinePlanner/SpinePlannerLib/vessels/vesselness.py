"""Angiography preprocessing, bone/mass masking, multiscale vesselness and segmentation (L1).

Everything runs on an isotropic *working grid*: a box around the region of interest, aligned
with the angiogram's own voxel axes (so oblique acquisitions are not interpolated twice), with
one voxel size in mm. Arrays are indexed ``[i, j, k]`` of that grid; its ``ijk -> RAS`` affine
comes with them.

Vesselness is a Sato-type tubularity computed from the Hessian of the Gaussian-smoothed image,
scale-normalised by sigma^2 so that its value is in intensity units: a bright tube of contrast C
(HU above its surroundings) responds with about C / 4 at its best scale. It is evaluated only on
bright voxels (candidate lumen), which keeps a multiscale filter on millions of voxels fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from SpinePlannerLib.core.geometry import resample, resample_mask_like
from SpinePlannerLib.core.volume import Volume

FULL_CONNECTIVITY = np.ones((3, 3, 3), bool)
MASK_BONE, MASK_THICK = 1, 2
"""Codes of :func:`bone_and_mass_mask`."""


@dataclass
class WorkingGrid:
    """An isotropic grid (``spacing_mm`` on every axis) covering the analysed region.

    Attributes
    ----------
    affine : np.ndarray
        4x4 ``ijk -> RAS`` (mm).
    shape : tuple of 3 ints
    spacing_mm : float
    """

    affine: np.ndarray
    shape: tuple[int, int, int]
    spacing_mm: float

    def volume(self, array: np.ndarray, name: str = "") -> Volume:
        return Volume(array, self.affine.copy(), name)

    def ijk_to_ras(self, ijk) -> np.ndarray:
        ijk = np.asarray(ijk, float)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def ras_to_ijk(self, ras) -> np.ndarray:
        inv = np.linalg.inv(self.affine)
        return np.asarray(ras, float) @ inv[:3, :3].T + inv[:3, 3]

    @property
    def n_voxels(self) -> int:
        return int(np.prod(self.shape))


def roi_box_ras(points_ras: np.ndarray, *, lateral_margin_mm: float, axial_margin_mm: float,
                axis=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Corners (8, 3) RAS of a box around ``points_ras`` expanded by the margins (mm).

    The box is aligned with ``axis`` (cranio-caudal, unit RAS vector; the cord axis when known)
    and two perpendicular directions; ``axial_margin_mm`` applies along ``axis``.
    """
    from SpinePlannerLib.measurement.lesion import in_plane_basis

    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    u, v = in_plane_basis(axis)
    frame = np.stack([u, v, axis])  # rows
    local = np.asarray(points_ras, float) @ frame.T
    margin = np.array([lateral_margin_mm, lateral_margin_mm, axial_margin_mm])
    lo, hi = local.min(axis=0) - margin, local.max(axis=0) + margin
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
    return corners @ frame


def working_grid_for(angio: Volume, *, spacing_mm: float, roi_corners_ras: np.ndarray | None = None) -> WorkingGrid:
    """Isotropic grid along ``angio``'s voxel axes covering ``roi_corners_ras`` ∩ the angio field.

    Parameters
    ----------
    angio : Volume
        The angiogram (any affine).
    spacing_mm : float
        Voxel size of the working grid (mm).
    roi_corners_ras : array (N, 3) or None
        Points whose bounding box (in the angio's axis frame) is the region; None = whole field.
    """
    if spacing_mm <= 0:
        raise ValueError(f"spacing_mm must be > 0, got {spacing_mm}")
    direction = angio.direction
    extent = (np.asarray(angio.shape3) - 1) * angio.spacing  # along each axis, mm
    lo, hi = np.zeros(3), extent.copy()
    if roi_corners_ras is not None:
        local = (np.asarray(roi_corners_ras, float) - angio.origin) @ direction  # coordinates along angio axes (mm)
        lo = np.maximum(lo, local.min(axis=0))
        hi = np.minimum(hi, local.max(axis=0))
        if np.any(hi <= lo):
            raise ValueError("the region of interest does not overlap the angiography field of view")
    shape = tuple(int(np.floor((b - a) / spacing_mm + 1e-6)) + 1 for a, b in zip(lo, hi, strict=True))
    affine = np.eye(4)
    affine[:3, :3] = direction * spacing_mm
    affine[:3, 3] = angio.origin + direction @ lo
    return WorkingGrid(affine, shape, float(spacing_mm))


def choose_spacing(angio: Volume, roi_corners_ras: np.ndarray | None, *, requested_mm: float, min_mm: float,
                   max_voxels: int) -> float:
    """Working voxel size (mm): ``requested_mm`` if > 0, else the finest angio spacing (not below
    ``min_mm``), coarsened until the region fits in ``max_voxels``."""
    if requested_mm > 0:
        return float(requested_mm)
    h = max(float(angio.spacing.min()), float(min_mm))
    for _ in range(40):
        if working_grid_for(angio, spacing_mm=h, roi_corners_ras=roi_corners_ras).n_voxels <= max_voxels:
            return h
        h *= 1.1
    return h


def is_ct(angio: Volume) -> bool:
    """True when the image looks like Hounsfield units.

    ``meta["units"] == "HU"``, or a 1st percentile below -500 (air, outside the body), or (for a
    cropped field without air) clearly negative values (0.5th percentile below -50: fat) with a
    soft-tissue median between -150 and 150. MR magnitudes are not negative.
    """
    if str(angio.meta.get("units", "")).upper() == "HU":
        return True
    arr = angio.array
    step = max(1, arr.size // 500_000)
    p_low, p1, med = np.percentile(arr.ravel()[::step], [0.5, 1.0, 50.0])
    return bool(p1 < -500.0 or (p_low < -50.0 and -150.0 <= med <= 150.0))


def mr_to_pseudo_hu(values: np.ndarray, *, soft_tissue_hu: float = 40.0, bright_hu: float = 400.0) -> np.ndarray:
    """Rescale an MR angiogram so that its median maps to ``soft_tissue_hu`` and its 99.9th
    percentile (the brightest vessels) to ``bright_hu``; the HU-based settings then apply."""
    v = np.asarray(values, np.float32)
    step = max(1, v.size // 500_000)
    sample = v.ravel()[::step]
    med, top = np.percentile(sample, [50.0, 99.9])
    scale = (bright_hu - soft_tissue_hu) / max(float(top - med), 1e-6)
    return ((v - med) * scale + soft_tissue_hu).astype(np.float32)


def crop_to_footprint(volume: Volume, affine, shape, *, margin_voxels: int = 2) -> Volume | None:
    """The part of ``volume`` that the grid (``affine``, ``shape``) can sample, with a margin.

    Resampling a small region out of a large image (a 512 x 512 x 300 CTA) then touches only the
    voxels it needs. Returns None when the grid lies entirely outside ``volume``.
    """
    n = np.asarray(shape) - 1
    corners = np.array([[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])], float)
    ras = corners @ np.asarray(affine, float)[:3, :3].T + np.asarray(affine, float)[:3, 3]
    ijk = volume.ras_to_ijk(ras)
    lo = np.maximum(np.floor(ijk.min(axis=0)).astype(int) - margin_voxels, 0)
    hi = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + margin_voxels + 1, np.asarray(volume.shape3))
    if np.any(hi <= lo):
        return None
    sub = volume.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    a = volume.affine.copy()
    a[:3, 3] = volume.ijk_to_ras(lo.astype(float))
    return Volume(sub, a, volume.name, dict(volume.meta))


def resample_to_grid(volume: Volume, grid: WorkingGrid, *, order: int = 1, cval: float = 0.0) -> np.ndarray:
    """``volume`` sampled at the working grid's voxel centres (float32); only the needed part of
    ``volume`` is read."""
    sub = crop_to_footprint(volume, grid.affine, grid.shape)
    if sub is None:
        return np.full(grid.shape, cval, np.float32)
    return resample(sub, grid.affine, grid.shape, order=order, cval=cval).astype(np.float32, copy=False)


def box_around_voxels(source: Volume, voxels: np.ndarray, target_affine, target_shape):
    """The box of a target grid covering ``voxels`` (indices into ``source``) grown by a voxel.

    Returns ``(lo, hi, sub_affine, sub_shape)`` (target index range and the sub-grid's geometry),
    or None when the voxels fall outside the target grid.
    """
    target_affine = np.asarray(target_affine, float)
    lo_s, hi_s = voxels.min(axis=0) - 1, voxels.max(axis=0) + 1
    box = np.array([[a, b, c] for a in (lo_s[0], hi_s[0]) for b in (lo_s[1], hi_s[1]) for c in (lo_s[2], hi_s[2])],
                   float)
    inv = np.linalg.inv(target_affine)
    g = source.ijk_to_ras(box) @ inv[:3, :3].T + inv[:3, 3]
    lo = np.maximum(np.floor(g.min(axis=0)).astype(int) - 1, 0)
    hi = np.minimum(np.ceil(g.max(axis=0)).astype(int) + 2, np.asarray(target_shape))
    if np.any(hi <= lo):
        return None
    sub_affine = target_affine.copy()
    sub_affine[:3, 3] = target_affine[:3, :3] @ lo + target_affine[:3, 3]
    return lo, hi, sub_affine, tuple(int(v) for v in hi - lo)


def mask_to_grid(mask: Volume, grid: WorkingGrid) -> np.ndarray:
    """A 0/1 mask carried onto the working grid (partial-volume correct, threshold 0.5).

    Only the working-grid box around the mask's non-zero voxels is resampled.
    """
    out = np.zeros(grid.shape, bool)
    idx = np.argwhere(mask.array > 0)
    if idx.size == 0:
        return out
    found = box_around_voxels(mask, idx, grid.affine, grid.shape)
    if found is None:
        return out
    lo, hi, sub_affine, sub_shape = found
    src = crop_to_footprint(mask, sub_affine, sub_shape)
    if src is None:
        return out
    sub = resample_mask_like(src, Volume(np.zeros(sub_shape, np.uint8), sub_affine)).array > 0
    out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = sub
    return out


def ball(radius_vox: float) -> np.ndarray:
    r = int(np.ceil(radius_vox))
    z = np.indices((2 * r + 1,) * 3) - r
    return (z**2).sum(axis=0) <= radius_vox**2 + 1e-9


def _opening_by_ball(mask: np.ndarray, radius_mm: float, spacing_mm: float) -> np.ndarray:
    """Morphological opening of ``mask`` by a ball of ``radius_mm``: the union of every ball of
    that radius that fits inside (structures thinner than 2 x radius vanish). Computed with two
    distance transforms on a grid coarsened to about radius / 2.5 (structures of interest are thick)."""
    factor = max(1, int(np.floor(radius_mm / spacing_mm / 2.5)))
    if factor > 1:
        pad = [(0, (-s) % factor) for s in mask.shape]
        m = np.pad(mask, pad)
        sh = [s // factor for s in m.shape]
        coarse = m.reshape(sh[0], factor, sh[1], factor, sh[2], factor).mean(axis=(1, 3, 5)) >= 0.5
    else:
        coarse = mask
    h = spacing_mm * factor
    # structures cut by the edge of the region continue beyond it (edge padding), so that a thick
    # vessel cropped to a thin slab by the region of interest is still recognised as thick
    p = int(np.ceil(radius_mm / h)) + 1
    padded = np.pad(coarse, p, mode="edge")
    inside = ndimage.distance_transform_edt(padded) * h
    seeds = inside > radius_mm
    if not np.any(seeds):
        return np.zeros_like(mask, dtype=bool)
    opened = (ndimage.distance_transform_edt(~seeds) * h <= radius_mm)[p:-p, p:-p, p:-p]
    if factor > 1:
        opened = np.repeat(np.repeat(np.repeat(opened, factor, 0), factor, 1), factor, 2)
        opened = opened[: mask.shape[0], : mask.shape[1], : mask.shape[2]]
        # the coarse grid makes the edge jagged by up to one coarse voxel: recover the edge voxels
        opened = ndimage.binary_dilation(opened, structure=FULL_CONNECTIVITY, iterations=factor, mask=mask)
    return opened & mask


def bone_and_mass_mask(hu: np.ndarray, spacing_mm: float, *, lumen_min_hu: float, bone_min_hu: float,
                       max_vessel_radius_mm: float, rim_mm: float = 1.0, keep: np.ndarray | None = None,
                       interface_mm: float = 0.0) -> np.ndarray:
    """Voxels of bone, metal and thick bright masses on a CT angiogram (working grid).

    Returns uint8 codes: 0 kept, ``MASK_BONE`` bone or metal (with its rim), ``MASK_THICK`` a
    thick bright mass that is not enclosed bone (aorta, calcified or enhancing mass).

    Bone responds to vesselness as strongly as vessels, and calcified or enhancing tumors are as
    bright as contrast, so three things are masked:

    * cortical bone and metal (``>= bone_min_hu``) with the bright interior they enclose
      (cancellous bone is as bright as contrast), after closing canals of 1-2 mm in the shell;
    * bright structures (``>= lumen_min_hu``) thicker than ``2 * max_vessel_radius_mm``
      (vertebral bodies, a calcified tumor, the aorta) by morphological opening;
    * a partial-volume rim of ``rim_mm`` (at least one voxel) around both.

    ``keep`` (e.g. the tumor) is removed from the filled cortical interior, so that a lytic
    lesion inside a vertebral body is not hidden as bone; it also closes the cortical breach the
    lesion makes, so that the remaining cancellous bone is still filled. Voxels lying between
    ``keep`` and cortical bone (both within ``interface_mm``, on opposite sides) are masked too:
    the thin bone left between a lesion and the cortex is bright and plate- or ring-shaped.
    """
    cortical = hu >= bone_min_hu
    bright = hu >= lumen_min_hu
    # the shell is closed over small holes first (nutrient and feeder canals, ~1-2 mm), then only
    # bright enclosed voxels (cancellous bone) are filled: fat pockets that bones happen to enclose
    # in the cropped region are not bone
    shell = ndimage.binary_closing(cortical, structure=ball(max(1.5, 1.0 / spacing_mm)), border_value=0)
    if keep is not None:  # the lesion plugs its own breach of the cortex: fill, then give it back
        shell |= keep
    filled = ndimage.binary_fill_holes(shell) & bright
    if keep is not None:
        filled &= ~keep
    filled |= cortical
    thick = _opening_by_ball(bright, max_vessel_radius_mm, spacing_mm)
    masked = filled | thick
    if keep is not None and interface_mm > 0 and np.any(keep):
        pad = int(np.ceil(interface_mm / spacing_mm)) + 1
        idx = np.argwhere(keep)
        lo = np.maximum(idx.min(axis=0) - pad, 0)
        hi = np.minimum(idx.max(axis=0) + pad + 1, np.asarray(keep.shape))
        box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
        d_keep, i_keep = ndimage.distance_transform_edt(~keep[box], return_indices=True)
        d_bone, i_bone = ndimage.distance_transform_edt(~cortical[box], return_indices=True)
        here = np.indices(d_keep.shape)
        # between lesion and cortex: the nearest lesion and bone voxels lie on opposite sides
        facing = np.sum((i_keep - here) * (i_bone - here), axis=0) < 0
        near = (d_keep * spacing_mm <= interface_mm) & (d_bone * spacing_mm <= interface_mm)
        masked[box] |= near & facing & ~keep[box] & ~cortical[box]
    rim_vox = max(rim_mm / spacing_mm, 1.0)
    if rim_vox <= 3.0:
        grown = ndimage.binary_dilation(masked, structure=ball(rim_vox))
    else:
        grown = ndimage.distance_transform_edt(~masked) * spacing_mm <= rim_mm
    codes = np.zeros(hu.shape, np.uint8)
    codes[grown] = MASK_THICK
    codes[grown & ~(thick & ~filled)] = MASK_BONE
    codes[thick & ~filled] = MASK_THICK
    return codes


def scales_for(spacing_mm: float, scale_min_mm: float, scale_max_mm: float, n_scales: int) -> np.ndarray:
    """Gaussian scales (mm): a geometric series, none below half the working spacing."""
    lo = max(scale_min_mm, 0.5 * spacing_mm)
    hi = max(scale_max_mm, lo)
    if n_scales == 1 or hi <= lo * 1.0001:
        return np.array([lo])
    return np.geomspace(lo, hi, n_scales)


def _hessian_at(smoothed: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Finite-difference Hessian (per voxel^2) of ``smoothed`` at interior voxels ``idx`` (N, 3)."""
    f = smoothed
    i, j, k = idx[:, 0], idx[:, 1], idx[:, 2]
    c = f[i, j, k]
    h = np.empty((len(idx), 3, 3), np.float32)
    h[:, 0, 0] = f[i + 1, j, k] - 2 * c + f[i - 1, j, k]
    h[:, 1, 1] = f[i, j + 1, k] - 2 * c + f[i, j - 1, k]
    h[:, 2, 2] = f[i, j, k + 1] - 2 * c + f[i, j, k - 1]
    h[:, 0, 1] = h[:, 1, 0] = 0.25 * (f[i + 1, j + 1, k] - f[i + 1, j - 1, k] - f[i - 1, j + 1, k] + f[i - 1, j - 1, k])
    h[:, 0, 2] = h[:, 2, 0] = 0.25 * (f[i + 1, j, k + 1] - f[i + 1, j, k - 1] - f[i - 1, j, k + 1] + f[i - 1, j, k - 1])
    h[:, 1, 2] = h[:, 2, 1] = 0.25 * (f[i, j + 1, k + 1] - f[i, j + 1, k - 1] - f[i, j - 1, k + 1] + f[i, j - 1, k - 1])
    return h


def sato_bright(eigenvalues: np.ndarray, *, alpha1: float = 0.5, alpha2: float = 2.0) -> np.ndarray:
    """Sato line measure for bright tubes from Hessian eigenvalues sorted ascending (N, 3).

    With l3 <= l2 <= l1 (l1 along the vessel): zero unless l2 < 0; else ``|l2| * exp(-l1^2 /
    (2 (a |l2|)^2))`` with a = ``alpha1`` when l1 <= 0 (blob suppression) and ``alpha2`` when
    l1 > 0.
    """
    l3, l2, l1 = eigenvalues[:, 0], eigenvalues[:, 1], eigenvalues[:, 2]
    lc = np.maximum(-l2, 0.0)
    a = np.where(l1 <= 0, alpha1, alpha2)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.exp(-(l1**2) / (2.0 * (a * lc) ** 2 + 1e-12))
    out = lc * w
    out[l3 > l2] = 0.0  # cannot happen for sorted input; keeps the contract explicit
    return out.astype(np.float32)


def multiscale_vesselness(image: np.ndarray, candidates: np.ndarray, *, spacing_mm: float,
                          scales_mm) -> tuple[np.ndarray, np.ndarray]:
    """Scale-normalised bright-tube vesselness, maximal over ``scales_mm``, at ``candidates``.

    Parameters
    ----------
    image : array float32 on an isotropic grid
    candidates : bool array, same shape
        Where to evaluate (elsewhere the result is 0).
    spacing_mm : float
        Voxel size (mm) of the grid.
    scales_mm : sequence of float
        Gaussian standard deviations (mm).

    Returns
    -------
    (vesselness, best_scale_mm) : float32 arrays of ``image.shape``.
    """
    padded = np.pad(image.astype(np.float32, copy=False), 1, mode="edge")
    cand = np.pad(candidates, 1)
    cand[0, :, :] = cand[-1, :, :] = cand[:, 0, :] = cand[:, -1, :] = cand[:, :, 0] = cand[:, :, -1] = False
    idx = np.argwhere(cand)
    best = np.zeros(len(idx), np.float32)
    best_scale = np.zeros(len(idx), np.float32)
    for sigma in scales_mm:
        s_vox = float(sigma) / spacing_mm
        smoothed = ndimage.gaussian_filter(padded, s_vox, mode="nearest", truncate=3.0)
        if len(idx) == 0:
            continue
        hess = _hessian_at(smoothed, idx) * np.float32(s_vox**2)
        ev = np.linalg.eigvalsh(hess)
        v = sato_bright(ev)
        better = v > best
        best[better] = v[better]
        best_scale[better] = sigma
    out = np.zeros(image.shape, np.float32)
    scale_out = np.zeros(image.shape, np.float32)
    if len(idx):
        out[idx[:, 0] - 1, idx[:, 1] - 1, idx[:, 2] - 1] = best
        scale_out[idx[:, 0] - 1, idx[:, 1] - 1, idx[:, 2] - 1] = best_scale
    return out, scale_out


def hysteresis(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Voxels ``> low`` 26-connected to at least one voxel ``>= high``."""
    lab, n = ndimage.label(values > low, structure=FULL_CONNECTIVITY)
    if n == 0:
        return np.zeros(values.shape, bool)
    strong = np.unique(lab[values >= high])
    strong = strong[strong > 0]
    keep = np.zeros(n + 1, bool)
    keep[strong] = True
    return keep[lab]


def grow_lumen(seeds: np.ndarray, allowed: np.ndarray, *, steps: int) -> np.ndarray:
    """Voxels of ``allowed`` reachable from ``seeds`` in at most ``steps`` 26-neighbour steps
    (the whole lumen around the tubular core that the vesselness found)."""
    if steps <= 0:
        return seeds & allowed
    return ndimage.binary_dilation(seeds & allowed, structure=FULL_CONNECTIVITY, iterations=steps, mask=allowed)


def remove_small_components(mask: np.ndarray, min_voxels: int) -> np.ndarray:
    """Drop 26-connected components smaller than ``min_voxels``."""
    if min_voxels <= 1:
        return mask
    lab, n = ndimage.label(mask, structure=FULL_CONNECTIVITY)
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[lab]
