"""Spinal cord and thecal sac (cord + CSF) segmentation, classical engine (L1).

Method (MRI)
------------
The image is put on a RAS-aligned working grid (exact axis permutation, or isotropic
resampling when strongly anisotropic) so axial slices are ``array[:, :, k]``. On T2-like
contrast (CSF bright; on T1 the intensities are inverted first) the cord is a dark hole in the
bright CSF ring:

1. *Candidates*: per axial slice, dark regions fully enclosed by bright voxels (above the upper
   three-class Otsu threshold) whose area lies in ``CordParams.cord_area_mm2``.
2. *Tracking*: the longest chain of candidates linked across slices (centre moving less than a
   few mm per slice, short gaps allowed) is the cord; shorter chains are other structures.
3. *Border*: per slice the border is placed at ``cord + f * (CSF - cord)`` of the local median
   intensities (``f = boundary_fraction``, 0.5 = half maximum). Where the CSF ring is broken
   (cord touching the dura, effaced CSF at a tumor) the slice inherits its neighbour's cord,
   dilated by one voxel and intersected with the dark voxels.
4. *Thecal sac*: cord plus the bright voxels connected to it within ``max_sac_radius_mm`` of the
   cord centre, holes filled.

Method (CT)
-----------
Bone (> ``bone_hu``) rings are closed and filled per slice; the enclosed soft tissue of canal
size, tracked as above, is the bony canal. The thecal sac is the canal without epidural fat; the
cord is *approximated* by the canal's central part (CT does not separate cord from CSF) and is
flagged ``approximate`` in the result.

Honest failure: no tracked chain, a chain shorter than ``min_length_mm`` or a CSF/cord contrast
below ``min_contrast`` gives ``found=False`` with the reason and no mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_multiotsu
from skimage.measure import regionprops

from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.planning.context import Progress, no_progress
from SpinePlannerLib.segmentation.common import (
    disk,
    mask_to_grid,
    outlier_points,
    robust_range,
    running,
    working_grid,
)
from SpinePlannerLib.segmentation.params import CordParams

MRI_T2_LIKE = ("t2", "stir")

STRAY_MM = 5.0
"""A tracked candidate whose centre lies farther than this (mm) across the cord from the running
median (over ``AXIS_WINDOW_MM``) of the tracked centres is not on the cord: a dark hole beside
it (nerve root, the gap next to a tumor) that the tracking took to bridge slices."""

AXIS_WINDOW_MM = 20.0
"""Length (mm along the cord) of the running median that gives the cord's axis."""

LEAK_FACTOR = 2.5
"""Beside a given tumor, an axial slice of the cord (tumor removed) larger than this many times the
cord's median slice area has leaked out of the cord (through the gap the tumor left in the CSF
ring); it is trimmed to its neighbours' cord grown by one voxel."""
MRI_T1_LIKE = ("t1", "t1c")


def contrast_family(role: str) -> str:
    """``"t2"`` (CSF bright), ``"t1"`` (CSF dark) or ``"ct"`` for an image role."""
    role = role.lower()
    if role in MRI_T2_LIKE:
        return "t2"
    if role in MRI_T1_LIKE:
        return "t1"
    if role in ("ct", "sct", "angio"):
        return "ct"
    raise ValueError(f"no cord contrast known for image role {role!r} (use t2, stir, t1, t1c or ct)")


@dataclass
class CordResult:
    """Outcome of :func:`segment_cord`.

    Attributes
    ----------
    found : bool
        False when the cord could not be followed (then ``cord`` and ``csf`` are None).
    reason : str
        Why not found, or a short description of the evidence when found.
    cord, csf : Volume or None
        0/1 masks on the input image's grid: spinal cord and thecal sac (cord + CSF).
    canal : Volume or None
        CT only: the bony canal's interior.
    centerline_ras : np.ndarray (N, 3)
        Cord centre per working slice, RAS mm, ordered inferior to superior.
    approximate : bool
        True when the cord is a geometric approximation (CT).
    metrics : dict
        Numbers behind the verdict (contrast, tracked length, slices bridged, ...).
    """

    found: bool
    reason: str
    contrast: str
    cord: Volume | None = None
    csf: Volume | None = None
    canal: Volume | None = None
    centerline_ras: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    approximate: bool = False
    metrics: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """JSON-ready description for ``plan["segmentation"]["cord"]``."""
        out = {"found": bool(self.found), "reason": self.reason, "contrast": self.contrast,
               "method": "classical", "approximate": bool(self.approximate)}
        out.update({k: (round(float(v), 3) if isinstance(v, float | np.floating) else v)
                    for k, v in self.metrics.items()})
        return out


