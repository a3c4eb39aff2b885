"""Vertebral bodies and level names on MRI (T1 or T2) along the cord (classical engine, L1).

Used when there is no CT. Only the vertebral *bodies* are segmented (the posterior elements are
thin cortical bone, dark on every sequence, and are left out).

Method
------
1. *Axis*: the cord centreline (from :func:`seg_cord.segment_cord`) without its outliers
   (:func:`seg_common.drop_outliers`: points more than 2.5 mm from the running median of their
   neighbours, e.g. stray fragments of a user's cord mask) is resampled every 0.5 mm, extended
   straight beyond its ends and smoothed (``centerline_smoothing_mm``: the column's axis, not the cord's local excursions).
   At each point a frame follows it: tangent ``t`` (superior), anterior ``a`` (the patient's +A
   made orthogonal to ``t``) and lateral ``r = a x t``. Every voxel near the spine gets its
   coordinates in that frame: ``s`` along the cord, ``u`` lateral, ``v`` anterior of the cord.
2. *Thecal sac front*: the largest ``v`` of the sac mask near the midline, per position along
   the cord (running median over 15 mm); ``default_sac_front_mm`` without a mask.
3. *Profile*: the median intensity of a band in the vertebral body column (``band_*``: from
   ``band_offset_mm`` in front of the sac, ``band_depth_mm`` deep, ``±band_half_width_mm`` wide)
   at each ``s``. The local marrow level is the running median of the profile over
   ``level_window_mm`` (bodies fill most of the column); the *disc profile* is the relative
   deviation ``|I - marrow| / marrow``, contrast-agnostic: discs and endplates deviate from
   marrow on T1 (darker) and on T2 (bright disc between dark endplates).
   *Replaced bodies*: one abnormal level (a lytic metastasis replacing the marrow has the signal
   of a disc on T1 and T2) would break the disc/body period and pull the running median. The
   profile's body-length plateaus (flat within ``FLAT_FRACTION`` over ``FLAT_MM``) are compared
   with a straight-line fit through the other plateaus (the marrow level drifts along the spine);
   a body-sized plateau off the fit by more than ``replaced_marrow_contrast``, with the others
   consistent, is a *replaced body* (a minority, see :func:`_replaced_bodies`). Its samples take
   the fitted marrow level before steps 3-5, so it counts as a body between its discs.
4. *Periodicity*: the vertebral pitch is the first strong maximum of the disc profile's
   autocorrelation within ``disc_search_mm``; below ``min_periodicity`` (or with fewer than two
   discs) the bodies are "not found" with the measured numbers.
5. *Discs and bodies*: discs are the disc profile's peaks at least 0.6 pitch apart with
   prominence ``min_disc_contrast``; a body's axial extent is the run between two discs where
   the disc profile stays below half-way between the body's own level and its discs' peaks,
   plus ``cortex_mm`` of endplate at each end (``body_s_range_mm``).
6. *Body voxels*: marrow window = the body's band median +- ``marrow_tolerance_sd`` robust SDs
   (at least ``marrow_tolerance_fraction`` of the median), never beyond half-way to a
   neighbouring disc/endplate level. On the image smoothed by ``smoothing_mm`` the marrow's
   extent along four rays from the band (a strip median leaving the window for 2 mm) gives an
   ellipse across the cord that confines the body (soft tissue in front of the spine can look
   like marrow). Inside it and the slab between the disc centres: marrow-window voxels connected
   to the band, opened (``opening_mm``) to cut pedicle/rib-head bridges and regrown inside the
   window, the unsmoothed image's marrow voxels within ``smoothing_mm`` added back, holes
   filled, then grown by ``cortex_mm`` (+ half a voxel) for the cortex. A replaced body is
   segmented by shape, not signal: the region within the mean cross-section of the nearest normal
   body on each side (an ellipse from the second moments of their voxels, centred relative to the
   cord axis, cortex included) along its marrow run plus the cortex. The lesion inside that
   outline is part of the vertebra it destroys; the level is reported (``body_marrow_replaced``
   and a warning).
7. *Names*: a user anchor (level + RAS point) names the body containing the point (or the
   labelled voxel nearest it within 15 mm, else the body at the point's height along the cord)
   and the others are counted from it (:func:`seg_vertebrae.names_from_anchor`). Without an
   anchor the bodies are ``V1..Vn`` cranial to caudal and the result is not reliable: there is
   no automatic level anchor on a partial-spine MRI.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.signal import find_peaks
from scipy.spatial import cKDTree

from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.planning.context import Progress, no_progress
from SpinePlannerLib.segmentation.common import (
    ball,
    drop_outliers,
    labels_to_grid,
    nanmedian_quiet,
    ras_aligned_view,
    running,
    working_grid,
)
from SpinePlannerLib.segmentation.params import VertebraeMRIParams
from SpinePlannerLib.segmentation.vertebrae_ct import (
    ANCHOR_MAX_DISTANCE_MM,
    VertebraeResult,
    anchor_index,
    names_from_anchor,
    unanchored_names,
    vertebra_record,
)

STEP_MM = 0.5
"""Sampling step (mm) along the cord centreline."""

NOT_FOUND = "vertebral bodies not found on MRI"

# -- the frame along the cord --------------------------------------------------------------------
def _axis_frame(centerline_ras, *, extend_mm: float, sigma_mm: float):
    """Centreline resampled every ``STEP_MM`` (inferior to superior), extended straight by
    ``extend_mm`` at both ends and smoothed; returns points, arc length s, tangent, anterior and
    lateral unit vectors (all RAS)."""
    pts = drop_outliers(np.asarray(centerline_ras, float))
    if pts[-1, 2] < pts[0, 2]:
        pts = pts[::-1]
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    keep = np.r_[True, seg > 1e-6]
    pts = pts[keep]
    d = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
    s = np.arange(0.0, d[-1] + 1e-9, STEP_MM)
    cl = np.stack([np.interp(s, d, pts[:, i]) for i in range(3)], axis=1)
    n_fit = min(len(cl) - 1, max(1, int(round(10.0 / STEP_MM))))
    lo_dir = cl[0] - cl[n_fit]
    hi_dir = cl[-1] - cl[-1 - n_fit]
    lo_dir /= np.linalg.norm(lo_dir)
    hi_dir /= np.linalg.norm(hi_dir)
    n_ext = int(np.ceil(extend_mm / STEP_MM))
    steps = STEP_MM * np.arange(1, n_ext + 1)[:, None]
    cl = np.vstack([(cl[0] + lo_dir * steps)[::-1], cl, cl[-1] + hi_dir * steps])
    if sigma_mm > 0:
        cl = ndimage.gaussian_filter1d(cl, sigma=sigma_mm / STEP_MM, axis=0, mode="nearest")
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(cl, axis=0), axis=1))]
    tan = np.gradient(cl, axis=0)
    tan /= np.linalg.norm(tan, axis=1, keepdims=True)
    ant = np.array([0.0, 1.0, 0.0]) - (tan @ np.array([0.0, 1.0, 0.0]))[:, None] * tan
    ant /= np.linalg.norm(ant, axis=1, keepdims=True)
    lat = np.cross(ant, tan)
    return cl, arc, tan, ant, lat


def _frame_coords(points_ras: np.ndarray, tree: cKDTree, cl, arc, tan, ant, lat):
    """(nearest sample, s, u, v) of RAS points in the frame along the cord (mm)."""
    _, k = tree.query(points_ras, workers=1)
    off = points_ras - cl[k]
    s = arc[k] + np.einsum("ij,ij->i", off, tan[k])
    u = np.einsum("ij,ij->i", off, lat[k])
    v = np.einsum("ij,ij->i", off, ant[k])
    return k, s, u, v


def _sac_front(sac: Volume | None, tree, cl, arc, tan, ant, lat, default_mm: float) -> np.ndarray:
    """Per centreline sample, the anterior extent (mm from the cord centre) of the thecal sac
    near the midline (|u| <= 3 mm), running median over 15 mm; ``default_mm`` without a sac."""
    n = len(cl)
    if sac is None or not np.any(sac.array):
        return np.full(n, default_mm)
    pts = sac.ijk_to_ras(np.argwhere(sac.array > 0))
    k, _s, u, v = _frame_coords(pts, tree, cl, arc, tan, ant, lat)
    sel = (np.abs(u) <= 3.0) & (v > 0)
    front = np.full(n, -np.inf)
    np.maximum.at(front, k[sel], v[sel])
    have = np.isfinite(front)
    if have.sum() < 2:
        return np.full(n, default_mm)
    front = np.interp(np.arange(n), np.flatnonzero(have), front[have])
    return running(front, int(round(15.0 / STEP_MM)))


def _autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Normalised autocorrelation ``r[lag]`` for lags 0..max_lag (mean over the overlap)."""
    x = x - x.mean()
    var = float(np.mean(x * x))
    if var <= 0:
        return np.zeros(max_lag + 1)
    return np.array([np.mean(x[: len(x) - lag] * x[lag:]) / var for lag in range(max_lag + 1)])


