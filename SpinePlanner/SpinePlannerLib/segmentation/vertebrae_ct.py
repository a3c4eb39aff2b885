"""Bone, vertebrae and level names on CT (classical engine, L1).

Method
------
On a working grid with slices ``[:, :, k]`` across the spine:

0. *Working grid*: first the RAS-aligned working grid (axial slices). The bony canal is tracked
   there and the spine's mean axis fitted (principal direction of the canal centres, mm). When
   it leaves both S and the grid's slice axis by more than ``axis_realign_deg`` (patient
   flexion/extension, gantry tilt; an oblique acquisition of an upright spine keeps its grid)
   over a canal of at least :data:`REALIGN_MIN_CANAL_MM`, the CT is resampled
   (linear, -1000 HU outside its field of view) onto a grid turned by the smallest rotation that
   takes S onto the axis (isotropic voxels as :func:`seg_common.working_grid` resamples), and
   everything below runs there. Labels and bone go back to the input grid through world
   coordinates; every reported coordinate is RAS. The axis angle from S is reported
   (``working_axis_tilt_deg``).
1. *Canal*: the bony canal is followed slice by slice (:func:`seg_cord.bony_canal`); its centre
   is the spine's axis. Without a canal there is no spine to label ("not found").
2. *Bone*: voxels above ``cancellous_hu`` closed over one in-plane voxel and hole-filled per
   slice (cortex encloses cancellous bone), plus everything above ``bone_hu``; the canal is
   removed. Spine bone is the bone within ``spine_radius_mm`` of the canal centre.
3. *Discs*: in a box in front of the canal (straightened along the canal line smoothed over
   ``disc_box_smoothing_mm``), a disc is a dark slab *sandwiched* between two bright endplates
   within ``endplate_window_mm`` above and below; the score of a slice is the fraction of the
   body footprint showing that pattern on the best plane through the slice tilted in the
   sagittal plane by up to ``disc_tilt_max_deg`` (the lumbosacral disc is steep). Among the
   score's peaks the disc set is chosen for score and regularity (a dynamic programme that
   penalises gaps off the vertebral pitch, ``disc_regularity_weight``), so that a dark band
   inside a body does not split it. Bodies lie between the disc planes (their markers follow
   the tilt); each disc's position and tilt are reported.
4. *Posterior arches*: behind the canal the laminae of consecutive vertebrae are separated by
   the interlaminar spaces; runs of bone there are arches. An arch belongs to the vertebra whose
   body range (from its lower disc up to its upper disc) contains the arch's upper end; the
   runs are aligned with the vertebrae in order (one run per vertebra, vertebrae above the
   field of view included), so one arch reaching past its disc (the L5 spinous process in a
   lordotic spine) does not shift the arches above it.
5. *Labels*: a marker watershed on the negative distance transform of the spine bone floods
   from the body and arch markers, so borders fall at the narrow necks (facet joints, discs).
   Bone reaching beyond ``spine_radius_mm`` laterally is a rib: it is flooded with its own
   marker and the vertebrae touching a rib on both sides are rib-bearing.
6. *Sacrum*: the bone below the lowest disc is the sacrum when it runs at least
   ``sacrum_min_height_mm`` caudally (without a disc gap within the tracked canal; below the
   canal's end, as long as bone lies near the midline) and, in at least ``sacrum_min_fraction``
   of its slices, the bone mass fused to the body reaches ``sacrum_ala_half_width_mm`` on both
   sides (alae) and bone lies on both sides within ``sacrum_iliac_range_mm`` of the canal
   centre (sacroiliac joints, iliac wings).
7. *Names*: from a user anchor (a named level and a RAS point in that vertebra), else from C2
   (the most cranial body with the dens rising from it into a C1 ring, see
   :mod:`seg_vertebrae_cervical`; 7 cervical vertebrae is near-invariant; reliable only when
   the C1 ring is seen; C1 is then split off the C2 label and posterior-arch labels above C1,
   bone of the skull base, are dropped), else from the
   sacrum (S1; the lowest mobile vertebra above it is L5: assumes 5 lumbar vertebrae and no
   lumbosacral transitional vertebra, flagged), else the lowest vertebra bearing ribs on both
   sides is T12 (assumes 12 rib pairs: flagged; not used when a dens was seen at the top; a
   warning when a single rib-free vertebra lies below it whose body is not taller than the
   rib-bearing ones, as after a rib missed in the upper thorax, when a C2-like shape was seen,
   or when the count names vertebrae below L5), else the levels stay unnamed (``V1``... cranial
   to caudal) and the result says it is not anchored. When the sacrum and the last rib are
   both seen, ``anchor_consistency`` says whether they name the levels alike (a warning when
   not: transitional vertebra or 11/13 rib pairs); when C2 and the first rib pair are both
   seen, whether the most cranial rib-bearing vertebra is T1 counted from C2 (a warning when
   not: cervical rib or a missed level).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.signal import find_peaks
from skimage.segmentation import watershed

from SpinePlannerLib.core.geometry import field_of_view_mask, resample
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.planning.context import Progress, no_progress
from SpinePlannerLib.segmentation.common import (
    drop_outliers,
    isotropic_step,
    labels_to_grid,
    mask_to_grid,
    working_grid,
)
from SpinePlannerLib.segmentation.params import LEVEL_NAMES, CordParams, VertebraeParams
from SpinePlannerLib.segmentation.vertebrae_cervical import OUTSIDE_HU, anchor_evidence, c2_evidence, label_c1


@dataclass
class VertebraeResult:
    """Outcome of :func:`segment_vertebrae_ct`.

    Attributes
    ----------
    found : bool
    reason : str
    labels : Volume or None
        Level index per voxel (1 = most cranial vertebra in the field of view), 0 elsewhere, on the
        input grid.
    bone : Volume or None
        0/1 bone mask on the input grid.
    names : dict[int, str]
        Level index -> name (``"T12"``; ``"V3"`` when not anchored).
    method : str
        ``"user anchor"``, ``"C2"``, ``"sacrum"``, ``"last rib"`` or ``"unanchored"``.
    anchor : dict or None
        What anchored the names (level, RAS point or the rib-bearing vertebra; for C2 the level
        index and the evidence: dens height and width in mm, whether the C1 ring was seen).
    reliable : bool
        False when the names are not anchored or the anchor is an assumption to confirm (C2 is
        reliable when both the dens and the C1 ring are seen).
    vertebrae : list of dict
        Per level: index, name, voxels, centroid and body S range (RAS mm), canal centre at
        mid-body (RAS mm), whether ribs attach, whether the body is in the field of view.
    warnings : list of str
    anchor_consistency : dict or None
        When both the sacrum and the last rib are seen: ``{"sacrum_says": name of the last
        rib-bearing vertebra counted from the sacrum, "last_rib_says": "T12", "agree": bool}``.
        When C2 is found and a vertebra bears ribs on both sides, also ``"c2_says"``
        (the most cranial rib-bearing vertebra counted from C2), ``"first_rib_says": "T1"`` and
        ``"c2_agrees"``; ``"agree"`` is then true only when every pair agrees.
    discs : list of dict
        The discs between the bodies, inferior to superior: ``centre_ras`` (RAS mm, the disc
        plane at the body's mid-depth), ``tilt_deg`` (sagittal tilt of the plane from the axial
        plane of the canal-following box, i.e. from the plane perpendicular to the working axis,
        degrees; positive = anterior end cranial) and ``score`` (fraction of the body footprint
        showing the disc pattern).
    working_axis : dict or None
        The spine's mean axis fitted to a first canal pass: ``tilt_deg`` (angle from S, degrees),
        ``ras`` (unit vector, towards S) and ``realigned`` (the vertebrae were labelled on a
        working grid following it); None (or ``tilt_deg`` None) when no axis could be fitted.
    """

    found: bool
    reason: str
    labels: Volume | None = None
    bone: Volume | None = None
    names: dict = field(default_factory=dict)
    method: str = "unanchored"
    anchor: dict | None = None
    reliable: bool = False
    vertebrae: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    anchor_consistency: dict | None = None
    discs: list = field(default_factory=list)
    working_axis: dict | None = None

    def summary(self) -> dict:
        """JSON-ready ``plan["vertebrae"]`` section."""
        out = {
            "found": bool(self.found),
            "reason": self.reason,
            "levels": {str(k): v for k, v in sorted(self.names.items())},
            "method": self.method,
            "anchor": self.anchor,
            "reliable": bool(self.reliable),
            "vertebrae": self.vertebrae,
            "warnings": list(self.warnings),
        }
        if self.anchor_consistency is not None:
            out["anchor_consistency"] = dict(self.anchor_consistency)
        if self.discs:
            out["discs"] = [dict(d) for d in self.discs]
        if self.working_axis is not None and self.working_axis.get("tilt_deg") is not None:
            out["working_axis_tilt_deg"] = self.working_axis["tilt_deg"]
            out["working_axis_ras"] = list(self.working_axis["ras"])
            out["working_grid_realigned"] = bool(self.working_axis["realigned"])
        return out


# -- helpers -------------------------------------------------------------------------------------
def _fill_slices(mask: np.ndarray) -> np.ndarray:
    out = np.empty_like(mask)
    for k in range(mask.shape[2]):
        out[:, :, k] = ndimage.binary_fill_holes(mask[:, :, k])
    return out


def _canal_centres(canal: np.ndarray) -> np.ndarray | None:
    nk = canal.shape[2]
    ks = [k for k in range(nk) if canal[:, :, k].any()]
    if len(ks) < 2:
        return None
    c = np.array([np.argwhere(canal[:, :, k]).mean(axis=0) for k in ks])
    out = np.empty((nk, 2))
    for d in range(2):
        out[:, d] = np.interp(np.arange(nk), ks, c[:, d])
    return out


AXIS_MIN_CANAL_MM = 40.0
"""The spine's mean axis is fitted only on at least this much tracked canal (mm along the working
grid's slice axis)."""
REALIGN_MIN_CANAL_MM = 120.0
"""The working grid is turned to the spine's axis only when the tracked canal spans at least this
much (mm): over a shorter field of view the mean axis is mostly the local curvature, which the
tilted disc planes already follow, and the field's ends cut obliquely would cost whole vertebrae
(documented setting)."""