# -- candidate detection and tracking ---------------------------------------------------------
@dataclass
class _Candidate:
    k: int
    mask: np.ndarray  # 2D bool
    centre: np.ndarray  # (2,) pixel coordinates (i, j)
    area_mm2: float


def _enclosed_dark(bright: np.ndarray) -> np.ndarray:
    """Dark pixels fully enclosed by ``bright`` (also across one-pixel gaps of the ring)."""
    holes = ndimage.binary_fill_holes(bright) & ~bright
    closed = ndimage.binary_closing(bright, structure=np.ones((3, 3), bool), border_value=0)
    holes_c = ndimage.binary_fill_holes(closed) & ~closed
    holes_c = ndimage.binary_dilation(holes_c, structure=np.ones((3, 3), bool)) & ~bright
    return holes | holes_c


def _slice_candidates(image: np.ndarray, thresholds, spacing, area_range,
                      max_inside: float | None = None) -> list[list[_Candidate]]:
    """Per axial slice, compact dark regions enclosed by voxels above any of ``thresholds``
    (highest first; a region overlapping one already found at a higher threshold is skipped),
    whose median intensity is at most ``max_inside`` when given."""
    px = float(spacing[0] * spacing[1])
    out: list[list[_Candidate]] = []
    for k in range(image.shape[2]):
        cands: list[_Candidate] = []
        taken = np.zeros(image.shape[:2], bool)
        for thr in thresholds:
            found = _holes_as_candidates(image[:, :, k] > thr, k, px, area_range)
            for c in found:
                if max_inside is not None and np.median(image[:, :, k][c.mask]) > max_inside:
                    continue
                if not (c.mask & taken).any():
                    cands.append(c)
                    taken |= c.mask
        out.append(cands)
    return out


def _holes_as_candidates(bright: np.ndarray, k: int, px: float, area_range) -> list[_Candidate]:
    lab, n = ndimage.label(_enclosed_dark(bright))
    if n == 0:
        return []
    areas = np.bincount(lab.ravel(), minlength=n + 1) * px
    areas[0] = 0
    cands = []
    for v in np.flatnonzero((areas >= area_range[0]) & (areas <= area_range[1])):
        m = lab == v
        ij = np.argwhere(m)
        # compactness: the region fills a fair part of its bounding ellipse
        ext = ij.max(axis=0) - ij.min(axis=0) + 1
        if m.sum() < 0.4 * np.pi / 4 * ext[0] * ext[1]:
            continue
        cands.append(_Candidate(k, m, ij.mean(axis=0), float(areas[v])))
    return cands


def _track(cands: list[list[_Candidate]], spacing, *, max_step_mm: float = 3.0, max_gap: int = 4) -> list[_Candidate]:
    """Longest chain of candidates across slices (dynamic programming, gaps up to ``max_gap``)."""
    flat = [c for cs in cands for c in cs]
    if not flat:
        return []
    index = {id(c): n for n, c in enumerate(flat)}
    score = np.ones(len(flat))
    prev = -np.ones(len(flat), int)
    sp = np.asarray(spacing[:2], float)
    for n, c in enumerate(flat):
        for g in range(1, max_gap + 2):
            kp = c.k - g
            if kp < 0:
                break
            for p in cands[kp]:
                step = np.linalg.norm((p.centre - c.centre) * sp)
                if step > max_step_mm * g:
                    continue
                ratio = max(p.area_mm2, c.area_mm2) / min(p.area_mm2, c.area_mm2)
                s = score[index[id(p)]] + 1.0 - 0.1 * (ratio > 2.0)
                if s > score[n]:
                    score[n] = s
                    prev[n] = index[id(p)]
    n = int(np.argmax(score))
    chain = []
    while n >= 0:
        chain.append(flat[n])
        n = int(prev[n])
    return chain[::-1]