def _pitch(dev: np.ndarray, params: VertebraeMRIParams) -> tuple[float | None, float, str]:
    """Vertebral pitch (mm) from the disc profile's autocorrelation: the shortest lag in
    ``disc_search_mm`` that is a local maximum within 70 % of the best one (so that twice the
    pitch, well correlated on short profiles, is not taken). Returns (pitch, r, reason)."""
    lo = int(round(params.disc_search_mm[0] / STEP_MM))
    hi = min(int(round(params.disc_search_mm[1] / STEP_MM)), int(0.7 * len(dev)))
    if hi <= lo + 2:
        return None, 0.0, (f"the body column was followed over {len(dev) * STEP_MM:.0f} mm only, too short to "
                           f"see a vertebral pitch of {params.disc_search_mm[0]:g}-{params.disc_search_mm[1]:g} mm")
    r = _autocorrelation(dev, hi + 1)
    lags = np.arange(lo, hi + 1)
    local = [g for g in lags if r[g] >= r[g - 1] and r[g] >= r[g + 1]]
    if not local:
        return None, float(r[lags].max()), "the disc profile's autocorrelation has no maximum in the pitch range"
    best = max(r[g] for g in local)
    lag = next(g for g in local if r[g] >= 0.7 * best)
    return lag * STEP_MM, float(r[lag]), ""


FLAT_MM = 4.0
"""Window (mm) over which a plateau of the band profile varies by at most ``FLAT_FRACTION``."""

FLAT_FRACTION = 0.1
"""Largest range of the band profile over ``FLAT_MM`` on a plateau (fraction of its median level)."""