def _spine_axis(canal: np.ndarray, grid: Volume) -> tuple[np.ndarray, float] | None:
    """The spine's mean axis from the bony canal on ``grid``: the principal direction of the canal
    centres (one per slice, RAS mm, outliers off the running median dropped), oriented towards +S.

    Returns ``(unit vector (RAS), angle from S in degrees)``, or None when the canal spans less
    than :data:`AXIS_MIN_CANAL_MM`.
    """
    ks = np.flatnonzero(canal.any(axis=(0, 1)))
    if len(ks) < 5 or (ks[-1] - ks[0]) * grid.spacing[2] < AXIS_MIN_CANAL_MM:
        return None
    ijk = np.array([[*np.argwhere(canal[:, :, k]).mean(axis=0), k] for k in ks])
    pts = drop_outliers(grid.ijk_to_ras(ijk), window_mm=20.0, max_mm=5.0)
    if len(pts) < 5:
        return None
    _u, _s, vt = np.linalg.svd(pts - pts.mean(axis=0), full_matrices=False)
    t = vt[0] / np.linalg.norm(vt[0])
    if t[2] < 0:
        t = -t
    return t, float(np.degrees(np.arccos(np.clip(t[2], -1.0, 1.0))))


def _spine_aligned_grid(ct: Volume, axis, *, spacing_mm: float, min_spacing_mm: float) -> tuple[Volume, np.ndarray]:
    """``ct`` resampled (linear, -1000 HU outside its field of view) onto a grid whose k axis
    is the unit vector ``axis`` (RAS) and whose i, j axes are R and A turned by the smallest
    rotation taking S onto ``axis``, covering ``ct``'s whole field of view, with isotropic voxels
    as :func:`seg_common.working_grid` resamples: ``min(smallest voxel size, spacing_mm)``, or
    ``spacing_mm`` when the voxels are finer than ``min_spacing_mm``. Returns the grid and which
    of its voxels lie in ``ct``'s field of view."""
    t = np.asarray(axis, float) / np.linalg.norm(axis)
    v = np.cross([0.0, 0.0, 1.0], t)
    vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    rot = np.eye(3) + vx + vx @ vx / (1.0 + t[2])  # rot @ S = t
    sp = np.full(3, isotropic_step(ct.spacing, spacing_mm=spacing_mm, min_spacing_mm=min_spacing_mm))
    n = np.asarray(ct.shape3) - 1
    corners = ct.ijk_to_ras(np.array([[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])], float))
    along = corners @ rot  # coordinates along the new axes (mm)
    lo, hi = along.min(axis=0), along.max(axis=0)
    shape = tuple(int(np.floor((h - low) / s + 1e-6)) + 1 for low, h, s in zip(lo, hi, sp, strict=True))
    aff = np.eye(4)
    aff[:3, :3] = rot * sp
    aff[:3, 3] = rot @ lo
    arr = resample(ct, aff, shape, order=1, cval=OUTSIDE_HU)
    inside = field_of_view_mask(ct.shape3, ct.affine, aff, shape)
    return Volume(arr.astype(np.float32), aff, ct.name, dict(ct.meta)), inside


def _straight_box(img: np.ndarray, centres: np.ndarray, half_i: int, j_from: int, j_to: int, fill: float):
    """Per slice, the in-plane box ``[ci - half_i, ci + half_i] x [cj + j_from, cj + j_to)`` around
    the canal centre, stacked into a straightened (i, j, k) array (``fill`` outside the image)."""
    ni, nj, nk = img.shape
    out = np.full((2 * half_i + 1, j_to - j_from, nk), fill, dtype=np.float32)
    for k in range(nk):
        ci, cj = (int(round(v)) for v in centres[k])
        i0, i1 = ci - half_i, ci + half_i + 1
        j0, j1 = cj + j_from, cj + j_to
        si0, si1 = max(i0, 0), min(i1, ni)
        sj0, sj1 = max(j0, 0), min(j1, nj)
        if si1 > si0 and sj1 > sj0:
            out[si0 - i0:si1 - i0, sj0 - j0:sj1 - j0, k] = img[si0:si1, sj0:sj1, k]
    return out


def _shear_k(vol: np.ndarray, slope: float, j_pivot: float, fill) -> np.ndarray:
    """``out[:, j, k] = vol[:, j, k + round(slope * (j - j_pivot))]`` (``fill`` outside): a plane
    through slice ``k`` at column ``j_pivot`` rising ``slope`` slices per column becomes slice ``k``."""
    out = np.full_like(vol, fill)
    nk = vol.shape[2]
    for j in range(vol.shape[1]):
        s = int(round(slope * (j - j_pivot)))
        if abs(s) >= nk:
            continue
        if s >= 0:
            out[:, j, :nk - s] = vol[:, j, s:]
        else:
            out[:, j, -s:] = vol[:, j, :nk + s]
    return out


MIN_FOOTPRINT_FRACTION = 0.3
"""A disc plane is scored only where it keeps at least this fraction of the median axial body
footprint (:func:`_disc_score`): a plane through the edge of the field of view (or of a working
grid turned against it) keeps a sliver whose fraction showing the pattern means nothing."""