def _on_axis(chain: list[_Candidate], spacing) -> list[_Candidate]:
    """The chain without the candidates off the cord's axis (more than ``STRAY_MM`` across it from
    the running median of the chain's centres): the tracking may hop to a dark hole beside the
    cord (and back) to bridge slices where the cord's own ring is broken, e.g. at a tumor."""
    if len(chain) < 5:
        return chain
    sp = np.asarray(spacing, float)
    pts = np.array([[*(c.centre * sp[:2]), c.k * sp[2]] for c in chain])
    off = outlier_points(pts, window_mm=AXIS_WINDOW_MM, max_mm=STRAY_MM)
    return [c for c, o in zip(chain, off, strict=True) if not o]


def _drop_stray_pieces(mask: np.ndarray, spacing) -> np.ndarray:
    """``mask`` (the cord on a RAS-aligned working grid) without the pieces of its axial slices
    that lie off the cord: a piece is kept when it comes within the cord's typical radius (from
    the median area of the slices' largest pieces) of the cord's axis, the running median (over
    ``AXIS_WINDOW_MM``) of the largest pieces' centres (the cord around a removed intramedullary
    tumor is a ring about the axis). Fragments beside a tumor (the cord mask
    minus the tumor, a dark gap next to it) go; a slice whose only piece is such a fragment is
    left empty."""
    sp = np.asarray(spacing, float)
    ks = [k for k in range(mask.shape[2]) if mask[:, :, k].any()]
    if len(ks) < 5:
        return mask
    pieces, main, areas = {}, [], []
    for k in ks:
        lab, n = ndimage.label(mask[:, :, k])
        sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:]
        pieces[k] = (lab, n)
        big = int(np.argmax(sizes)) + 1
        main.append(np.argwhere(lab == big).mean(axis=0) * sp[:2])
        areas.append(sizes[big - 1] * sp[0] * sp[1])
    main = np.array(main)
    window = max(5, int(round(AXIS_WINDOW_MM / sp[2])))
    axis = np.stack([running(main[:, d], window) for d in range(2)], axis=1)
    radius = float(np.sqrt(np.median(areas) / np.pi))
    out = np.zeros_like(mask)
    for k, centre in zip(ks, axis, strict=True):
        lab, n = pieces[k]
        ij = np.argwhere(lab > 0)
        near = np.linalg.norm(ij * sp[:2] - centre, axis=1) <= radius
        keep = np.unique(lab[tuple(ij[near].T)])
        out[:, :, k] = np.isin(lab, keep[keep > 0])
    return out