def _plateaus(prof: np.ndarray, *, min_len: int) -> list[tuple[int, int, float]]:
    """Flat runs of the band profile: (first, last sample, median level) of the runs of at least
    ``min_len`` samples where the profile's range over ``FLAT_MM`` stays within ``FLAT_FRACTION``
    of its median level (bodies' marrow, a lesion filling a body, long discs)."""
    half = max(1, int(round(0.5 * FLAT_MM / STEP_MM)))
    size = 2 * half + 1
    spread = ndimage.maximum_filter1d(prof, size, mode="nearest") - ndimage.minimum_filter1d(prof, size, mode="nearest")
    flat = spread <= FLAT_FRACTION * max(float(np.median(np.abs(prof))), 1e-6)
    lab, n = ndimage.label(flat)
    out = []
    for sl in ndimage.find_objects(lab):
        lo, hi = sl[0].start, sl[0].stop - 1
        level = float(np.median(prof[lo:hi + 1]))
        # the window flags the run's centre samples: give back its ends while they stay at the level
        tol = FLAT_FRACTION * abs(level)
        for _ in range(half):
            if lo > 0 and abs(prof[lo - 1] - level) <= tol:
                lo -= 1
            if hi < len(prof) - 1 and abs(prof[hi + 1] - level) <= tol:
                hi += 1
        if hi - lo + 1 >= min_len:
            out.append((lo, hi, level))
    return out


def _replaced_bodies(prof: np.ndarray, params: VertebraeMRIParams) -> list[tuple[int, int, float, float]]:
    """Plateaus of the band profile where a body's marrow is replaced (e.g. a lytic metastasis).

    The body-length plateaus (:func:`_plateaus`, at least ``min_body_height_mm``) follow the
    marrow level, which may drift along the spine (coil sensitivity): the level expected at each
    plateau is a length-weighted straight-line fit through the others. The plateau farthest from
    its expected level, by more than ``replaced_marrow_contrast`` (relative), is a replaced body
    when it is body-sized (at least 0.6 of the others' median length) and the others then agree
    with their own fit within half that contrast; it is set aside and the search repeats while the
    replaced bodies stay a minority (a third of the plateaus). A regular pattern of long plateaus
    at two levels (long discs) fits no line and gives none.

    Returns (first, last sample, level, expected marrow level) per replaced body.
    """
    plats = _plateaus(prof, min_len=max(2, int(round(params.min_body_height_mm / STEP_MM))))
    pos = np.array([0.5 * (lo + hi) for lo, hi, _ in plats])
    length = np.array([hi - lo + 1 for lo, hi, _ in plats], float)
    level = np.array([lv for *_, lv in plats])

    def expected(p: int, among: np.ndarray) -> float:
        others = among & (np.arange(len(plats)) != p)
        if others.sum() < 2:
            return float(np.average(level[others], weights=length[others]))
        slope, icpt = np.polyfit(pos[others], level[others], 1, w=np.sqrt(length[others]))
        return float(slope * pos[p] + icpt)

    def contrast(p: int, among: np.ndarray) -> float:
        ref = expected(p, among)
        return abs(level[p] - ref) / max(abs(ref), 1e-6)

    kept = np.ones(len(plats), bool)
    out = []
    while kept.sum() >= 3 and len(out) + 1 <= len(plats) / 3.0:
        worst = max(np.flatnonzero(kept), key=lambda p: contrast(p, kept))
        if contrast(worst, kept) <= params.replaced_marrow_contrast:
            break
        rest = kept.copy()
        rest[worst] = False
        if length[worst] < 0.6 * float(np.median(length[rest])) or \
                any(contrast(q, rest) > 0.5 * params.replaced_marrow_contrast for q in np.flatnonzero(rest)):
            break
        out.append((plats[worst][0], plats[worst][1], float(level[worst]), expected(worst, rest)))
        kept = rest
    return sorted(out)