def _disc_score(box: np.ndarray, spacing, params: VertebraeParams, valid: np.ndarray | None = None):
    """Per slice of the straightened box (``[i, j, k]``, ``j`` from the canal towards the bodies),
    the fraction of the body footprint (``valid``: the box voxels inside the CT's field of view,
    all when None) where a dark slab lies between two bright endplates
    (``endplate_hu``) within ``endplate_window_mm`` above and below, on the best of the disc planes
    through that slice tilted in the sagittal plane by up to ``disc_tilt_max_deg``; planes keeping
    less than :data:`MIN_FOOTPRINT_FRACTION` of the median axial footprint score 0.

    Returns ``(score, tilt_deg, j_pivot)``: per slice the score and the tilt (degrees; positive =
    the anterior end of the disc lies cranial) of the best plane, and the box column (the
    footprint's mean ``j``) where every plane passes through its slice.
    """
    sp = np.asarray(spacing, float)
    nk = box.shape[2]
    size = max(3, int(round(30.0 / sp[2])))
    if valid is None:
        footprint = ndimage.uniform_filter1d(box, size=size, axis=2, mode="nearest") > params.footprint_hu
    else:  # the mean over the voxels inside the field of view
        v = valid.astype(np.float32)
        num = ndimage.uniform_filter1d(box * v, size=size, axis=2, mode="nearest")
        den = ndimage.uniform_filter1d(v, size=size, axis=2, mode="nearest")
        footprint = valid & (num > params.footprint_hu * np.maximum(den, 1e-6))
    x = ndimage.gaussian_filter(box, sigma=(1.0 / sp[0], 1.0 / sp[1], 0.0))
    w = max(1, int(round(params.endplate_window_mm / sp[2])))
    j_fp = np.argwhere(footprint)[:, 1]
    if not len(j_fp):
        return np.zeros(nk), np.zeros(nk), (box.shape[1] - 1) / 2.0
    j_pivot = float(j_fp.mean())
    a_max, step = params.disc_tilt_max_deg, params.disc_tilt_step_deg
    n_side = int(np.floor(a_max / step + 1e-9))
    tilts = np.arange(-n_side, n_side + 1) * step  # 0 in the middle: ties keep the axial plane
    tilts = tilts[np.argsort(np.abs(tilts), kind="stable")]
    best = np.full(nk, -1.0)
    best_tilt = np.zeros(nk)
    n_ref = None
    for tilt in tilts:
        slope = float(np.tan(np.radians(tilt)) * sp[1] / sp[2])
        xs = _shear_k(x, slope, j_pivot, -1000.0) if tilt else x
        fs = _shear_k(footprint, slope, j_pivot, False) if tilt else footprint
        below = np.full(xs.shape, -np.inf, np.float32)
        above = np.full(xs.shape, -np.inf, np.float32)
        for d in range(1, w + 1):
            below[:, :, d:] = np.maximum(below[:, :, d:], xs[:, :, :-d])
            above[:, :, :-d] = np.maximum(above[:, :, :-d], xs[:, :, d:])
        walls = np.minimum(below, above)
        sandwich = (walls > params.endplate_hu) & (walls - xs > params.disc_contrast_hu) & fs
        n_fp = fs.sum(axis=(0, 1))
        if n_ref is None:  # the axial planes come first
            n_ref = MIN_FOOTPRINT_FRACTION * float(np.median(n_fp[n_fp > 0])) if np.any(n_fp > 0) else 1.0
        # a plane near the edge of the field of view keeps only a sliver of the footprint
        score = np.where(n_fp >= max(n_ref, 1.0), sandwich.sum(axis=(0, 1)) / np.maximum(n_fp, 1), 0.0)
        score[[0, -1]] = 0.0
        if nk >= 3:
            score = ndimage.uniform_filter1d(score, size=3, mode="nearest")
        better = score > best
        best[better] = score[better]
        best_tilt[better] = tilt
    return np.maximum(best, 0.0), best_tilt, j_pivot