def _trim_leaks(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Axial slices of ``mask`` larger than ``LEAK_FACTOR`` times its median slice area, trimmed
    to the union of their neighbours' regions grown by one voxel, from the slices nearest to
    regular ones outwards. Returns (mask, slices trimmed)."""
    area = mask.sum(axis=(0, 1))
    has = np.flatnonzero(area)
    if len(has) < 5:
        return mask, 0
    leaky = np.flatnonzero(area > LEAK_FACTOR * float(np.median(area[has])))
    regular = np.setdiff1d(has, leaky)
    if not leaky.size or not regular.size:
        return mask, 0
    mask = mask.copy()
    todo = set(leaky.tolist())
    for k in sorted(leaky, key=lambda k: int(np.min(np.abs(regular - k)))):
        prior = np.zeros(mask.shape[:2], bool)
        for kk in (k - 1, k + 1):
            if 0 <= kk < mask.shape[2] and kk not in todo:  # regular or already trimmed
                prior |= mask[:, :, kk]
        mask[:, :, k] &= ndimage.binary_dilation(prior, structure=np.ones((3, 3), bool))
        todo.discard(k)
    return mask, len(leaky)


def _refill_gaps(mask: np.ndarray, dark: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, int]:
    """Axial slices of ``mask`` that are empty between slices with voxels (and ``allowed``: the
    structure was followed through them) take their neighbours' region grown by one voxel within
    ``dark``, holes filled, from the nearest filled slices inwards. Returns (mask, slices filled)."""
    has = mask.any(axis=(0, 1))
    idx = np.flatnonzero(has)
    if len(idx) < 2:
        return mask, 0
    gaps = [k for k in range(idx[0] + 1, idx[-1]) if not has[k] and allowed[k]]
    if not gaps:
        return mask, 0
    mask = mask.copy()
    filled = 0
    for k in sorted(gaps, key=lambda k: int(np.min(np.abs(idx - k)))):
        prior = np.zeros(mask.shape[:2], bool)
        for kk in (k - 1, k + 1):
            prior |= mask[:, :, kk]
        if not prior.any():
            continue
        grown = ndimage.binary_dilation(prior, structure=np.ones((3, 3), bool)) & dark[:, :, k]
        if grown.any():
            mask[:, :, k] = ndimage.binary_fill_holes(grown)
            filled += 1
    return mask, filled


# -- per-slice borders ----------------------------------------------------------------------------
def _levels(img2: np.ndarray, core: np.ndarray, centre, spacing2) -> tuple[float, float]:
    """Cord level (median within 1.5 mm of ``centre``) and CSF level (90th percentile of the
    3 mm band around the candidate region ``core``)."""
    ring = ndimage.binary_dilation(core, structure=disk(3.0, spacing2)) & ~core
    inner = _disk_roi(img2.shape, centre, max(1.5 / float(np.sqrt(spacing2[0] * spacing2[1])), 1.0))
    cord_level = float(np.median(img2[inner]))
    csf_level = float(np.percentile(img2[ring], 90)) if ring.any() else cord_level
    return cord_level, csf_level


def _hole_at(img2: np.ndarray, centre, thr: float, roi: np.ndarray, close_px: int = 0) -> np.ndarray | None:
    """The dark region at ``centre`` enclosed by voxels >= ``thr`` inside ``roi`` (gaps of the
    ring up to ``2 * close_px`` pixels closed first); None if the ring is open."""
    bright = (img2 >= thr) | ~roi
    if close_px > 0:
        bright = ndimage.binary_closing(bright, structure=disk(close_px, (1.0, 1.0)), border_value=1)
    i, j = (int(round(c)) for c in centre)
    if not (0 <= i < img2.shape[0] and 0 <= j < img2.shape[1]) or bright[i, j]:
        return None
    holes = ndimage.binary_fill_holes(bright) & ~bright
    if not holes[i, j]:
        return None
    lab, _ = ndimage.label(holes)
    m = lab == lab[i, j]
    if (ndimage.binary_dilation(m) & ~roi).any():
        return None  # only the limit of the search region encloses it: the ring is open
    return m


def _solidity(mask: np.ndarray) -> float:
    return float(regionprops(mask.astype(np.uint8))[0].solidity) if mask.any() else 0.0


def _stable_hole(img2: np.ndarray, centre, levels, fraction: float, roi: np.ndarray, area_px,
                 *, steps: int = 8, max_jump: float = 1.35, close_px: int = 0) -> np.ndarray | None:
    """The enclosed dark region at ``centre`` for the border ``cord + fraction * (CSF - cord)``.

    The border is raised from 0.15 towards ``fraction`` of the cord-CSF contrast; when the
    region suddenly grows (by more than ``max_jump``: the CSF ring opened and the region leaked
    outside) the last stable region is kept, like a maximally stable extremal region.
    """
    cl, csf = levels
    best = None
    for f in np.linspace(min(0.15, fraction), fraction, steps):
        m = _hole_at(img2, centre, cl + f * (csf - cl), roi, close_px)
        if m is None:
            break
        area = int(m.sum())
        if area > area_px[1] or (best is not None and area > max_jump * best.sum()):
            break
        best = m
    if best is None or best.sum() < area_px[0]:
        return None
    return best


def _cord_border(img2: np.ndarray, centre, levels, fraction: float, roi: np.ndarray, area_px,
                 *, min_solidity: float = 0.85) -> np.ndarray | None:
    """The cord in one slice: the stable enclosed dark region, closing gaps of the CSF ring of
    up to 4 pixels when the region is not compact (it leaked through an open ring)."""
    for close_px in (0, 1, 2):
        m = _stable_hole(img2, centre, levels, fraction, roi, area_px, close_px=close_px)
        if m is not None and _solidity(m) >= min_solidity:
            return m
    return None


def _disk_roi(shape2, centre, radius_px) -> np.ndarray:
    ii, jj = np.ogrid[: shape2[0], : shape2[1]]
    return (ii - centre[0]) ** 2 + (jj - centre[1]) ** 2 <= radius_px**2


def _interp_centres(chain: list[_Candidate], nk: int) -> np.ndarray:
    ks = np.array([c.k for c in chain], float)
    cs = np.array([c.centre for c in chain], float)
    out = np.empty((nk, 2))
    for d in range(2):
        out[:, d] = np.interp(np.arange(nk), ks, cs[:, d])
    return out


@dataclass
class _Tube:
    """A dark tube enclosed by a bright ring, followed slice by slice on a working grid."""

    mask: np.ndarray
    levels: dict  # k -> (inside level, ring level), in the image's units
    metrics: dict


def _follow_tube(img: np.ndarray, thresholds, spacing, *, area_mm2, fraction: float, radius_mm: float,
                 min_length_mm: float, bridge_dilate: bool, max_step_mm: float, what: str,
                 max_inside: float | None = None, max_gap_mm: float = 12.0, min_track_fraction: float = 0.0):
    """Find and delineate the longest dark tube enclosed by a brighter ring along axis 2.

    Returns ``(_Tube, "")`` or ``(None, reason)``.
    """
    sp = np.asarray(spacing, float)
    cands = _slice_candidates(img, thresholds, sp, area_mm2, max_inside)
    chain = _track(cands, sp, max_step_mm=max_step_mm, max_gap=int(np.ceil(max_gap_mm / sp[2])))
    chain = _on_axis(chain, sp)
    length = (chain[-1].k - chain[0].k + 1) * sp[2] if chain else 0.0
    metrics = {"tracked_length_mm": float(length), "slices_tracked": len(chain)}
    if not chain:
        return None, metrics, f"no {what} was found in any axial slice"
    if length < min_length_mm:
        return None, metrics, (f"the {what} could be followed over only {length:.1f} mm (< {min_length_mm} mm): "
                               "not in the field of view or not enclosed by a visible ring")
    span = chain[-1].k - chain[0].k + 1
    metrics["tracked_fraction"] = len(chain) / span
    if len(chain) < min_track_fraction * span:
        return None, metrics, (f"the {what} was seen in only {len(chain)} of the {span} slices it would cross "
                               f"(< {min_track_fraction:.0%}): no continuous tube, not trusted")
    nk = img.shape[2]
    centres = _interp_centres(chain, nk)
    px = sp[0] * sp[1]
    area_px = (area_mm2[0] / px * 0.5, area_mm2[1] / px)
    r_px = radius_mm / float(np.sqrt(px))
    ext = int(np.ceil(6.0 / sp[2]))  # follow the tube at most 6 mm beyond the tracked range
    ks = range(max(0, chain[0].k - ext), min(nk, chain[-1].k + ext + 1))
    tube = np.zeros(img.shape, bool)
    levels: dict[int, tuple[float, float]] = {}
    direct = set()
    chain_levels = {c.k: _levels(img[:, :, c.k], c.mask, c.centre, sp[:2]) for c in chain}
    chain_ks = np.array(sorted(chain_levels))
    pad = int(np.ceil(r_px)) + 3
    for k in ks:
        # work in a crop around the search disk (same result, much less morphology)
        c = centres[k]
        i0, j0 = max(int(c[0]) - pad, 0), max(int(c[1]) - pad, 0)
        i1, j1 = min(int(c[0]) + pad + 1, img.shape[0]), min(int(c[1]) + pad + 1, img.shape[1])
        img2 = img[i0:i1, j0:j1, k]
        local = c - np.array([i0, j0])
        roi = _disk_roi(img2.shape, local, r_px)
        # levels from this slice's candidate, else from the nearest tracked slice
        inside, ring = chain_levels[int(chain_ks[np.argmin(np.abs(chain_ks - k))])]
        if ring <= inside:
            continue
        levels[k] = (inside, ring)
        m = _cord_border(img2, local, levels[k], fraction, roi, area_px)
        if m is not None:
            tube[i0:i1, j0:j1, k] = m
            direct.add(k)
    # slices whose ring is open: the neighbour's region (one voxel wider on MRI) within the dark voxels
    order = sorted(set(levels) - direct, key=lambda k: min((abs(k - d) for d in direct), default=0))
    bridged = 0
    for k in order:
        nb = [kk for kk in (k - 1, k + 1) if 0 <= kk < nk and tube[:, :, kk].any()]
        if not nb:
            continue
        prior = np.zeros(img.shape[:2], bool)
        for kk in nb:
            prior |= tube[:, :, kk]
        if bridge_dilate:
            prior = ndimage.binary_dilation(prior, structure=np.ones((3, 3), bool))
        inside, ring = levels[k]
        grown = prior & (img[:, :, k] < inside + fraction * (ring - inside))
        if grown.any():
            tube[:, :, k] = ndimage.binary_fill_holes(grown)
            bridged += 1
    metrics["slices_bridged"] = bridged
    if not tube.any():
        return None, metrics, f"the ring around the {what} never closed at the half-maximum border"
    lab, n = ndimage.label(tube)  # the pieces of the tube that hold tracked candidates
    if n > 1:
        hits = [lab[int(round(c.centre[0])), int(round(c.centre[1])), c.k] for c in chain]
        keep = np.unique([h for h in hits if h > 0])
        if keep.size == 0:
            sizes = np.bincount(lab.ravel())
            sizes[0] = 0
            keep = np.array([int(np.argmax(sizes))])
        tube = np.isin(lab, keep)
    levels = {k: v for k, v in levels.items() if tube[:, :, k].any()}
    return _Tube(tube, levels, metrics), metrics, ""


def _sac_slice(img2: np.ndarray, cord2: np.ndarray, thr: float, roi: np.ndarray) -> np.ndarray:
    """Cord plus the voxels >= ``thr`` connected to its border within ``roi``, holes filled."""
    bright = (img2 >= thr) & roi
    lab2, _ = ndimage.label(bright)
    keep = np.unique(lab2[ndimage.binary_dilation(cord2, structure=np.ones((3, 3), bool)) & bright])
    return ndimage.binary_fill_holes(cord2 | np.isin(lab2, keep[keep > 0]))


def _segment_mri(img: np.ndarray, spacing, params: CordParams, progress: Progress):
    """Cord, sac, (cord, CSF) medians and metrics on a working grid whose image has CSF bright."""
    sp = np.asarray(spacing, float)
    lo, hi = robust_range(img)
    norm = (img - lo) / max(hi - lo, 1e-6)
    if params.smoothing_mm > 0:
        norm = ndimage.gaussian_filter(norm, sigma=params.smoothing_mm / sp)
    sample = norm[::2, ::2, ::2].ravel()
    sample = sample[sample > np.percentile(sample, 20)]
    t_low, t_bright = (float(t) for t in threshold_multiotsu(sample, classes=3))
    progress(0.15, "cord candidates")
    thresholds = [t_bright - f * (t_bright - t_low) for f in (0.0, 0.25, 0.5)]
    tube, metrics, reason = _follow_tube(
        norm, thresholds, sp, area_mm2=params.cord_area_mm2, fraction=params.boundary_fraction,
        radius_mm=params.max_sac_radius_mm, min_length_mm=params.min_length_mm, bridge_dilate=True,
        max_step_mm=3.0, what="dark cord inside bright CSF", min_track_fraction=params.min_track_fraction)
    if tube is None:
        return None, None, None, metrics, reason
    progress(0.7, "thecal sac")
    cord = tube.mask
    r_px = params.max_sac_radius_mm / float(np.sqrt(sp[0] * sp[1]))
    sac = np.zeros(img.shape, bool)
    ring2 = disk(2.0, sp[:2])
    for k, (cl, csf) in tube.levels.items():
        m = cord[:, :, k]
        roi = _disk_roi(m.shape, np.argwhere(m).mean(axis=0), r_px)
        first = _sac_slice(norm[:, :, k], m, cl + 0.5 * (csf - cl), roi)
        # outer border half-way between CSF and the tissue just outside the sac (dura, fat, bone)
        band = ndimage.binary_dilation(first, structure=ring2) & ~first & roi
        outside = float(np.median(norm[:, :, k][band])) if band.any() else cl
        thr = outside + params.sac_fraction * (csf - outside)
        sac[:, :, k] = _sac_slice(norm[:, :, k], m, thr, roi)
    vals = np.array(list(tube.levels.values()))
    levels = (lo + float(np.median(vals[:, 0])) * (hi - lo), lo + float(np.median(vals[:, 1])) * (hi - lo))
    return cord, sac, levels, metrics, ""


def _centreline(cord: np.ndarray, grid: Volume, *, sigma_mm: float = 1.5) -> np.ndarray:
    """Centre (RAS mm) of each axial slice of ``cord`` (on the RAS-aligned ``grid``), inferior to
    superior, without the centres off the line (:func:`seg_common.drop_outliers`), smoothed
    along it (Gaussian, ``sigma_mm``)."""
    ks = [k for k in range(cord.shape[2]) if cord[:, :, k].any()]
    if not ks:
        return np.zeros((0, 3))
    pts = np.array([[*np.argwhere(cord[:, :, k]).mean(axis=0), k] for k in ks], float)
    pts = pts[~outlier_points(pts * grid.spacing, window_mm=AXIS_WINDOW_MM)]
    if len(pts) >= 3 and sigma_mm > 0:
        pts[:, :2] = ndimage.gaussian_filter1d(pts[:, :2], sigma=sigma_mm / grid.spacing[2], axis=0, mode="nearest")
    return grid.ijk_to_ras(pts)


def _segment_ct(img: np.ndarray, spacing, params: CordParams, progress: Progress):
    """Bony canal, thecal sac (canal without fat) and an approximate cord on a CT working grid."""
    sp = np.asarray(spacing, float)
    progress(0.15, "bony canal candidates")
    soft = 60.0  # HU, a documented midpoint: above muscle and CSF, below partial-volume bone
    thresholds = [params.bone_hu, soft + 0.5 * (params.bone_hu - soft), soft + 0.25 * (params.bone_hu - soft)]
    tube, metrics, reason = _follow_tube(
        img, thresholds, sp, area_mm2=(40.0, 600.0), fraction=0.5, radius_mm=max(params.max_sac_radius_mm, 15.0),
        min_length_mm=params.min_length_mm, bridge_dilate=False, max_step_mm=4.0, what="soft-tissue canal enclosed by bone",
        max_inside=soft, max_gap_mm=20.0)
    if tube is None:
        return None, None, None, metrics, reason
    canal = tube.mask
    progress(0.6, "thecal sac and approximate cord")
    sac = canal & (img > -30.0)
    sac = ndimage.binary_opening(sac, structure=np.ones((3, 3, 1), bool)) | (canal & ndimage.binary_erosion(canal))
    cord = np.zeros(img.shape, bool)
    for k in range(img.shape[2]):
        s = sac[:, :, k]
        if not s.any():
            continue
        dist = ndimage.distance_transform_edt(s, sampling=sp[:2])
        cut = np.quantile(dist[s], 1.0 - params.ct_cord_fraction)
        cord[:, :, k] = s & (dist >= cut)
    inside = img[canal]
    around = img[ndimage.binary_dilation(canal, iterations=2) & ~canal]
    metrics["canal_median_hu"] = float(np.median(inside)) if inside.size else 0.0
    metrics["canal_wall_median_hu"] = float(np.median(around)) if around.size else 0.0
    return cord, sac, canal, metrics, ""


def bony_canal(img: np.ndarray, spacing, params: CordParams | None = None) -> tuple[np.ndarray | None, str]:
    """The bony spinal canal on a RAS-aligned CT working grid (HU array, axial slices along axis 2).

    Returns ``(mask, "")`` or ``(None, reason)``.
    """
    _cord, _sac, canal, _metrics, reason = _segment_ct(np.asarray(img, np.float32), spacing,
                                                        params or CordParams(), no_progress)
    return canal, reason


def segment_cord(volume: Volume, *, contrast: str, params: CordParams | None = None,
                 tumor: Volume | None = None, tumor_value: float | None = None,
                 progress: Progress = no_progress) -> CordResult:
    """Segment the spinal cord and thecal sac.

    Parameters
    ----------
    volume : Volume
        3D MRI or CT in any orientation and voxel size (RAS affine).
    contrast : str
        ``"t2"`` (CSF bright: T2, STIR), ``"t1"`` (CSF dark: T1, T1c) or ``"ct"`` (HU).
    params : CordParams
        Settings (defaults documented in :class:`~SpinePlannerLib.segmentation.params.CordParams`).
    tumor : Volume or None
        0/1 tumor mask (any grid overlapping ``volume``). Its voxels are given the cord's
        intensity while the CSF ring is searched (an intramedullary or intradural tumor then
        belongs to the enclosed region whatever its signal) and are removed from the cord.
    tumor_value : float or None
        The cord's intensity (image units; ``CordResult.metrics["cord_median"]`` of a pass without
        the tumor). Estimated by such a first pass when not given.
    progress : callable(fraction, message)

    Returns
    -------
    CordResult
        Masks on ``volume``'s grid, or ``found=False`` with the reason.
    """
    params = params or CordParams()
    if contrast not in ("t2", "t1", "ct"):
        raise ValueError(f"contrast must be 't2', 't1' or 'ct', got {contrast!r}")
    if volume.array.ndim != 3:
        raise ValueError("segment_cord expects a 3D volume")
    progress(0.0, "working grid")
    grid = working_grid(volume, spacing_mm=params.working_spacing_mm, max_anisotropy=params.max_anisotropy)
    img = grid.array.astype(np.float32)
    sp = grid.spacing
    tumor_w = None
    if tumor is not None and np.any(tumor.array):
        tumor_w = mask_to_grid(tumor.array > 0, tumor, grid).array > 0
    if contrast == "ct":
        cord, sac, canal, metrics, reason = _segment_ct(img, sp, params, progress)
        approximate = True
        if cord is not None:
            contrast_value = metrics["canal_wall_median_hu"] - metrics["canal_median_hu"]
            metrics["canal_contrast_hu"] = contrast_value
    else:
        work = -img if contrast == "t1" else img
        if tumor_w is not None and tumor_w.any():
            # the tumor takes the cord's level (from a first pass without it unless given)
            if tumor_value is not None:
                fill = -tumor_value if contrast == "t1" else tumor_value
            else:
                _c, _s, first_levels, _m, _r = _segment_mri(work, sp, params, no_progress)
                fill = first_levels[0] if first_levels is not None else float(np.percentile(work, 30))
            work = work.copy()
            work[tumor_w] = fill
        cord, sac, levels, metrics, reason = _segment_mri(work, sp, params, progress)
        canal = None
        approximate = False
        if cord is not None:
            cord_i, csf_i = levels
            if contrast == "t1":
                cord_i, csf_i = -cord_i, -csf_i
            denom = abs(cord_i) + abs(csf_i)
            ratio = abs(csf_i - cord_i) / denom if denom > 0 else 0.0
            metrics.update(cord_median=cord_i, csf_median=csf_i, contrast_ratio=ratio)
            if ratio < params.min_contrast:
                cord = sac = None
                reason = (f"CSF/cord contrast {ratio:.2f} is below {params.min_contrast} "
                          "(documented setting): the image does not separate the cord")
    if cord is None:
        return CordResult(False, reason, contrast, metrics=metrics)
    followed = cord.any(axis=(0, 1))  # the slices the cord was followed through
    if tumor_w is not None:
        sac = sac | (cord & tumor_w)
        cord = cord & ~tumor_w
        metrics["tumor_voxels_excluded"] = int(tumor_w.sum())
    on_axis = _drop_stray_pieces(cord, sp)
    metrics["stray_voxels_dropped"] = int(np.count_nonzero(cord & ~on_axis))
    cord = on_axis
    if tumor_w is not None and contrast != "ct":
        cord, metrics["slices_trimmed"] = _trim_leaks(cord)
        # where the enclosed region was the tumor only (a CSF cleft between it and the cord), the
        # cord continues from its neighbours within the dark voxels outside the tumor
        dark = (work < levels[0] + params.boundary_fraction * (levels[1] - levels[0])) & ~tumor_w
        cord, metrics["slices_refilled"] = _refill_gaps(cord, dark, followed)
    progress(0.9, "centreline and resampling")
    centreline = _centreline(cord, grid)
    out_cord = mask_to_grid(cord, grid, volume)
    out_sac = mask_to_grid(sac | cord, grid, volume)
    out_canal = mask_to_grid(canal, grid, volume) if canal is not None else None
    vox_ml = volume.voxel_volume_ml
    metrics["cord_volume_ml"] = float(out_cord.array.sum() * vox_ml)
    metrics["thecal_sac_volume_ml"] = float(out_sac.array.sum() * vox_ml)
    how = ("cord approximated as the central part of the bony canal (CT does not separate cord from CSF)"
           if approximate else "dark cord inside bright CSF ring, half-maximum border")
    progress(1.0, "cord segmented")
    return CordResult(True, how, contrast, cord=out_cord, csf=out_sac, canal=out_canal,
                      centerline_ras=centreline, approximate=approximate, metrics=metrics)