def _marrow_run(dev: np.ndarray, k0: int, k1: int, peak_lo: float | None, peak_hi: float | None):
    """The body's marrow run (inclusive sample range) between discs at ``k0``/``k1`` (None at a
    profile end): grown from the quietest sample of the middle third while the disc profile stays
    below half-way between the body's level and the neighbouring disc peak."""
    n = len(dev)
    a = 0 if k0 is None else k0
    b = n - 1 if k1 is None else k1
    third = max(1, (b - a) // 3)
    mid_lo, mid_hi = (a + third, b - third) if b - a >= 3 else (a, b)
    if k0 is None:
        mid_lo = a
    if k1 is None:
        mid_hi = b
    core = dev[mid_lo:mid_hi + 1]
    start = mid_lo + int(np.argmin(core))
    level = float(np.median(core))
    peaks = [p for p in (peak_lo, peak_hi) if p is not None]
    thr = level + 0.5 * (min(peaks) - level)
    lo = start
    while lo - 1 > a and dev[lo - 1] < thr:
        lo -= 1
    hi = start
    while hi + 1 < b and dev[hi + 1] < thr:
        hi += 1
    if k0 is None and lo - 1 <= a and dev[a] < thr:
        lo = a
    if k1 is None and hi + 1 >= b and dev[b] < thr:
        hi = b
    return lo, hi


def centreline_from_mask(mask: Volume) -> np.ndarray:
    """Centre (RAS mm) of a cord or canal mask in each axial slice of its RAS-aligned voxel
    ordering, inferior to superior (e.g. for a cord label map the user supplied)."""
    from SpinePlannerLib.segmentation.cord import _centreline

    view = ras_aligned_view(mask)
    return _centreline(view.array > 0, view)


# -- main ------------------------------------------------------------------------------------------
def _body_column_profile(img: np.ndarray, grid, cl, front, ant, lat, params: VertebraeMRIParams):
    """Median intensity of the band in front of the thecal sac along the cord (``STEP_MM`` samples)
    and its relative deviation from the local marrow level (discs are peaks).

    Returns ``(prof, dev, replaced, i0)`` (``i0``: first centreline sample inside the image), or
    None when the band lies outside the image.
    """
    us = np.arange(-params.band_half_width_mm, params.band_half_width_mm + 1e-6, 1.0)
    vs = params.band_offset_mm + np.arange(0.0, params.band_depth_mm + 1e-6, 1.0)
    band = (cl[:, None, None, :] + us[None, :, None, None] * lat[:, None, None, :]
            + (front[:, None, None, None] + vs[None, None, :, None]) * ant[:, None, None, :])
    ijk = grid.ras_to_ijk(band.reshape(-1, 3))
    vals = ndimage.map_coordinates(img, ijk.T, order=1, cval=np.nan).reshape(len(cl), -1)
    inside = np.mean(np.isfinite(vals), axis=1) >= 0.5
    if inside.sum() < 3:
        return None
    i0, i1 = np.flatnonzero(inside)[[0, -1]]
    prof = nanmedian_quiet(vals[i0:i1 + 1], axis=1)
    prof = np.interp(np.arange(len(prof)), np.flatnonzero(np.isfinite(prof)), prof[np.isfinite(prof)])
    replaced = _replaced_bodies(prof, params)
    filled = prof.copy()  # a body whose marrow is replaced (lytic lesion) counts as marrow for the discs
    for lo, hi, _level, ref in replaced:
        filled[lo:hi + 1] = ref
    marrow = running(filled, int(round(params.level_window_mm / STEP_MM)))
    scale = max(float(np.median(np.abs(marrow))), 1e-6)
    dev = np.abs(filled - marrow) / np.maximum(np.abs(marrow), 0.05 * scale)
    dev = ndimage.gaussian_filter1d(dev, sigma=1.0 / STEP_MM, mode="nearest")

    return prof, dev, replaced, i0


def _gap_notes(discs, cl, i0: int, pitch: float) -> list[str]:
    """Notes on disc gaps longer than 1.6 pitches (a disc may be missed there)."""
    notes = []
    gaps = np.diff(discs) * STEP_MM
    for g, (a, b) in zip(gaps, zip(discs[:-1], discs[1:], strict=True), strict=True):
        if g > 1.6 * pitch:
            notes.append(f"{g:.0f} mm between the discs at S {cl[i0 + a, 2]:.0f} and {cl[i0 + b, 2]:.0f} mm "
                            f"(pitch {pitch:.0f} mm): a disc may be missed there and the levels counted across it")
    return notes


def _bodies_between_discs(dev: np.ndarray, discs: list[int], params: VertebraeMRIParams) -> list:
    """Marrow runs between the discs: ``(run_lo, run_hi, disc_lo, disc_hi, cut)`` profile samples
    (None: open end), inferior first; runs shorter than ``min_body_height_mm`` (half at an open end)
    are dropped."""
    heights = dev[discs]
    bounds = [None, *discs, None]
    peak_of = dict(zip(discs, heights, strict=True))
    min_h = params.min_body_height_mm / STEP_MM
    bodies = []  # (run_lo, run_hi, disc_lo, disc_hi, cut): profile samples (None: open end), inferior first
    for k0, k1 in zip(bounds[:-1], bounds[1:], strict=True):
        lo, hi = _marrow_run(dev, k0, k1, peak_of.get(k0), peak_of.get(k1))
        cut = k0 is None or k1 is None
        # a disc partly in the field of view beyond the last run closes that body's slab
        if k0 is None and lo > 0:
            k0 = int(np.argmax(dev[:lo]))
        if k1 is None and hi < len(dev) - 1:
            k1 = hi + 1 + int(np.argmax(dev[hi + 1:]))
        if hi - lo + 1 < (min_h / 2 if cut else min_h):
            continue
        bodies.append((lo, hi, k0, k1, cut))
    return bodies


def _body_neighbours(prof: np.ndarray, dev: np.ndarray, bodies: list, pitch: float) -> list:
    """(darkest, brightest) band level of the discs and endplates next to each body (None: none)."""
    in_run = np.zeros(len(dev), bool)
    for lo, hi, *_ in bodies:
        in_run[lo:hi + 1] = True
    reach = int(round(0.5 * pitch / STEP_MM))
    neighbours = []
    for lo, hi, *_ in bodies:
        near = np.zeros(len(dev), bool)
        near[max(lo - reach, 0):lo] = True
        near[hi + 1:hi + 1 + reach] = True
        near &= ~in_run
        neighbours.append((float(prof[near].min()), float(prof[near].max())) if near.any() else None)
    return neighbours


def _name_bodies(out, grid, bodies, order, index_of, lost, replaced, open_sides, i0, tree, cl, arc, tan, ant, lat,
                 anchor_level, anchor_ras, params: VertebraeMRIParams, notes: list[str]):
    """Level names from the user anchor (else V1..Vn) and the per-body notes (appended to ``notes``).

    Returns ``(names, method, anchor, reliable)``.
    """
    n = len(order)
    names, method, anchor, reliable = unanchored_names(n), "unanchored", None, False
    if anchor_level is not None:
        idx = anchor_index(out, grid, anchor_ras)
        if idx == 0:
            idx = _index_at_height(anchor_ras, bodies, order, index_of, i0, tree, cl, arc, tan, ant, lat)
        if idx == 0:
            notes.append(f"the anchor point {list(anchor_ras)} is neither within {ANCHOR_MAX_DISTANCE_MM:g} mm of "
                            "a segmented vertebral body nor at the height of one; levels left unnamed")
        else:
            named, anchor, problems = names_from_anchor(n, idx, anchor_level, anchor_ras)
            notes += problems
            if named is not None:
                names, method, reliable = named, "user anchor", True
    if method == "unanchored":
        notes.append("vertebral levels on MRI need an anchor (a named level, e.g. T10, and a RAS point in "
                        "it): names V1..Vn count the bodies from the most cranial one in "
                        "the field of view")
    for b in order:
        if b in lost:
            a, z, level, ref = next(r for r in replaced if bodies[b][0] <= 0.5 * (r[0] + r[1]) <= bodies[b][1])
            notes.append(f"{names[index_of[b]]}: the body's marrow signal is replaced over {(z - a + 1) * STEP_MM:.0f} mm "
                         f"(band level {level / ref:.2f} of the neighbouring bodies' marrow, e.g. a lytic lesion); "
                         "its outline across the cord is taken from the neighbouring bodies, between its discs")
        if open_sides.get(b):
            notes.append(f"{names[index_of[b]]}: no {'/'.join(open_sides[b])} border of the body was found within "
                            f"{params.body_max_half_width_mm:g} mm (lateral) / {params.body_max_depth_mm:g} mm "
                            "(anterior); its outline stops at that search limit")
    notes.append("MRI: vertebral bodies only (posterior elements and bone are not segmented on MRI)")
    return names, method, anchor, reliable


def _body_records(out, grid, bodies, order, index_of, names, lost, i0: int, cl, arc, params: VertebraeMRIParams):
    """plan.json records of the labelled bodies (S range: marrow run plus the endplates' cortex)."""
    vertebrae = []
    for b in order:
        lo, hi, _slab_lo, _slab_hi, cut = bodies[b]
        # the marrow run along the cord plus the endplates' cortex
        a_lo, a_hi = arc[i0 + lo] - params.cortex_mm, arc[i0 + hi] + params.cortex_mm
        mid = int(np.clip(np.searchsorted(arc, 0.5 * (a_lo + a_hi)), 0, len(cl) - 1))
        vertebrae.append(vertebra_record(out, index_of[b], names[index_of[b]], grid, body_in_field_of_view=True,
                                         body_s_range=np.interp([a_lo, a_hi], arc, cl[:, 2]), body_cut=cut,
                                         canal_centre_ras=cl[mid]))
        vertebrae[-1]["body_marrow_replaced"] = b in lost
    return vertebrae


def segment_vertebrae_mri(volume: Volume, *, contrast: str, centerline_ras, sac: Volume | None = None,
                          params: VertebraeMRIParams | None = None, anchor_level: str | None = None,
                          anchor_ras=None, progress: Progress = no_progress) -> VertebraeResult:
    """Vertebral bodies and level names on a T1- or T2-weighted MRI, along the cord.

    Parameters
    ----------
    volume : Volume
        T1- or T2-weighted MRI, any orientation and voxel size (RAS affine), intensities in any
        unit (only ratios to the local marrow level are used).
    contrast : str
        ``"t1"`` or ``"t2"`` (reported; the disc profile does not depend on it).
    centerline_ras : array (N, 3)
        Cord (or canal) centreline, RAS mm, N >= 2, e.g. ``CordResult.centerline_ras``.
    sac : Volume or None
        0/1 thecal-sac mask (cord + CSF) on any grid; without it the sac's front is taken
        ``params.default_sac_front_mm`` anterior of the centreline.
    params : VertebraeMRIParams
    anchor_level, anchor_ras : str, (3,) float or None
        A level the user names (``"T10"``) and a RAS point (mm) in that vertebra.
    progress : callable(fraction, message)

    Returns
    -------
    VertebraeResult
        ``labels`` (body level indices, 1 = most cranial) on ``volume``'s grid, names, method
        ``"user anchor"`` or ``"unanchored"``, per-level records; or ``found=False`` with the
        reason. ``bone`` is None (bone is not segmented on MRI).
    """
    params = params or VertebraeMRIParams()
    if contrast not in ("t1", "t2"):
        raise ValueError(f"contrast must be 't1' or 't2', got {contrast!r}")
    if volume.array.ndim != 3:
        raise ValueError("segment_vertebrae_mri expects a 3D volume")
    pts = np.asarray(centerline_ras, float)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 2:
        raise ValueError("centerline_ras must be an (N, 3) array of RAS points (mm) with N >= 2")
    if (anchor_level is None) != (anchor_ras is None):
        raise ValueError("anchor_level and anchor_ras go together (a level name and a RAS point in mm)")
    if np.sum(np.linalg.norm(np.diff(pts, axis=0), axis=1)) < 5.0:
        return VertebraeResult(False, f"{NOT_FOUND}: the cord centreline is shorter than 5 mm")

    progress(0.0, "working grid")
    grid = working_grid(volume, spacing_mm=params.working_spacing_mm, max_anisotropy=params.max_anisotropy,
                        min_spacing_mm=0.75 * params.working_spacing_mm)
    img = grid.array.astype(np.float32)
    extent = float(np.linalg.norm((np.asarray(img.shape) - 1) * grid.spacing))
    if np.median(np.abs(np.diff(pts, axis=0) @ np.array([0.0, 1.0, 0.0])) /
                 np.maximum(np.linalg.norm(np.diff(pts, axis=0), axis=1), 1e-9)) > 0.9:
        return VertebraeResult(False, f"{NOT_FOUND}: the cord centreline runs anterior-posterior in RAS (is the "
                                      "image's orientation right?)")
    cl, arc, tan, ant, lat = _axis_frame(pts, extend_mm=extent, sigma_mm=params.centerline_smoothing_mm)
    tree = cKDTree(cl)
    front = _sac_front(sac, tree, cl, arc, tan, ant, lat, params.default_sac_front_mm)

    # ---- profile of the body column -------------------------------------------------------
    progress(0.15, "body column profile")
    profile = _body_column_profile(img, grid, cl, front, ant, lat, params)
    if profile is None:
        return VertebraeResult(False, f"{NOT_FOUND}: the body column in front of the thecal sac lies outside the image")
    prof, dev, replaced, i0 = profile

    # ---- pitch and discs ------------------------------------------------------------------
    progress(0.3, "discs")
    pitch, periodicity, why = _pitch(dev, params)
    metrics = {"profile_length_mm": round(len(dev) * STEP_MM, 1), "periodicity": round(periodicity, 3),
               "pitch_mm": round(pitch, 1) if pitch else None}
    if pitch is None:
        return VertebraeResult(False, f"{NOT_FOUND}: {why}", warnings=[_metrics_note(metrics)])
    if periodicity < params.min_periodicity:
        return VertebraeResult(
            False, f"{NOT_FOUND}: the intensity profile in front of the thecal sac shows no periodic disc pattern "
                   f"(autocorrelation {periodicity:.2f} at {pitch:.1f} mm, below {params.min_periodicity:g})",
            warnings=[_metrics_note(metrics)])
    peaks, props = find_peaks(dev, distance=max(1, int(0.6 * pitch / STEP_MM)), prominence=params.min_disc_contrast)
    discs = [int(p) for p in peaks]
    if len(discs) < 2:
        return VertebraeResult(
            False, f"{NOT_FOUND}: {len(discs)} disc(s) with a contrast of at least {params.min_disc_contrast:g} "
                   f"(relative to marrow) along {metrics['profile_length_mm']:.0f} mm; two are needed",
            warnings=[_metrics_note(metrics)])
    notes = _gap_notes(discs, cl, i0, pitch)

    # ---- bodies along the axis ------------------------------------------------------------
    bodies = _bodies_between_discs(dev, discs, params)
    if not bodies:
        return VertebraeResult(False, f"{NOT_FOUND}: no body of at least {params.min_body_height_mm:g} mm between discs",
                               warnings=[_metrics_note(metrics)])

    # ---- body voxels ----------------------------------------------------------------------
    progress(0.5, "body voxels")
    neighbours = _body_neighbours(prof, dev, bodies, pitch)
    smooth = ndimage.gaussian_filter(img, sigma=params.smoothing_mm / grid.spacing) if params.smoothing_mm > 0 else img
    # bodies whose run holds a replaced plateau (its marrow signal is gone: e.g. a lytic lesion)
    lost = {b for b, (lo, hi, *_) in enumerate(bodies) if any(lo <= 0.5 * (a + z) <= hi for a, z, *_ in replaced)}
    labels, open_sides = _segment_bodies(img, smooth, grid, bodies, neighbours, i0, front, cl, arc, tan, ant, lat, tree,
                                         params, replaced=lost)
    present = [b for b in range(len(bodies)) if np.any(labels == b + 1)]
    if not present:
        return VertebraeResult(False, f"{NOT_FOUND}: no marrow region could be grown in the bodies between discs",
                               warnings=[_metrics_note(metrics)])
    order = sorted(present, key=lambda b: -bodies[b][0])  # cranial first
    index_of = {b: i + 1 for i, b in enumerate(order)}
    out = np.zeros(img.shape, np.int16)
    for b, idx in index_of.items():
        out[labels == b + 1] = idx

    progress(0.85, "level names")
    n = len(order)
    names, method, anchor, reliable = _name_bodies(out, grid, bodies, order, index_of, lost, replaced, open_sides, i0,
                                                   tree, cl, arc, tan, ant, lat, anchor_level, anchor_ras, params,
                                                   notes)
    vertebrae = _body_records(out, grid, bodies, order, index_of, names, lost, i0, cl, arc, params)
    progress(1.0, "vertebral bodies labelled")
    reason = (f"{n} vertebral bodies on {contrast.upper()} between {len(discs)} discs (pitch {pitch:.1f} mm, "
              f"periodicity {periodicity:.2f})")
    return VertebraeResult(True, reason, labels=labels_to_grid(out, grid, volume), bone=None, names=names,
                           method=method, anchor=anchor, reliable=reliable, vertebrae=vertebrae, warnings=notes)


def _metrics_note(metrics: dict) -> str:
    return "disc profile: " + ", ".join(f"{k} {v}" for k, v in metrics.items())


def _window(core: np.ndarray, neighbours, params: VertebraeMRIParams) -> tuple[float, float]:
    """Marrow intensity window from a body's band voxels ``core``: median +- the tolerance, but
    never beyond half-way to a neighbouring (darkest, brightest) disc or endplate level that lies
    outside the tolerance."""
    med = float(np.median(core))
    sd = 1.4826 * float(np.median(np.abs(core - med)))
    tol = max(params.marrow_tolerance_sd * sd, params.marrow_tolerance_fraction * abs(med))
    low, high = med - tol, med + tol
    if neighbours is not None:
        darkest, brightest = neighbours
        if med - darkest > tol:
            low = max(low, 0.5 * (med + darkest))
        if brightest - med > tol:
            high = min(high, 0.5 * (med + brightest))
    return low, high


def _strip_median(img, grid: Volume, ks, front, cl, lat, ant, us, vs, over: int) -> np.ndarray:
    """Median intensity over the axis positions ``ks`` and over the strip axis ``over`` (0: u,
    1: v) of samples at lateral ``us`` and anterior-of-the-sac ``vs`` offsets (mm); NaN outside."""
    pts = (cl[ks][:, None, None, :] + us[None, :, None, None] * lat[ks][:, None, None, :]
           + (front[ks][:, None, None, None] + vs[None, None, :, None]) * ant[ks][:, None, None, :])
    vals = ndimage.map_coordinates(img, grid.ras_to_ijk(pts.reshape(-1, 3)).T, order=1, cval=np.nan)
    vals = np.moveaxis(vals.reshape(len(ks), len(us), len(vs)), over + 1, 1).reshape(-1, len(vs) if over == 0 else len(us))
    return nanmedian_quiet(vals, axis=0)


def _exit(values: np.ndarray, start: int, direction: int, low: float, high: float, run: int) -> int | None:
    """First index from ``start`` (stepping ``direction``) where ``values`` leave ``[low, high]``
    (or the image: NaN) for ``run`` consecutive samples; None when they never do."""
    out = ~((values >= low) & (values <= high))
    i = start
    while 0 <= i < len(values):
        ahead = out[i:i + run] if direction > 0 else out[max(i - run + 1, 0):i + 1]
        if ahead.all():
            return i
        i += direction
    return None


def _outline(img, grid: Volume, ks, front, cl, lat, ant, low: float, high: float, params: VertebraeMRIParams):
    """The marrow's extent around the body column at the axis positions ``ks``: (left, right,
    posterior, anterior) offsets in mm (lateral from the cord axis; anterior of the sac's front),
    each where a strip's median intensity leaves the marrow window ``[low, high]`` for 2 mm, and
    the sides along which no border was met within the search limits."""
    step = 0.5
    run = int(round(2.0 / step))
    vs = np.arange(0.0, params.body_max_depth_mm + 1e-6, step)
    v_prof = _strip_median(img, grid, ks, front, cl, lat, ant, np.arange(-2.0, 2.01, 1.0), vs, over=0)
    v0 = int(round((params.band_offset_mm + 0.5 * params.band_depth_mm) / step))
    open_sides = []
    ant_i = _exit(v_prof, v0, 1, low, high, run)
    if ant_i is None:
        ant_i = len(vs) - 1
        open_sides.append("anterior")
    post_i = _exit(v_prof, v0, -1, low, high, run)
    post_i = 0 if post_i is None else post_i
    v_post, v_ant = max(vs[post_i], params.sac_margin_mm), vs[ant_i]
    vc = 0.5 * (v_post + v_ant)
    us = np.arange(-params.body_max_half_width_mm, params.body_max_half_width_mm + 1e-6, step)
    u_prof = _strip_median(img, grid, ks, front, cl, lat, ant, us, vc + np.arange(-2.0, 2.01, 1.0), over=1)
    u0 = len(us) // 2
    sides = []
    for direction, name in ((-1, "left"), (1, "right")):
        i = _exit(u_prof, u0, direction, low, high, run)
        if i is None:
            i = 0 if direction < 0 else len(us) - 1
            open_sides.append(name)
        sides.append(us[i])
    return sides[0], sides[1], v_post, v_ant, open_sides


def _segment_bodies(img, smooth, grid: Volume, bodies, neighbours, i0: int, front, cl, arc, tan, ant, lat, tree,
                    params: VertebraeMRIParams, *, replaced=frozenset()) -> tuple[np.ndarray, dict]:
    """Label (1..len(bodies)) of each body's marrow region grown from its band, plus the cortex,
    and per body the sides where no border was found (the outline then reaches a search limit).

    Marrow voxels are those of ``img`` in the body's window (:func:`_window`) connected to the
    band, confined to the ellipse (in the plane across the cord) through the marrow's extent along
    four rays from the band measured on the smoothed image ``smooth`` (:func:`_outline`), grown by
    the cortex and one voxel.

    A body in ``replaced`` (indices into ``bodies``: its marrow signal is gone, e.g. a lytic
    lesion of the signal of a disc) is the whole region within the mean cross-section (an ellipse
    from the second moments, centred relative to the cord axis) of the nearest normal body on each
    side, along its marrow run grown by the cortex: the lesion inside the body's outline belongs
    to the vertebra it destroys.
    """
    sp = grid.spacing
    # voxels of a box around the body column, with their frame coordinates
    corners = []
    for u in (-params.body_max_half_width_mm, params.body_max_half_width_mm):
        for v in (0.0, params.body_max_depth_mm):
            corners.append(cl + u * lat + (front + v)[:, None] * ant)
    corners = grid.ras_to_ijk(np.concatenate(corners))
    lo_ijk = np.clip(np.floor(corners.min(axis=0)).astype(int) - 1, 0, np.asarray(img.shape) - 1)
    hi_ijk = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 2, 1, np.asarray(img.shape))
    box = tuple(slice(a, b) for a, b in zip(lo_ijk, hi_ijk, strict=True))
    sub = img[box]
    sub_smooth = smooth[box]
    ii, jj, kk = np.meshgrid(*[np.arange(s.start, s.stop) for s in box], indexing="ij")
    ras = grid.ijk_to_ras(np.stack([ii.ravel(), jj.ravel(), kk.ravel()], axis=1))
    k, s, u, v = _frame_coords(ras, tree, cl, arc, tan, ant, lat)
    v_axis = v.reshape(sub.shape)
    v_rel = (v - front[k]).reshape(sub.shape)
    s = s.reshape(sub.shape)
    u = u.reshape(sub.shape)
    column = (np.abs(u) <= params.body_max_half_width_mm) & (v_rel >= params.sac_margin_mm) & \
             (v_rel <= params.body_max_depth_mm)
    band = (np.abs(u) <= params.band_half_width_mm) & (v_rel >= params.band_offset_mm) & \
           (v_rel <= params.band_offset_mm + params.band_depth_mm)
    opening = ball(params.opening_mm, sp) if params.opening_mm > 0 else None
    regrow = max(1, int(np.ceil(params.opening_mm / float(np.min(sp)))))
    # a voxel is body when most of it is: its centre lies within the cortex plus half a voxel
    reach = params.cortex_mm + 0.5 * float(np.max(sp)) if params.cortex_mm > 0 else 0.0
    labels = np.zeros(img.shape, np.int16)
    sub_labels = labels[box]
    open_sides = {}
    footprints = {}  # normal body -> centre and semi-axes (u, v from the cord axis; mm) across the cord
    grow = reach + float(np.min(sp))
    for b in [b for b in range(len(bodies)) if b not in replaced] + sorted(replaced):
        lo, hi, slab_lo, slab_hi, _cut = bodies[b]
        s_run = (arc[i0 + lo], arc[i0 + hi])
        s_slab = _slab(slab_lo, slab_hi, i0, arc)
        slab = column & (s >= s_slab[0]) & (s <= s_slab[1])
        if b in replaced:
            # the nearest normal body on each side along the cord gives the cross-section
            sides = [min((c for c in footprints if (c - b) * d > 0), key=lambda c: abs(c - b), default=None)
                     for d in (-1, 1)]
            near = [footprints[c] for c in sides if c is not None]
            if near:
                c_u, c_v, a_u, a_v = np.mean(near, axis=0)
                inside = ((u - c_u) / a_u) ** 2 + ((v_axis - c_v) / a_v) ** 2 <= 1.0
                body = slab & inside & (s >= s_run[0] - reach) & (s <= s_run[1] + reach)
                sub_labels[body & (sub_labels == 0)] = b + 1
                continue
        seed = band & (s >= s_run[0]) & (s <= s_run[1])
        if np.count_nonzero(seed & slab) < 5:
            continue
        low, high = _window(sub[seed & slab], neighbours[b], params)
        fifth = (hi - lo) // 5
        ks = np.arange(i0 + lo + fifth, i0 + hi - fifth + 1, 2)
        s_low, s_high = _window(sub_smooth[seed & slab], neighbours[b], params)
        u_l, u_r, v_p, v_a, open_sides[b] = _outline(smooth, grid, ks, front, cl, lat, ant, s_low, s_high, params)
        a_u, a_v = 0.5 * (u_r - u_l) + grow, 0.5 * (v_a - v_p) + grow
        inside = ((u - 0.5 * (u_l + u_r)) / a_u) ** 2 + ((v_rel - 0.5 * (v_p + v_a)) / a_v) ** 2 <= 1.0
        slab &= inside
        cand = slab & (sub_smooth >= s_low) & (sub_smooth <= s_high)
        core_cand = ndimage.binary_opening(cand, structure=opening) if opening is not None else cand
        lab, nlab = ndimage.label(core_cand)
        if nlab == 0:
            continue
        hit = np.unique(lab[seed & core_cand])
        hit = hit[hit > 0]
        if not hit.size:
            continue
        body = np.isin(lab, hit)
        if opening is not None:  # give back the border the opening shaved off, not the leaks it cut
            body = ndimage.binary_dilation(body, iterations=regrow, mask=cand)
        if params.smoothing_mm > 0:  # the border smoothing moved inwards: marrow voxels of the raw image
            rim = ndimage.distance_transform_edt(~body, sampling=sp) <= params.smoothing_mm + 0.5 * float(np.max(sp))
            body |= rim & slab & (sub >= low) & (sub <= high)
        body = ndimage.binary_fill_holes(body)
        if reach > 0:
            body = (ndimage.distance_transform_edt(~body, sampling=sp) <= reach) & slab
        sub_labels[body & (sub_labels == 0)] = b + 1
        quarter = 0.25 * (s_run[1] - s_run[0])
        mid = body & (s >= s_run[0] + quarter) & (s <= s_run[1] - quarter)
        if replaced and not open_sides[b] and np.count_nonzero(mid) >= 20:
            # the cross-section's moments (a uniform ellipse of semi-axis a has SD a / 2), from the
            # cord axis: an epidural extension beside a replaced body may push the sac's front back
            footprints[b] = (float(u[mid].mean()), float(v_axis[mid].mean()),
                             2.0 * float(u[mid].std()), 2.0 * float(v_axis[mid].std()))
    return labels, open_sides


def _slab(disc_lo, disc_hi, i0: int, arc) -> tuple[float, float]:
    """Arc-length range (mm) of a body's slab between its disc centres; a body cut by the
    profile's end reaches to the end of the axis (the image's edge)."""
    return (-np.inf if disc_lo is None else float(arc[i0 + disc_lo]),
            np.inf if disc_hi is None else float(arc[i0 + disc_hi]))


def _index_at_height(anchor_ras, bodies, order, index_of, i0: int, tree, cl, arc, tan, ant, lat) -> int:
    """The body whose slab along the cord contains the anchor point's position along the cord
    (for an anchor placed on a posterior element); 0 when none does."""
    _k, s, _u, _v = _frame_coords(np.asarray(anchor_ras, float)[None, :], tree, cl, arc, tan, ant, lat)
    for b in order:
        lo, hi = _slab(bodies[b][2], bodies[b][3], i0, arc)
        if lo <= s[0] <= hi:
            return index_of[b]
    return 0