def _select_discs(score: np.ndarray, k_first: int, k_last: int, min_gap: int, max_gap: int, min_body: int,
                  params: VertebraeParams) -> list[int]:
    """The regular disc set among the peaks of ``score`` (slices, inferior to superior).

    Candidates are the peaks with at least ``min_body`` slices of tracked canal beyond them on
    both sides (a disc needs a body in view on each side) reaching ``threshold = max(min_disc_score,
    disc_peak_fraction * ref)``, ``ref`` being the median height of the peaks at least ``min_gap``
    apart (robust to one outlying peak). A dynamic programme over the candidates (consecutive discs
    at least ``min_gap`` slices apart) maximises ``sum(min(1, (score - threshold) / ref)) -
    disc_regularity_weight * sum(ln(gap / pitch)**2)``: a disc earns its score above the threshold,
    a gap off the pitch costs. ``pitch`` (slices) comes from the candidates' positions: the
    largest period in ``[min_gap, max_gap]`` where the phase coherence (the modulus of the
    score-weighted mean of ``exp(2 pi i k / period)``) peaks at 0.7 or more of its maximum (a
    lattice of discs is also coherent at half its pitch, not at twice it).
    Finally a disc leaving less than ``e = min_edge_body_pitch`` pitches of canal beyond it, where
    the tracked canal ends at least ``e`` pitches inside the image, is dropped: too little of a
    body to separate (at the caudal end typically the rudimentary S1/S2 disc inside the sacrum,
    whose canal curves away). At the edges of the field of view a cut body is kept.
    """
    inside = np.zeros(len(score), bool)
    inside[k_first + min_body:max(k_first + min_body, k_last - min_body + 1)] = True
    spaced, _ = find_peaks(np.where(inside, score, 0.0), height=max(params.min_disc_score, 1e-6), distance=min_gap)
    if not len(spaced):
        return []
    ref = float(np.median(score[spaced]))
    height = max(params.min_disc_score, params.disc_peak_fraction * ref)
    peaks, _ = find_peaks(np.concatenate([[0.0], np.where(inside, score, 0.0), [0.0]]), height=height)
    cand = peaks - 1
    if len(cand) <= 1:
        return [int(c) for c in cand]
    reward = np.minimum(1.0, (score[cand] - height) / max(ref, 1e-6))
    weight = np.minimum(score[cand], 2.0 * ref)
    periods = np.arange(float(min_gap), float(max(max_gap, min_gap)) + 1e-9, 0.25)
    coherence = np.abs(np.exp(2j * np.pi * cand[None, :] / periods[:, None]) @ weight) / weight.sum()
    lobes = [i for i in range(len(periods)) if coherence[i] >= 0.7 * coherence.max()
             and coherence[i] >= coherence[max(i - 1, 0)] and coherence[i] >= coherence[min(i + 1, len(periods) - 1)]]
    pitch = float(periods[lobes[-1]])
    n = len(cand)
    total = reward.copy()
    prev = np.full(n, -1)
    for i in range(1, n):
        for h in range(i):
            gap = cand[i] - cand[h]
            if gap < min_gap:
                continue
            v = total[h] + reward[i] - params.disc_regularity_weight * np.log(gap / pitch) ** 2
            if v > total[i]:
                total[i], prev[i] = v, h
    i = int(np.argmax(total))
    chosen = []
    while i >= 0:
        chosen.append(int(cand[i]))
        i = int(prev[i])
    chosen = sorted(chosen)
    edge = params.min_edge_body_pitch * (float(np.median(np.diff(chosen))) if len(chosen) >= 2 else pitch)
    while chosen and k_first >= edge and chosen[0] - k_first < edge:
        chosen = chosen[1:]
    while chosen and len(score) - 1 - k_last >= edge and k_last - chosen[-1] < edge:
        chosen = chosen[:-1]
    return chosen


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs ``(start, stop)`` (inclusive) of True."""
    out, start = [], None
    for k, f in enumerate(flags):
        if f and start is None:
            start = k
        if not f and start is not None:
            out.append((start, k - 1))
            start = None
    if start is not None:
        out.append((start, len(flags) - 1))
    return out


# -- level names and per-level records (shared with the MRI engine, :mod:`seg_vertebrae_mri`) -----
ANCHOR_MAX_DISTANCE_MM = 15.0
"""A user anchor outside every labelled vertebra names the labelled voxel nearest to it within
this distance (mm)."""


def anchor_index(labels: np.ndarray, grid: Volume, anchor_ras, *,
                 max_distance_mm: float = ANCHOR_MAX_DISTANCE_MM) -> int:
    """Level index of the vertebra containing the RAS point ``anchor_ras`` (mm).

    ``labels`` holds level indices on ``grid`` (any affine). When the point lies in no labelled
    voxel, the nearest labelled voxel within ``max_distance_mm`` decides; 0 when there is none.
    """
    ijk = np.round(grid.ras_to_ijk(anchor_ras)).astype(int)
    if np.all(ijk >= 0) and np.all(ijk < np.asarray(labels.shape)):
        idx = int(labels[tuple(ijk)])
        if idx:
            return idx
    pts = np.argwhere(labels > 0)
    if not len(pts):
        return 0
    d = np.linalg.norm(grid.ijk_to_ras(pts) - np.asarray(anchor_ras, float), axis=1)
    j = int(np.argmin(d))
    return int(labels[tuple(pts[j])]) if d[j] <= max_distance_mm else 0


def names_from_anchor(n: int, index: int, anchor_level: str, anchor_ras) -> tuple[dict | None, dict | None, list]:
    """Names of levels ``1..n`` (1 = most cranial) when level ``index`` is ``anchor_level``.

    Returns ``(names, anchor, warnings)``; ``names`` is None (with a warning) when counting from
    the anchor would name levels outside C1..S5.
    """
    base = LEVEL_NAMES.index(anchor_level) - (index - 1)
    if base >= 0 and base + n <= len(LEVEL_NAMES):
        names = {i + 1: LEVEL_NAMES[base + i] for i in range(n)}
        return names, {"level": anchor_level, "ras": [float(v) for v in anchor_ras], "index": int(index)}, []
    return None, None, [f"anchor {anchor_level} at level index {index} would name levels outside C1..S5"]


def unanchored_names(n: int) -> dict[int, str]:
    """``V1..Vn``, counted from the most cranial vertebra in the field of view."""
    return {i + 1: f"V{i + 1}" for i in range(n)}


def vertebra_record(labels: np.ndarray, index: int, name: str, grid: Volume, *, body_in_field_of_view: bool,
                    ribs=(), body_s_range=None, body_cut: bool | None = None, canal_centre_ras=None) -> dict:
    """The ``plan["vertebrae"]["vertebrae"]`` entry of level ``index`` of ``labels`` (on ``grid``).

    ``body_s_range`` is the body's (lower, upper) RAS S coordinate (mm, either order): the S of
    the body's two end points on the spine's axis (the canal centre line; on a working grid
    turned to a tilted spine, the ends along that axis, so the range is the body's extent along
    the axis projected onto S), ``canal_centre_ras`` the canal (or cord) centre at mid-body (RAS
    mm).
    """
    pts = np.argwhere(labels == index)
    info = {"index": int(index), "name": name, "voxels": int(len(pts)),
            "centroid_ras": [round(float(v), 2) for v in grid.ijk_to_ras(pts.mean(axis=0))] if len(pts) else None,
            "body_in_field_of_view": bool(body_in_field_of_view), "ribs": list(ribs)}
    if body_s_range is not None:
        lo, hi = (float(v) for v in body_s_range)
        info["body_s_range_mm"] = [round(min(lo, hi), 2), round(max(lo, hi), 2)]
    if body_cut is not None:
        info["body_cut_by_field_of_view"] = bool(body_cut)
    if canal_centre_ras is not None:
        info["canal_centre_ras"] = [round(float(v), 2) for v in canal_centre_ras]
    return info


# -- main ----------------------------------------------------------------------------------------
def _realign_to_spine(ct: Volume, grid, img: np.ndarray, canal: np.ndarray, params: VertebraeParams,
                      cord_params: CordParams, progress: Progress):
    """The spine's mean axis; a spine tilted beyond ``axis_realign_deg`` is labelled on a working grid
    following it. Returns ``(grid, img, canal, fov, axis_info, pre_warnings)`` (``fov``: voxels of the
    working grid inside the CT's field of view, None for all)."""
    from SpinePlannerLib.segmentation.cord import bony_canal

    pre_warnings: list[str] = []
    fov = None  # voxels of the working grid inside the CT's field of view (None: all)
    axis = _spine_axis(canal, grid)
    axis_info = {"tilt_deg": None, "ras": None, "realigned": False}
    if axis is not None:
        axis_info.update(tilt_deg=round(axis[1], 1), ras=[round(float(v), 4) for v in axis[0]])
        k_dir = grid.direction[:, 2] / np.linalg.norm(grid.direction[:, 2])
        off_slices = float(np.degrees(np.arccos(min(1.0, abs(float(axis[0] @ k_dir))))))
        ks = np.flatnonzero(canal.any(axis=(0, 1)))
        span_mm = (ks[-1] - ks[0]) * grid.spacing[2]
        if min(off_slices, axis[1]) > params.axis_realign_deg and span_mm >= REALIGN_MIN_CANAL_MM:
            progress(0.1, "working grid along the spine")
            r_grid, r_fov = _spine_aligned_grid(ct, axis[0], spacing_mm=params.working_spacing_mm,
                                                min_spacing_mm=params.working_spacing_mm * 0.75)
            r_img = r_grid.array
            r_canal, r_reason = bony_canal(r_img, r_grid.spacing, cord_params)
            if r_canal is not None and _canal_centres(r_canal) is not None:
                grid, img, canal, fov = r_grid, r_img, r_canal, r_fov
                axis_info["realigned"] = True
            else:
                pre_warnings.append(f"the spine's axis is tilted {axis[1]:.0f} degrees from S, but the canal was "
                                    f"not found on a working grid following it ({r_reason or 'too short'}): "
                                    "labelled on axial slices; confirm the levels")
    return grid, img, canal, fov, axis_info, pre_warnings


def _spine_bone(img: np.ndarray, canal: np.ndarray, centres: np.ndarray, sp, params: VertebraeParams):
    """Bone mask, the region within ``spine_radius_mm`` of the canal centre and the spine (bone there
    connected to the ring around the canal). Returns ``(bone, near, spine, ii, jj, k_first, k_last)``."""
    bone = ndimage.binary_closing(img > params.cancellous_hu, structure=np.ones((3, 3, 1), bool))
    bone = (_fill_slices(bone) | (img > params.bone_hu)) & ~canal
    ii, jj = np.meshgrid(np.arange(img.shape[0]), np.arange(img.shape[1]), indexing="ij")
    canal_ks = np.flatnonzero(canal.any(axis=(0, 1)))
    k_first, k_last = int(canal_ks[0]), int(canal_ks[-1])
    near = np.zeros(img.shape, bool)
    for k in range(k_first, k_last + 1):
        d2 = ((ii - centres[k, 0]) * sp[0]) ** 2 + ((jj - centres[k, 1]) * sp[1]) ** 2
        near[:, :, k] = d2 <= params.spine_radius_mm**2
    spine = bone & near
    ring = ndimage.binary_dilation(canal, structure=np.ones((3, 3, 1), bool), iterations=max(1, int(round(4.0 / sp[0]))))
    lab, n = ndimage.label(spine)
    keep = np.unique(lab[ring & spine])
    spine = np.isin(lab, keep[keep > 0])
    return bone, near, spine, ii, jj, k_first, k_last


@dataclass
class _DiscLayout:
    """Discs and vertebral bodies along the canal-following box (working-grid slices ``k``)."""

    sign: int  # +1 when the bodies lie towards +j of the canal
    half_i: int
    j_near: int
    box_centres: np.ndarray
    score: np.ndarray
    tilt: np.ndarray
    j_pivot: int
    discs: list
    slopes: dict
    bodies: list  # (k_lo, k_hi, disc_below, disc_above), inferior to superior
    pitch: float


def _discs_and_bodies(img: np.ndarray, spine: np.ndarray, centres: np.ndarray, fov, k_first: int, k_last: int, sp,
                      params: VertebraeParams) -> _DiscLayout:
    """Which side holds the bodies, the disc planes (tilted) and the bodies between them."""
    # which side of the canal holds the bodies (+A for a supine RAS-aligned scan)
    half_i = int(round(params.body_half_width_mm / sp[0]))
    j_near, j_far = int(round(4.0 / sp[1])), int(round(params.body_depth_mm / sp[1]))
    front = _straight_box(spine.astype(np.float32), centres, half_i, j_near, j_far, 0.0).sum()
    back = _straight_box(spine.astype(np.float32), centres, half_i, -j_far, -j_near, 0.0).sum()
    sign = 1 if front >= back else -1

    # the disc box follows a smoothed canal line: a jump of the tracked centre would shear it
    box_centres = centres.copy()
    if params.disc_box_smoothing_mm > 0:
        box_centres = ndimage.gaussian_filter1d(centres, params.disc_box_smoothing_mm / sp[2], axis=0, mode="nearest")
    j_range = (j_near, j_far) if sign > 0 else (-j_far, -j_near)
    flip = slice(None, None, sign)  # j from the canal towards the bodies
    box = _straight_box(img, box_centres, half_i, *j_range, -1000.0)[:, flip, :]
    valid = None
    if fov is not None:
        valid = (_straight_box(fov.astype(np.float32), box_centres, half_i, *j_range, 0.0) > 0.5)[:, flip, :]
    score, tilt, j_pivot = _disc_score(box, sp, params, valid)
    score[:k_first] = 0.0
    score[k_last + 1:] = 0.0
    min_gap = max(1, int(round(params.disc_search_mm[0] / sp[2])))
    min_h = max(1, int(round(params.min_body_height_mm / sp[2])))
    max_gap = max(min_gap, int(round(params.disc_search_mm[1] / sp[2])))
    discs = _select_discs(score, k_first, k_last, min_gap, max_gap, min_h, params)
    # disc planes: slice of the plane at box column jb (from the canal towards the bodies)
    slopes = {d: float(np.tan(np.radians(tilt[d])) * sp[1] / sp[2]) for d in discs}
    bounds = [k_first - 1, *discs, k_last + 1]
    bodies = []  # (k_lo, k_hi) inclusive, inferior to superior, at the box's pivot column
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        k0, k1 = lo + 1, hi - 1
        at_edge = lo == k_first - 1 or hi == k_last + 1
        if k1 - k0 + 1 >= (max(1, min_h // 2) if at_edge else min_h):
            bodies.append((k0, k1, lo, hi))
    if not bodies:
        return _DiscLayout(sign, half_i, j_near, box_centres, score, tilt, j_pivot, discs, slopes, bodies, 0.0)
    pitch = float(np.median(np.diff(discs))) if len(discs) >= 2 else (
        float(np.median([b[1] - b[0] + 2 for b in bodies if b[2] >= k_first and b[3] <= k_last]
                        or [25.0 / sp[2]])))

    return _DiscLayout(sign, half_i, j_near, box_centres, score, tilt, j_pivot, discs, slopes, bodies, pitch)


def _posterior_arches(img: np.ndarray, canal: np.ndarray, spine: np.ndarray, centres: np.ndarray, sign: int, ii, jj,
                      k_first: int, k_last: int, sp, params: VertebraeParams):
    """Lamina bone behind the canal per slice: ``(post_masks, runs)`` (arch seed masks, slice runs of arches)."""
    nk = img.shape[2]
    post_counts = np.zeros(nk)
    post_masks = np.zeros(img.shape, bool)
    depth = int(round(params.arch_depth_mm / sp[1]))
    for k in range(nk):
        cm = canal[:, :, k]
        if not cm.any() or not k_first <= k <= k_last:
            continue
        cols = np.argwhere(cm)[:, 1]
        edge = cols.min() if sign > 0 else cols.max()
        dist_lr = np.abs(ii - centres[k, 0]) * sp[0]
        behind = int(round(centres[k, 1]))
        if sign > 0:
            narrow = (dist_lr <= params.arch_half_width_mm) & (jj < edge) & (jj >= edge - depth)
            wide = (dist_lr <= params.arch_marker_half_width_mm) & (jj < behind) & (jj >= edge - depth)
        else:
            narrow = (dist_lr <= params.arch_half_width_mm) & (jj > edge) & (jj <= edge + depth)
            wide = (dist_lr <= params.arch_marker_half_width_mm) & (jj > behind) & (jj <= edge + depth)
        m = narrow & spine[:, :, k]
        post_masks[:, :, k] = wide & spine[:, :, k]
        post_counts[k] = m.sum()
    level = 0.25 * np.percentile(post_counts[post_counts > 0], 90) if np.any(post_counts > 0) else 1.0
    runs = [r for r in _runs(post_counts > max(level, 1.0))
            if (r[1] - r[0] + 1) * sp[2] >= params.min_arch_mm or r[0] <= k_first or r[1] >= k_last]

    return post_masks, runs


def _watershed_slots(img, bone, near, spine, centres, ii, jj, layout: _DiscLayout, post_masks, arch_owner: dict,
                     n_slots: int, k_first: int, k_last: int, sp, params: VertebraeParams):
    """Vertebra slots by watershed from body and arch markers, ribs split off.

    Returns ``(ws, slot_ribs)``: slot + 1 per spine voxel (0 elsewhere), and the sides (-1 left,
    +1 right) on which each slot bears a rib."""
    sign, j_near, j_pivot, box_centres = layout.sign, layout.j_near, layout.j_pivot, layout.box_centres
    bodies, slopes = layout.bodies, layout.slopes
    markers = np.zeros(img.shape, np.int32)
    # body markers: between the (tilted) planes of the discs below and above, two slices clear
    for k in range(k_first, k_last + 1):
        ci, cj = box_centres[k]
        off_vox = (jj - cj) * sign
        region = ((np.abs(ii - ci) * sp[0] <= params.body_half_width_mm * 0.6) & (off_vox * sp[1] > 10.0)
                  & (off_vox * sp[1] < params.body_depth_mm) & spine[:, :, k])
        if not region.any():
            continue
        jb = off_vox - j_near - (0 if sign > 0 else 1)  # box column of each voxel
        for b, (_k0, _k1, lo, hi) in enumerate(bodies):
            above_lo = k >= lo + slopes[lo] * (jb - j_pivot) + 2 if lo >= k_first else True
            below_hi = k <= hi + slopes[hi] * (jb - j_pivot) - 2 if hi <= k_last else True
            markers[:, :, k][region & above_lo & below_hi] = b + 1
    for r, slot in arch_owner.items():
        for k in range(r[0], r[1] + 1):
            markers[:, :, k][post_masks[:, :, k]] = slot + 1
    # ribs: bone leaving the spine region laterally (or reaching the lateral edge of a narrow
    # field of view), connected to the spine
    rib_label = n_slots + 1
    lateral_bone = bone & ~near
    lateral_bone[:, :, :k_first] = False
    lateral_bone[:, :, k_last + 1:] = False
    for k in range(k_first, k_last + 1):
        edge_mm = min(centres[k, 0], img.shape[0] - 1 - centres[k, 0]) * sp[0]
        if edge_mm - 3.0 < params.spine_radius_mm:
            lateral_bone[:, :, k] |= bone[:, :, k] & (np.abs(ii - centres[k, 0]) * sp[0] >= edge_mm - 3.0)
    lab_b, _ = ndimage.label(bone)
    touching = np.unique(lab_b[spine])
    rib_seed = lateral_bone & np.isin(lab_b, touching[touching > 0])
    side = np.sign(ii[:, :, None] - centres[None, None, :, 0]) * np.ones(img.shape)
    markers[rib_seed] = rib_label
    domain = spine | rib_seed
    elevation = -ndimage.distance_transform_edt(domain, sampling=sp)
    ws = watershed(elevation, markers, mask=domain)
    rib = ws == rib_label
    ws[rib] = 0
    ws[~spine] = 0

    # rib-bearing vertebrae: each rib (connected piece of the rib label) belongs to the vertebra it
    # touches most; a vertebra bears ribs on the sides where it owns one
    slot_ribs: dict[int, set] = {}
    rib_parts, n_parts = ndimage.label(rib)
    st = np.ones((3, 3, 3), bool)
    for part in range(1, n_parts + 1):
        piece = rib_parts == part
        if piece.sum() < 5:
            continue
        touch = ws[ndimage.binary_dilation(piece, structure=st) & (ws > 0)]
        if touch.size < 3:
            continue
        owner = int(np.bincount(touch).argmax()) - 1
        s_val = int(np.sign(np.median(side[piece])))

        slot_ribs.setdefault(owner, set()).add(s_val)

    return ws, slot_ribs


def _records(grid, labels, layout: _DiscLayout, centres, order, index_of, names, slot_ribs, k_first: int,
             k_last: int, sp, params: VertebraeParams):
    """plan.json records of the discs and of the labelled vertebrae."""
    sign, j_near, j_pivot, box_centres = layout.sign, layout.j_near, layout.j_pivot, layout.box_centres
    bodies, discs, tilt, score = layout.bodies, layout.discs, layout.tilt, layout.score
    nk, n_b = labels.shape[2], len(bodies)
    disc_records = []
    for d in discs:
        ci, cj = box_centres[d]
        j_disc = cj + sign * (j_near + j_pivot + (0 if sign > 0 else 1))
        disc_records.append({"centre_ras": [round(float(v), 2) for v in grid.ijk_to_ras([[ci, j_disc, d]])[0]],
                             "tilt_deg": float(tilt[d]), "score": round(float(score[d]), 3)})
    vertebrae = []
    for slot in order:
        idx = index_of[slot]
        ribs = sorted("left" if s < 0 else "right" for s in slot_ribs.get(slot, set()))
        body = {}
        if slot < n_b:
            k0, k1, lo, hi = bodies[slot]
            kc = (k0 + k1) / 2.0
            c = grid.ijk_to_ras([[centres[int(round(kc)), 0], centres[int(round(kc)), 1], kc]])[0]
            # RAS S of the body's end points on the working axis (through the canal centre): the
            # extent of the body's labelled bone (endplate to endplate, without the discs)
            e_lo, e_hi = _body_extent(labels, idx, bodies[slot], centres, sign, sp, params)
            ends = [(*centres[min(max(int(round(e)), 0), nk - 1)], e) for e in (e_lo, e_hi)]
            s_lo, s_hi = grid.ijk_to_ras(ends)[:, 2]
            body = {"body_s_range": (s_lo, s_hi), "body_cut": lo < k_first or hi > k_last, "canal_centre_ras": c}
        vertebrae.append(vertebra_record(labels, idx, names[idx], grid, body_in_field_of_view=slot < n_b,
                                         ribs=ribs, **body))
    return disc_records, vertebrae


def segment_vertebrae_ct(ct: Volume, *, params: VertebraeParams | None = None, cord_params: CordParams | None = None,
                         progress: Progress = no_progress) -> VertebraeResult:
    """Bone, vertebrae and level names from a CT.

    Parameters
    ----------
    ct : Volume
        CT in Hounsfield units, any orientation (RAS affine).
    params : VertebraeParams
        Thresholds, the optional user anchor (``anchor_level`` + ``anchor_ras``).
    cord_params : CordParams
        Settings of the bony-canal tracking.
    progress : callable(fraction, message)

    Returns
    -------
    VertebraeResult
        Label map (level indices) and bone mask on ``ct``'s grid with names, or ``found=False``.
    """
    from SpinePlannerLib.segmentation.cord import bony_canal

    params = params or VertebraeParams()
    cord_params = cord_params or CordParams()
    progress(0.0, "working grid")
    grid = working_grid(ct, spacing_mm=params.working_spacing_mm, max_anisotropy=2.5,
                        min_spacing_mm=params.working_spacing_mm * 0.75)
    img = grid.array.astype(np.float32)
    canal, reason = bony_canal(img, grid.spacing, cord_params)
    if canal is None:
        return VertebraeResult(False, f"no spinal canal: {reason}")
    grid, img, canal, fov, axis_info, pre_warnings = _realign_to_spine(ct, grid, img, canal, params, cord_params,
                                                                       progress)
    sp = grid.spacing
    centres = _canal_centres(canal)
    if centres is None:
        return VertebraeResult(False, "the bony canal was found in fewer than two slices")
    progress(0.25, "bone")
    bone, near, spine, ii, jj, k_first, k_last = _spine_bone(img, canal, centres, sp, params)
    if not spine.any():
        return VertebraeResult(False, "no bone around the spinal canal (is this a CT in HU?)",
                               bone=mask_to_grid(bone, grid, ct))

    progress(0.4, "discs")
    layout = _discs_and_bodies(img, spine, centres, fov, k_first, k_last, sp, params)
    sign, bodies, discs, pitch = layout.sign, layout.bodies, layout.discs, layout.pitch
    if not bodies:
        return VertebraeResult(False, "no vertebral body could be delimited between discs",
                               bone=mask_to_grid(bone, grid, ct))

    progress(0.55, "posterior arches")
    post_masks, runs = _posterior_arches(img, canal, spine, centres, sign, ii, jj, k_first, k_last, sp, params)
    # vertebra slots: bodies (inferior to superior); arches claim the body containing their top
    n_b = len(bodies)
    arch_owner = _assign_arches(runs, bodies, k_last, pitch)
    taken = set(arch_owner.values())
    n_slots = max([n_b - 1, *taken]) + 1

    progress(0.7, "labelling")
    ws, slot_ribs = _watershed_slots(img, bone, near, spine, centres, ii, jj, layout, post_masks, arch_owner, n_slots,
                                     k_first, k_last, sp, params)

    # C2: the dens rising from the top body into a C1 ring; C1 split off the C2 label
    c2 = c2_evidence(img, canal, centres, bodies, k_last, sign, sp, params) if params.c2_anchor else None
    if c2 is not None and c2["anchored"]:
        ws, _c1_slot = label_c1(ws, c2, img, canal, sp, params)
        # nothing above C1 is a vertebra: arch runs given to slots above it are the skull base
        above_c1 = ws > c2["slot"] + 2
        if above_c1.any():
            n_above = len(np.unique(ws[above_c1]))
            ws[above_c1] = 0
            pre_warnings.append(f"{n_above} posterior-arch label(s) above C1 (bone of the skull base behind the "
                                "canal) left unlabelled: nothing above C1 is a vertebra")
    present = sorted({int(v) - 1 for v in np.unique(ws) if v > 0})
    if not present:
        return VertebraeResult(False, "no vertebra could be labelled", bone=mask_to_grid(bone, grid, ct))
    # index 1 = most cranial present slot
    order = sorted(present, reverse=True)
    index_of = {slot: i + 1 for i, slot in enumerate(order)}
    labels = np.zeros(img.shape, np.int16)
    for slot, idx in index_of.items():
        labels[ws == slot + 1] = idx

    progress(0.85, "level names")
    sacrum = None
    if params.auto_anchor and params.sacrum_anchor and 0 in index_of:
        sacrum = _sacrum_evidence(bone, centres, bodies, discs, k_first, sp, params)
    body_heights = {b: (k1 - k0 + 1) * sp[2] for b, (k0, k1, lo, hi) in enumerate(bodies)
                    if lo >= k_first and hi <= k_last}
    names, method, anchor, reliable, warnings, consistency = _name_levels(
        labels, grid, order, index_of, slot_ribs, bodies, params, sacrum, c2, body_heights)
    warnings = pre_warnings + warnings
    if method == "sacrum" and discs and (discs[0] - k_first) > 1.5 * pitch:
        warnings.append(f"the sacrum's part within the tracked canal is {(discs[0] - k_first) * sp[2]:.0f} mm tall, "
                        f"more than 1.5 vertebral pitches ({pitch * sp[2]:.0f} mm): the lumbosacral disc may have "
                        "been missed (L5 merged with the sacrum, every level above named one too low); confirm")
    disc_records, vertebrae = _records(grid, labels, layout, centres, order, index_of, names, slot_ribs, k_first,
                                       k_last, sp, params)
    progress(1.0, "vertebrae labelled")
    return VertebraeResult(
        True, f"{len(order)} vertebrae ({len(bodies)} bodies between {len(discs)} discs)",
        labels=labels_to_grid(labels, grid, ct), bone=mask_to_grid(bone, grid, ct), names=names,
        method=method, anchor=anchor, reliable=reliable, vertebrae=vertebrae, warnings=warnings,
        anchor_consistency=consistency, discs=disc_records, working_axis=axis_info)


BODY_EXTENT_FRACTION = 0.5
"""A slice belongs to a body's extent when its count of the body's labelled bone in front of the
canal reaches this fraction of the median count over the body's slices (documented setting)."""


def _body_extent(labels: np.ndarray, idx: int, body, centres: np.ndarray, sign: int, sp,
                 params: VertebraeParams) -> tuple[float, float]:
    """Working-grid slice extent (fractional k, outer voxel edges) of vertebra ``idx``'s body bone.

    ``body`` is the slot ``(k0, k1, lo, hi)``: body slices ``k0..k1`` between the bounding discs
    (or canal ends) ``lo`` and ``hi``. Counted per slice: voxels labelled ``idx`` more than 10 mm
    in front of the canal centre, within ``body_half_width_mm`` left-right and ``body_depth_mm``
    deep; the extent runs over the slices between the discs whose count reaches
    :data:`BODY_EXTENT_FRACTION` of the median over ``k0..k1``. Between disc centres the body
    would include half of each disc (about 2-5 mm too tall at each end); the bone stops at the
    endplates. Falls back to ``(k0 - 0.5, k1 + 0.5)`` when no body bone is labelled.
    """
    k0, k1, lo, hi = body
    ni, nj, nk = labels.shape
    half_i = params.body_half_width_mm / sp[0]
    near, far = 10.0 / sp[1], params.body_depth_mm / sp[1]
    counts = {}
    for k in range(max(lo, 0), min(hi, nk - 1) + 1):
        ci, cj = centres[k]
        i0, i1 = max(0, int(np.floor(ci - half_i))), min(ni, int(np.ceil(ci + half_i)) + 1)
        j0, j1 = (cj + near, cj + far) if sign > 0 else (cj - far, cj - near)
        j0, j1 = max(0, int(np.floor(j0))), min(nj, int(np.ceil(j1)) + 1)
        counts[k] = int(np.count_nonzero(labels[i0:i1, j0:j1, k] == idx)) if i1 > i0 and j1 > j0 else 0
    core = [counts[k] for k in range(k0, k1 + 1) if k in counts]
    ref = float(np.median(core)) if core else 0.0
    on = [k for k, c in counts.items() if ref > 0 and c >= BODY_EXTENT_FRACTION * ref]
    if not on:
        return k0 - 0.5, k1 + 0.5
    return on[0] - 0.5, on[-1] + 0.5


ARCH_DROP_COST, ARCH_MERGE_COST, ARCH_SKIP_COST = 0.5, 0.5, 0.25
"""Costs (in vertebral pitches) of the arch-to-vertebra alignment (:func:`_assign_arches`): an arch
run left unassigned, a second run given to the same vertebra, a body without an arch between
two assigned ones (documented settings)."""


def _assign_arches(runs, bodies, k_last: int, pitch: float) -> dict:
    """Vertebra slot of each posterior-arch run (runs and bodies inferior to superior).

    An arch belongs to the vertebra whose body range (``lo < top <= hi``; the lowest body's range
    is open caudally, the slots above the bodies follow at ``pitch``) contains the run's upper end
    ``top``. The runs are aligned with the slots in order (a dynamic programme): each run costs
    its distance (in pitches) outside its slot's range, a run left out ``ARCH_DROP_COST``, a second
    run in one slot ``ARCH_MERGE_COST``, a body without an arch between two assigned ones
    ``ARCH_SKIP_COST``. One misplaced arch (e.g. the L5 spinous process reaching above the
    L4/L5 disc in a lordotic spine) thus costs less than shifting every arch above it by one.
    """
    n_b, m = len(bodies), len(runs)
    if not m:
        return {}
    pitch = max(float(pitch), 1.0)
    ranges = []
    for b, (_k0, _k1, lo, hi) in enumerate(bodies):
        ranges.append((-np.inf if b == 0 else lo, hi if hi <= k_last else lo + pitch + 1))
    top_hi = ranges[-1][1]
    for s in range(m + 1):
        ranges.append((top_hi + s * pitch, top_hi + (s + 1) * pitch))
    n_s = len(ranges)

    def miss(top, s):
        a, b = ranges[s]
        return 0.0 if a < top <= b else min(abs(top - a), abs(top - b)) / pitch

    # cost[L + 1]: best cost so far with L the highest slot used (-1: none)
    cost = np.full(n_s + 1, np.inf)
    cost[0] = 0.0
    back = []
    for r in runs:
        new = cost + ARCH_DROP_COST  # the run left out
        choice = [("drop", L) for L in range(n_s + 1)]
        for s in range(n_s):
            m_cost = miss(r[1], s)
            for L in range(-1, s + 1):
                if not np.isfinite(cost[L + 1]):
                    continue
                skipped = max(0, min(s, n_b) - max(L + 1, 0)) if L >= 0 else 0
                extra = ARCH_MERGE_COST if L == s else ARCH_SKIP_COST * skipped
                v = cost[L + 1] + m_cost + extra
                if v < new[s + 1] - 1e-12:
                    new[s + 1], choice[s + 1] = v, ("take", L)
        back.append(choice)
        cost = new
    state = int(np.argmin(cost))
    owner = {}
    for r, choice in zip(reversed(runs), reversed(back), strict=True):
        kind, L = choice[state]
        if kind == "take":
            owner[r] = state - 1
            state = L + 1
    return owner


def _sacrum_evidence(bone, centres, bodies, discs, k_first, sp, params: VertebraeParams) -> dict | None:
    """Evidence that the lowest body slot (below the lowest disc, open to the caudal edge of the
    field of view) is the sacrum, or None (see module docstring, step 6)."""
    if not discs or not bodies:
        return None
    k0, k1, lo, hi = bodies[0]
    if hi != discs[0] or lo != k_first - 1:
        return None
    ni, nj = bone.shape[:2]
    ii, jj = np.meshgrid(np.arange(ni), np.arange(nj), indexing="ij")
    # the sacrum curves away from the tracked canal: it continues caudally as long as bone lies
    # near the midline (within body_half_width_mm laterally, spine_radius_mm antero-posteriorly
    # of the canal's last centre) in consecutive slices
    ci, cj = centres[k0]
    midline = (np.abs(ii - ci) * sp[0] <= params.body_half_width_mm) & (np.abs(jj - cj) * sp[1] <= params.spine_radius_mm)
    below = 0
    while k0 - below - 1 >= 0 and (bone[:, :, k0 - below - 1] & midline).any():
        below += 1
    height = (k1 - k0 + 1 + below) * sp[2]
    if height < params.sacrum_min_height_mm:
        return None
    i_lo, i_hi = params.sacrum_iliac_range_mm
    ala_w, iliac = [], []
    for k in range(k0, k1 + 1):
        ci, cj = centres[k]
        lat = (ii - ci) * sp[0]
        b = bone[:, :, k]
        lab, _ = ndimage.label(b)
        # the bone mass fused to the body: components within 30 mm of the canal centre
        d_c = np.hypot(lat, (jj - cj) * sp[1])
        core = np.unique(lab[(d_c <= 30.0) & b])
        fused = np.isin(lab, core[core > 0])
        left = float(-lat[fused & (lat < 0)].min(initial=0.0))
        right = float(lat[fused & (lat > 0)].max(initial=0.0))
        ala_w.append(min(left, right))
        band = b & (np.abs(lat) >= i_lo) & (np.abs(lat) <= i_hi)
        iliac.append(bool((band & (lat < 0)).any() and (band & (lat > 0)).any()))
    ala_w, iliac = np.asarray(ala_w), np.asarray(iliac)
    both = (ala_w >= params.sacrum_ala_half_width_mm) & iliac
    fraction = float(both.mean())
    if fraction < params.sacrum_min_fraction:
        return None
    return {"height_mm": round(float(height), 1), "below_canal_mm": round(float(below * sp[2]), 1),
            "ala_half_width_mm": round(float(np.median(ala_w[both])), 1), "wide_fraction": round(fraction, 2)}


def _last_rib_slot(order, slot_ribs):
    """The last rib-bearing vertebra (slot) with a rib-free one below it, or None."""
    # the cranial-most run of vertebrae bearing ribs on both sides, followed by a rib-free one
    # (bone touching lower vertebrae on both sides, e.g. the iliac wings, is not a rib)
    lowest = None
    for slot in order:  # cranial to caudal
        if slot_ribs.get(slot) == {-1, 1}:
            lowest = slot
        elif lowest is not None:
            break
    if lowest is None or not [slot for slot in order if slot < lowest and slot_ribs.get(slot) != {-1, 1}]:
        return None
    return lowest


def _count_from(n: int, idx: int, level: str) -> dict | None:
    base = LEVEL_NAMES.index(level) - (idx - 1)
    if base >= 0 and base + n <= len(LEVEL_NAMES):
        return {i + 1: LEVEL_NAMES[base + i] for i in range(n)}
    return None


SACRUM_ASSUMPTION = "5 lumbar vertebrae; no lumbosacral transitional vertebra"


def _first_rib_slot(order, slot_ribs):
    """The most cranial vertebra (slot) bearing ribs on both sides, or None."""
    return next((slot for slot in order if slot_ribs.get(slot) == {-1, 1}), None)


C2_EVIDENCE = "dens rising from the most cranial body into a ring without a body (C1)"


def _last_rib_doubt(order, slot_ribs, lowest, body_heights, c2) -> tuple[bool, str] | None:
    """Why the last rib-bearing vertebra ``lowest`` may not be T12: ``(refuse, reason)`` or None.

    * C2 was found (a dens rising from the top body): the scan is cervical; refused.
    * A single rib-free vertebra lies below the last rib-bearing one and its body is not taller
      than the median rib-bearing body (both whole in the field of view): it need not be lumbar
      (e.g. one rib missed in the upper thorax); a warning. Two or more rib-free vertebrae below,
      or a taller body, look lumbar.
    """
    if c2 is not None and c2.get("anchored"):
        return True, ("a dens rising into C1 was seen at the top of the spine (a cervical scan), yet the "
                      "last rib-bearing vertebra would be named T12")
    below = [slot for slot in order if slot < lowest and slot_ribs.get(slot) != {-1, 1}]
    if len(below) >= 2:
        return None
    ribbed = [body_heights[slot] for slot in order if slot_ribs.get(slot) == {-1, 1} and slot in body_heights]
    h = body_heights.get(below[0]) if below else None
    if h is not None and ribbed and h > float(np.median(ribbed)):
        return None
    return False, ("only one rib-free vertebra lies below the last rib-bearing one and its body is not taller "
                   "than the rib-bearing ones (or is cut by the field of view): it need not be lumbar (a rib "
                   "missed in the upper thorax?)")


def _name_levels(labels, grid, order, index_of, slot_ribs, bodies, params: VertebraeParams, sacrum=None,
                 c2=None, body_heights=None):
    """Names by user anchor, else C2, else sacrum, else last rib, else unanchored (see module docstring).

    ``body_heights``: slot -> body height (mm along the working axis) of the bodies whole in the
    field of view (for :func:`_last_rib_doubt`).

    Returns ``(names, method, anchor, reliable, warnings, anchor_consistency)``.
    """
    n = len(order)
    warnings: list[str] = []
    rib_names = rib_idx = None
    rib_doubt = None
    sacrum_names = None
    consistency = None
    if params.auto_anchor:
        lowest = _last_rib_slot(order, slot_ribs)
        if lowest is not None:
            rib_idx = index_of[lowest]
            rib_names = _count_from(n, rib_idx, "T12")
            rib_doubt = _last_rib_doubt(order, slot_ribs, lowest, body_heights or {}, c2)
        if sacrum is not None:
            sacrum_names = _count_from(n, index_of[0], "S1")
        if rib_names is not None and sacrum_names is not None:
            says = sacrum_names[rib_idx]
            consistency = {"sacrum_says": says, "last_rib_says": "T12", "agree": says == "T12"}
            if says != "T12":
                warnings.append(f"the sacrum and the last rib disagree: counted from the sacrum the last "
                                f"rib-bearing vertebra is {says}, not T12 (lumbosacral transitional vertebra "
                                "or 11/13 rib pairs?): confirm the levels on a full-spine image")
    c2_names = c2_idx = None
    if params.auto_anchor and c2 is not None:
        if c2["anchored"] and c2["slot"] in index_of:
            c2_idx = index_of[c2["slot"]]
            c2_names = _count_from(n, c2_idx, "C2")
            if c2_names is None:
                warnings.append(f"C2 found at level index {c2_idx}, but counting from it would name levels "
                                "outside C1..S5: not used as an anchor")
        else:
            warnings.append("a C2-like shape was seen at the top of the spine but does not anchor the "
                            f"levels: {c2['reason']}")
        first = _first_rib_slot(order, slot_ribs) if c2_names is not None else None
        if first is not None:
            says = c2_names[index_of[first]]
            previous = consistency or {}
            consistency = {**previous, "c2_says": says, "first_rib_says": "T1", "c2_agrees": says == "T1",
                           "agree": bool(previous.get("agree", True) and says == "T1")}
            if says != "T1":
                warnings.append(f"C2 and the first rib disagree: counted from C2 the most cranial "
                                f"rib-bearing vertebra is {says}, not T1 (cervical rib, 6/8 cervical "
                                "vertebrae or a missed level?): confirm the levels")
    if params.anchor_level is not None:
        idx = anchor_index(labels, grid, params.anchor_ras)
        if idx == 0:
            warnings.append(f"the anchor point {list(params.anchor_ras)} is not within {ANCHOR_MAX_DISTANCE_MM:g} mm "
                            "of a labelled vertebra; levels left unnamed")
        else:
            names, anchor, problems = names_from_anchor(n, idx, params.anchor_level, params.anchor_ras)
            warnings += problems
            if names is not None:
                return names, "user anchor", anchor, True, warnings, consistency
    if c2_names is not None:
        if not c2["reliable"]:
            warnings.append(f"levels named from C2 without the whole C1 ring ({c2['reason']}): "
                            "confirm the levels")
        anchor = {"level": "C2", "index": int(c2_idx), "evidence": C2_EVIDENCE, **anchor_evidence(c2)}
        return c2_names, "C2", anchor, bool(c2["reliable"]), warnings, consistency
    if sacrum_names is not None:
        warnings.append(f"levels named from the sacrum (the vertebra above it = L5); this assumes {SACRUM_ASSUMPTION}: "
                        "confirm on a full-spine image")
        anchor = {"level": "S1", "index": int(index_of[0]), "evidence": "sacrum below the lowest disc "
                  "(fused, no disc gap, alae and iliac bone on both sides)", "assumption": SACRUM_ASSUMPTION,
                  **sacrum}
        return sacrum_names, "sacrum", anchor, False, warnings, consistency
    if rib_names is not None and rib_doubt is not None and rib_doubt[0]:
        warnings.append(f"the last rib does not name the levels: {rib_doubt[1]}")
        rib_names = None
    if rib_names is not None:
        warnings.append("levels named from the last rib-bearing vertebra (= T12); this assumes 12 rib "
                        "pairs and no lumbosacral transition: confirm on a full-spine image")
        if rib_doubt is not None:
            warnings.append(f"the vertebra named T12 may not be T12: {rib_doubt[1]}; confirm the levels")
        if c2 is not None:
            warnings.append("a C2-like shape or C1-like ring was seen at the top of the spine: if this is a "
                            "cervical scan, the thoracolumbar names from the last rib are wrong; confirm the "
                            "levels")
        past = [name for name in rib_names.values() if name.startswith("S")]
        if past:
            warnings.append(f"counting from the last rib names vertebrae {past[0]}... below L5 although no "
                            "sacrum was found (6 lumbar vertebrae, a missed rib or a missed sacrum?): confirm the levels")
        return rib_names, "last rib", {"level": "T12", "index": rib_idx,
                                       "evidence": "lowest vertebra with ribs on both sides"}, False, warnings, consistency
    warnings.append("vertebral levels are not anchored (no user anchor, no sacrum, no last rib with a rib-free "
                    "vertebra below it): names V1..Vn count from the most cranial vertebra in the field of view")
    return unanchored_names(n), "unanchored", None, False, warnings, consistency
