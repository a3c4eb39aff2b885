"""Tumor from one seed point, refinable with more seeds (classical engine, L1).

Method
------
1. The seed's intensity ``mu`` is the median in a ball of ``seed_radius_mm``; its spread
   ``sigma`` the robust standard deviation there (at least 1 % of the image's robust range).
   A seed darker than ``background_fraction`` of the robust range (MRI) or below -500 HU (CT)
   lies in background: :class:`~SpinePlannerLib.core.errors.InputError`.
2. A first region is grown from the seed within ``mu +- tolerance_sd * sigma``. The median
   intensities of the darker and of the brighter tissue in a shell 1-3 mm around it are the
   neighbour levels; the final accepted range reaches half-way to each neighbour level
   (half-maximum borders), but never closer to ``mu`` than ``tolerance_sd * sigma``.
3. The region is the connected component at the seed of the accepted voxels within
   ``max_radius_mm``, inside the allowed region (the thecal sac when the seed is in it: an
   intradural tumor; outside the sac otherwise), after an opening of ``opening_mm`` that cuts
   thin leaks; holes are filled.
4. *Leak cut*: a region still reaching ``max_radius_mm`` has leaked into a neighbour of the
   same signal (e.g. a lytic lesion and fat or disc on T2). It is opened with balls of growing
   radius (``leak_cut_step_mm`` up to ``leak_cut_max_mm``); at the first radius where the seed's
   opened component no longer reaches the limit, the narrowest constriction between the tumor and
   the leak is cut: that component, regrown by ``reconstruction_steps`` voxel layers inside the
   region, is the tumor (a warning says so: parts of the tumor thinner than twice that radius,
   e.g. an epidural extension, may be left out).
   *Barrier*: voxels of ``barrier`` (e.g. the intervertebral discs next to a bone lesion's level,
   :func:`disc_barrier`) are never entered; a region touching them is reported (``stats``
   ``stopped_at_barrier`` and a warning).
5. Refinement ("grow from seeds"): every extra foreground seed adds the component grown from it
   with its own statistics; background seeds inside the region split it with a marker watershed
   of the region's distance map (foreground seeds against background seeds: the cut runs
   through the narrowest constriction between them), keeping the foreground side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.signal import find_peaks
from scipy.spatial import cKDTree
from skimage.segmentation import watershed

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.planning.context import Progress, no_progress
from SpinePlannerLib.segmentation.common import ball, component_at, robust_range
from SpinePlannerLib.segmentation.params import TumorParams


@dataclass
class TumorResult:
    """Outcome of :func:`grow_tumor`.

    Attributes
    ----------
    mask : Volume
        0/1 tumor mask on the input image's grid.
    stats : dict
        Seed median and spread, accepted range, neighbour levels (image units), voxel count,
        whether the search radius was reached.
    warnings : list of str
    """

    mask: Volume
    stats: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)


def _seed_ijk(volume: Volume, ras, option: str) -> np.ndarray:
    ras = np.asarray(ras, float)
    if ras.shape != (3,) or not np.all(np.isfinite(ras)):
        raise InputError(option, f"expected three numbers R,A,S in mm, got {ras.tolist()}")
    if not volume.contains_ras(ras):
        lo, hi = volume.bounds_ras()
        raise InputError(option, f"point {np.round(ras, 2).tolist()} is outside the image "
                                 f"(RAS bounds {np.round(lo, 1).tolist()} .. {np.round(hi, 1).tolist()} mm)")
    return np.clip(np.round(volume.ras_to_ijk(ras)).astype(int), 0, np.asarray(volume.shape3) - 1)


def _crop_box(shape, centre_ijk, half) -> tuple[slice, slice, slice]:
    return tuple(slice(max(int(c) - int(h), 0), min(int(c) + int(h) + 1, int(s)))
                 for c, h, s in zip(centre_ijk, half, shape, strict=True))


def _ball_values(img: np.ndarray, ijk, radius_mm: float, spacing) -> np.ndarray:
    st = ball(radius_mm, spacing)
    r = (np.asarray(st.shape) - 1) // 2
    sl = tuple(slice(max(c - k, 0), c + k + 1) for c, k in zip(ijk, r, strict=True))
    sub = img[sl]
    off = tuple(max(k - c, 0) for c, k in zip(ijk, r, strict=True))
    st = st[tuple(slice(o, o + n) for o, n in zip(off, sub.shape, strict=True))]
    return sub[st]


def _neighbour_levels(values: np.ndarray, sigma: float, mu: float) -> tuple[float | None, float | None]:
    """Tissue levels next to the tumor's: of the histogram peaks of ``values`` (bins of half
    ``sigma``, smoothed over one ``sigma``, at least 15 % as high as the highest), the nearest one below
    ``mu - sigma`` and the nearest one above ``mu + sigma`` (None where there is none).

    The shell around a region mixes pure neighbouring tissues (peaks) with partial-volume voxels
    (spread thinly between the peaks); the border lies towards the *nearest* tissue on each side.
    """
    if values.size < 10:
        return None, None
    lo, hi = float(values.min()), float(values.max())
    n = int(np.clip((hi - lo) / max(sigma / 2.0, 1e-6), 1, 400))
    hist, edges = np.histogram(values, bins=n, range=(lo, hi + 1e-6))
    hist = ndimage.gaussian_filter1d(hist.astype(float), 2.0, mode="constant")
    peaks, _ = find_peaks(np.concatenate([[0.0], hist, [0.0]]), height=0.15 * hist.max())
    centres = (edges[peaks - 1] + edges[peaks]) / 2
    below, above = centres[centres < mu - sigma], centres[centres > mu + sigma]
    return (float(below.max()) if below.size else None, float(above.min()) if above.size else None)


def _partial_volume_rim(img: np.ndarray, region: np.ndarray, mu: float, allowed: np.ndarray,
                        passes: int = 1) -> np.ndarray:
    """Add border voxels that are at least half tumor by the *local* half-maximum rule.

    A voxel next to the region with value ``v`` is a mix of tumor (``mu``) and the tissue beyond
    it; with that tissue's level ``n`` taken as the most different value among its 26
    neighbours outside the region, the voxel is included when ``v`` lies on the tumor's side of
    ``(mu + n) / 2``. The border towards CSF and towards the cord thus each sit at their own
    half-maximum, which one global intensity range cannot do.
    """
    st = ndimage.generate_binary_structure(3, 1)
    for _ in range(passes):
        rim = ndimage.binary_dilation(region, structure=st) & ~region & allowed
        if not rim.any():
            break
        hi_nb = ndimage.maximum_filter(np.where(region, -np.inf, img), footprint=st)
        lo_nb = ndimage.minimum_filter(np.where(region, np.inf, img), footprint=st)
        take = rim & (((img > mu) & (img <= (mu + hi_nb) / 2)) | ((img <= mu) & (img >= (mu + lo_nb) / 2)))
        if not take.any():
            break
        region = region | take
    return region


def _grow_one(img: np.ndarray, ijk, spacing, params: TumorParams, allowed: np.ndarray, sigma_floor: float,
              tissue_levels=()):
    """Region grown from voxel ``ijk`` (see module docstring, steps 1-3)."""
    vals = _ball_values(img, ijk, params.seed_radius_mm, spacing)
    mu = float(np.median(vals))
    sigma = max(1.4826 * float(np.median(np.abs(vals - mu))), sigma_floor)
    tol = params.tolerance_sd * sigma
    first = component_at((img >= mu - tol) & (img <= mu + tol) & allowed, ijk)
    near = ndimage.binary_dilation(first, structure=ball(1.0, spacing))
    far = ndimage.binary_dilation(first, structure=ball(3.0, spacing))
    shell = img[far & ~near & allowed]
    lo_level, hi_level = _neighbour_levels(shell, sigma, mu)
    known = np.asarray(list(tissue_levels), float)
    if known.size:  # tissue levels measured elsewhere (cord, CSF) take precedence, side by side
        below, above = known[known < mu - sigma], known[known > mu + sigma]
        lo_level = float(below.max()) if below.size else lo_level
        hi_level = float(above.min()) if above.size else hi_level
    # half-way to a neighbouring tissue; +- tolerance where no neighbour shows
    lower = (mu + lo_level) / 2 if lo_level is not None else mu - tol
    upper = (mu + hi_level) / 2 if hi_level is not None else mu + tol
    accepted = (img >= lower) & (img <= upper) & allowed
    region = component_at(accepted, ijk)
    if params.opening_mm > 0:
        # opening cuts thin noise bridges into neighbours; a short reconstruction inside the
        # accepted voxels then restores the border and the tips the opening shaved off
        st = ball(params.opening_mm, spacing)
        opened = ndimage.binary_opening(region, structure=st)
        if opened[tuple(ijk)]:
            core = component_at(opened, ijk)
            steps = params.reconstruction_steps
            region = core if steps <= 0 else ndimage.binary_dilation(
                core, structure=ndimage.generate_binary_structure(3, 1), iterations=steps, mask=region)
    region = _partial_volume_rim(img, region, mu, allowed)
    if lo_level is not None and hi_level is not None:
        # voxels sitting on a direct step from the darker to the brighter neighbour tissue are
        # their partial-volume edge (e.g. the cord surface in CSF), not tumor
        st = ndimage.generate_binary_structure(3, 1)
        edge = (ndimage.minimum_filter(img, footprint=st) < lower) & (ndimage.maximum_filter(img, footprint=st) > upper)
        trimmed = region & ~(edge & (img > lower) & (img < upper))
        if trimmed[tuple(ijk)]:
            region = component_at(trimmed, ijk)
    region = ndimage.binary_fill_holes(region)
    stats = {"seed_median": mu, "seed_sd": sigma, "accepted_range": [lower, upper],
             "darker_neighbour": lo_level, "brighter_neighbour": hi_level}
    return region, stats


def _cut_leak(region: np.ndarray, seed, spacing, params: TumorParams, edge: np.ndarray, stats: dict,
              warnings: list) -> np.ndarray:
    """Cut a region that reached the search limit at its narrowest constriction (module
    docstring, step 4); ``region`` unchanged (and nothing reported) when no radius up to
    ``leak_cut_max_mm`` separates the seed from the limit."""
    radius = max(params.opening_mm, params.leak_cut_step_mm)
    while radius <= params.leak_cut_max_mm + 1e-6:
        opened = ndimage.binary_opening(region, structure=ball(radius, spacing))
        if opened[tuple(seed)]:
            core = component_at(opened, seed)
            if not np.any(core & edge):
                steps = params.reconstruction_steps
                cut = core if steps <= 0 else ndimage.binary_dilation(
                    core, structure=ndimage.generate_binary_structure(3, 1), iterations=steps, mask=region)
                stats["leak_cut_mm"] = round(float(radius), 2)
                stats["leak_voxels_dropped"] = int(np.count_nonzero(region & ~cut))
                warnings.append(
                    f"the region grown from the seed leaked into a neighbouring tissue of the same signal (it reached "
                    f"the search limit, {params.max_radius_mm:g} mm); it was cut at its narrowest constriction "
                    f"(opening of {radius:g} mm): parts of the tumor thinner than {2 * radius:g} mm (e.g. an "
                    "epidural extension) may be missing; check it, add seeds, or add an image that separates "
                    "the tumor from its surroundings (CT, T1)")
                return ndimage.binary_fill_holes(cut)
        else:
            break
        radius += params.leak_cut_step_mm
    return region


def disc_barrier(volume: Volume, centerline_ras, vertebrae, seed_ras, *, radius_mm: float | None = None,
                 max_gap_fraction: float = 0.6) -> tuple[Volume, list]:
    """The intervertebral disc slabs near ``seed_ras``: a barrier a bone lesion does not cross.

    Spinal metastases destroy bone and respect the disc (infections cross it). On MRI the disc has
    the signal of a lytic lesion (and of fat on T2), so the region grown from a seed in a vertebra
    spreads through the discs to the next levels; this barrier stops it there.

    Every voxel takes the arc position (mm along the cord) of its nearest point on the centreline
    (extended straight beyond its ends): cross-sections perpendicular to the cord. A disc slab is
    the arc interval between two consecutive vertebral bodies (their ``body_s_range_mm``, RAS S,
    endplate cortex included), at least one voxel (the largest spacing) thick. Gaps longer than
    ``max_gap_fraction`` of the median body height (a body missed there) and the gap holding the
    seed (a seed in a disc) are left open.

    Parameters
    ----------
    volume : Volume
        Grid of the result (the image the tumor is grown on).
    centerline_ras : array (N, 3)
        Cord centreline, RAS mm, cranial or caudal first, N >= 2.
    vertebrae : list of dict
        Vertebra records with ``body_s_range_mm`` ([lower, upper] RAS S, mm), e.g.
        ``VertebraeResult.vertebrae`` of :func:`seg_vertebrae_mri.segment_vertebrae_mri`.
    seed_ras : array (3,)
        The tumor seed, RAS mm.
    radius_mm : float or None
        Only voxels within this distance (mm) of the seed are considered (None: all).
    max_gap_fraction : float
        See above (unitless).

    Returns
    -------
    (Volume, list of [float, float])
        0/1 barrier mask on ``volume``'s grid, and the RAS S ranges (mm) of the disc slabs used.
    """
    pts = np.asarray(centerline_ras, float)
    empty = volume.with_array(np.zeros(volume.shape3, np.uint8), name="disc barrier")
    ranges = sorted(tuple(v["body_s_range_mm"]) for v in vertebrae if v.get("body_s_range_mm") is not None)
    if pts.ndim != 2 or len(pts) < 2 or len(ranges) < 2:
        return empty, []
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    keep = np.concatenate([[True], np.diff(arc) > 1e-6])
    pts, arc = pts[keep], arc[keep]
    if len(pts) < 2:
        return empty, []
    step = 0.25 * float(volume.spacing.min())
    extent = float(np.linalg.norm(np.asarray(volume.shape3) * volume.spacing))
    fine = np.arange(-extent, arc[-1] + extent + step, step)
    t0 = (pts[1] - pts[0]) / np.linalg.norm(pts[1] - pts[0])
    t1 = (pts[-1] - pts[-2]) / np.linalg.norm(pts[-1] - pts[-2])
    line = np.stack([np.interp(fine, arc, pts[:, d]) for d in range(3)], axis=1)
    line[fine < 0] = pts[0] + fine[fine < 0, None] * t0
    line[fine > arc[-1]] = pts[-1] + (fine[fine > arc[-1]] - arc[-1])[:, None] * t1
    order = np.argsort(line[:, 2])
    s_to_arc = lambda s: float(np.interp(s, line[order, 2], fine[order]))  # noqa: E731
    tree = cKDTree(line)
    seed_arc = float(fine[tree.query(np.asarray(seed_ras, float))[1]])
    heights = [hi - lo for lo, hi in ranges]
    slabs = []
    for (_, hi0), (lo1, _) in zip(ranges[:-1], ranges[1:], strict=True):
        a0, a1 = sorted((s_to_arc(hi0), s_to_arc(lo1)))
        if a1 - a0 > max_gap_fraction * float(np.median(heights)) or a0 <= seed_arc <= a1:
            continue
        half = max((a1 - a0) / 2.0, float(volume.spacing.max()) / 2.0)
        slabs.append(((a0 + a1) / 2.0 - half, (a0 + a1) / 2.0 + half, hi0, lo1))
    if not slabs:
        return empty, []
    if radius_mm is None:
        box = tuple(slice(0, n) for n in volume.shape3)
    else:
        c = _seed_ijk(volume, seed_ras, "tumor seed")
        box = _crop_box(volume.shape3, c, np.ceil(radius_mm / volume.spacing).astype(int))
    ijk = np.stack(np.meshgrid(*[np.arange(b.start, b.stop) for b in box], indexing="ij"), axis=-1).reshape(-1, 3)
    voxel_arc = fine[tree.query(volume.ijk_to_ras(ijk))[1]].reshape([b.stop - b.start for b in box])
    sub = np.zeros(voxel_arc.shape, bool)
    for a0, a1, *_ in slabs:
        sub |= (voxel_arc >= a0) & (voxel_arc <= a1)
    out = np.zeros(volume.shape3, np.uint8)
    out[box] = sub
    return volume.with_array(out, name="disc barrier"), [[round(float(hi0), 2), round(float(lo1), 2)]
                                                         for *_, hi0, lo1 in slabs]


def grow_tumor(volume: Volume, seed_ras, *, params: TumorParams | None = None, ct: bool = False,
               allowed: Volume | None = None, forbidden: Volume | None = None,
               foreground_seeds_ras=(), background_seeds_ras=(), tissue_levels=(),
               barrier: Volume | None = None, progress: Progress = no_progress) -> TumorResult:
    """Segment the tumor around ``seed_ras``.

    Parameters
    ----------
    volume : Volume
        T2, T1c or CT image (any grid, RAS affine).
    seed_ras : array (3,)
        A point inside the tumor, RAS mm.
    params : TumorParams
    ct : bool
        True when ``volume`` is in HU (background test at -500 HU).
    allowed, forbidden : Volume or None
        0/1 masks on ``volume``'s grid: the tumor stays inside ``allowed`` and outside
        ``forbidden`` (e.g. the thecal sac for an intradural seed, the sac for an extradural one).
    foreground_seeds_ras, background_seeds_ras : sequences of RAS points (mm)
        Refinement seeds (see module docstring).
    tissue_levels : sequence of float
        Intensities (image units) of tissues that may border the tumor, measured elsewhere (e.g.
        the cord and CSF near the seed); on each side the nearest one replaces the estimate from
        the histogram of the region's surroundings.
    barrier : Volume or None
        0/1 mask on ``volume``'s grid the tumor never enters, reported when the region touches it
        (e.g. the intervertebral discs next to a bone lesion's level, from :func:`disc_barrier`).

    Returns
    -------
    TumorResult
        Mask on ``volume``'s grid.

    Raises
    ------
    InputError
        Seed outside the image or in background (:class:`InputError` ``"tumor seed"``).
    """
    params = params or TumorParams()
    if volume.array.ndim != 3:
        raise ValueError("grow_tumor expects a 3D volume")
    seed = _seed_ijk(volume, seed_ras, "tumor seed")
    fg = [_seed_ijk(volume, p, "foreground seed") for p in foreground_seeds_ras]
    bg = [_seed_ijk(volume, p, "background seed") for p in background_seeds_ras]
    sp = volume.spacing
    progress(0.05, "seed statistics")
    raw = volume.array.astype(np.float32)
    lo, hi = robust_range(raw)
    seed_vals = _ball_values(raw, seed, params.seed_radius_mm, sp)
    seed_level = float(np.median(seed_vals))
    if ct and seed_level < -500.0:
        raise InputError("tumor seed", f"the point lies in air/background (median {seed_level:.0f} HU around it); "
                                         "click inside the tumor")
    if not ct and seed_level < lo + params.background_fraction * (hi - lo):
        raise InputError("tumor seed", f"the point lies in background (signal {seed_level:.3g}, below "
                                         f"{params.background_fraction:.0%} of the image's range); click inside the tumor")
    # work in a box around all seeds
    box, off, raw_box, img, ok, wall, s_local, dist2 = _search_region(volume, raw, seed, fg, bg, allowed, forbidden,
                                                                      barrier, params)
    sigma_floor = 0.01 * (hi - lo)
    progress(0.3, "growing from the seed")
    region, stats = _grow_one(img, s_local, sp, params, ok, sigma_floor, tissue_levels)
    known = np.asarray(list(tissue_levels), float)
    if known.size and np.min(np.abs(known - stats["seed_median"])) < params.low_contrast_sd * stats["seed_sd"]:
        # a bordering tissue within a few noise SDs of the tumor: smooth more (noise down by
        # about the cube root of the voxels averaged) and grow again
        progress(0.5, "low contrast: smoothing more")
        img = ndimage.gaussian_filter(raw_box, sigma=params.low_contrast_smoothing_mm / sp)
        region, stats = _grow_one(img, s_local, sp, params, ok, sigma_floor, tissue_levels)
        stats["low_contrast_smoothing_mm"] = params.low_contrast_smoothing_mm
    warnings = []
    edge = dist2 > (params.max_radius_mm - 2.0 * sp.max()) ** 2
    if params.leak_cut_max_mm > 0 and np.any(region & edge):
        progress(0.6, "cutting a leak at its narrowest constriction")
        region = _cut_leak(region, s_local, sp, params, edge, stats, warnings)
    for p in fg:
        q = p - off
        if not region[tuple(q)]:
            extra, _ = _grow_one(img, q, sp, params, ok, sigma_floor)
            region |= extra
    if bg:
        region = _split_at_background(region, s_local, fg, bg, off, sp, progress)
    reached = bool(np.any(region & edge))
    if wall is not None:
        stopped = bool(np.any(ndimage.binary_dilation(region) & wall))
        stats["stopped_at_barrier"] = stopped
        if stopped:
            warnings.append("the region reached an intervertebral disc next to the seed's vertebra and was stopped "
                            "there (bone metastases respect the disc; a lesion crossing it, e.g. an infection or "
                            "epidural spread behind the disc, needs segmentation.tumor.disc_barrier false)")
    if reached:
        warnings.append(f"the tumor region reached the search limit ({params.max_radius_mm} mm from the seed): "
                        "the border may be leaking; add background seeds or check the seed")
    out = np.zeros(volume.shape3, np.uint8)
    out[box] = region
    stats.update(voxels=int(region.sum()), reached_search_limit=reached,
                 volume_ml=float(region.sum() * volume.voxel_volume_ml))
    progress(1.0, "tumor grown")
    return TumorResult(volume.with_array(out, name="tumor"), stats, warnings)


def _search_region(volume: Volume, raw: np.ndarray, seed, fg: list, bg: list, allowed, forbidden, barrier,
                   params: TumorParams):
    """The box around all seeds and the voxels the tumor may take in it (inside ``allowed``,
    outside ``forbidden`` and the barrier, within ``max_radius_mm`` of a seed or a foreground seed).

    Returns ``(box, off, raw_box, img, ok, wall, s_local, dist2)``: the box (slices) and its offset,
    the raw and smoothed image in it, the allowed voxels, the barrier (or None), the seed in box
    voxels and the squared distance (mm^2) of each box voxel from it."""
    sp = volume.spacing
    pts = np.array([seed, *fg, *bg])
    half = np.ceil((params.max_radius_mm + 2.0) / sp).astype(int)
    centre = (pts.min(axis=0) + pts.max(axis=0)) // 2
    half = half + (pts.max(axis=0) - pts.min(axis=0)) // 2
    box = _crop_box(volume.shape3, centre, half)
    off = np.array([s.start for s in box])
    raw_box = raw[box]
    img = ndimage.gaussian_filter(raw_box, sigma=params.smoothing_mm / sp) if params.smoothing_mm > 0 else raw_box
    ok = np.ones(img.shape, bool)
    if allowed is not None:
        ok &= allowed.array[box] > 0
    if forbidden is not None:
        ok &= ~(forbidden.array[box] > 0)
    wall = barrier.array[box] > 0 if barrier is not None else None
    if wall is not None:
        ok &= ~wall
    s_local = seed - off
    ok[tuple(s_local)] = True  # the seed itself is always allowed
    grid_idx = np.indices(img.shape, dtype=np.float32)
    dist2 = sum(((grid_idx[d] - s_local[d]) * sp[d]) ** 2 for d in range(3))
    within = dist2 <= params.max_radius_mm**2
    for p in fg:
        q = p - off
        within |= sum(((grid_idx[d] - q[d]) * sp[d]) ** 2 for d in range(3)) <= params.max_radius_mm**2
    ok &= within
    return box, off, raw_box, img, ok, wall, s_local, dist2


def _split_at_background(region: np.ndarray, s_local, fg: list, bg: list, off, sp, progress: Progress) -> np.ndarray:
    """Split the region at the narrowest constriction between the tumor seeds and the background
    seeds inside it (watershed of the distance map); the tumor seeds' part."""
    inside = [p - off for p in bg if region[tuple(p - off)]]
    if inside:
        progress(0.7, "splitting at background seeds")
        markers = np.zeros(region.shape, np.int32)
        for q in [s_local, *[p - off for p in fg]]:
            markers[tuple(q)] = 1
        for q in inside:
            markers[tuple(q)] = 2
        # split at the narrowest constriction between the seeds (watershed of the distance map)
        depth = ndimage.distance_transform_edt(region, sampling=sp)
        ws = watershed(-depth, markers, mask=region)
        region = ws == 1
    return region
