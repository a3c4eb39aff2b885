"""C2 (the axis) as an automatic level anchor on CT, and C1 (the atlas) as a labelled vertebra (L1).

Seven cervical vertebrae is close to invariant, so where the field of view holds the
craniocervical junction, C2 names the levels with fewer assumptions than the sacrum (5 lumbar
vertebrae) or the last rib (12 rib pairs). Used by :func:`seg_vertebrae.segment_vertebrae_ct`.

Method
------
Everything runs on the RAS-aligned working grid of the vertebra engine (axial slices
``[:, :, k]``, ``k`` increasing superiorly) with the canal centre per slice and the body slots
found between the discs.

1. *Dens*: the most cranial body slot (above the highest disc, open to the top) is followed
   upwards from its lower part along the body's axis (the canal's cranio-caudal trend, kept at
   the body's offset in front of the canal). In each slice the left-right run of bone
   (``img > cancellous_hu``, no closing: the soft tissue between the dens and the C1 lateral
   masses stays open) through the axis is measured. The dens is the run of at least
   ``dens_min_height_mm`` of slices, directly above wider body slices, where that run is at
   most ``dens_width_mm[1]`` wide (median width within ``dens_width_mm``).
2. *C1 ring*, in the dens slices (without a dens: up to 25 mm above the top body, around its
   axis, only to report a ring seen without a dens): bone beyond a soft-tissue gap on both sides of the dens
   within ``c1_lateral_mass_mm`` (lateral masses); in front of the dens, past the atlanto-dental
   joint (a gap in the bone mask or an HU dip of ``c1_gap_contrast_hu``), a bone run at most
   ``c1_arch_max_depth_mm`` thick (the anterior arch: a ring, no body); bone behind the canal
   (posterior arch). The ring is seen when all four are present in at least two slices.
3. *Above*: the bony canal may go on at most ``c2_max_canal_above_mm`` above the dens (the ring,
   then the foramen magnum or the edge of the field of view); further means the column is no
   dens.

The slot is C2 (the anchor) when the dens is found and nothing above contradicts it; the
anchor is reliable only when the C1 ring is seen too. Then the bone of the C2 and posterior-arch
labels above the base of the dens (along the spine's direction), outside the dens column, is C1
(:func:`label_c1`). All widths and distances are documented settings of
:class:`~SpinePlannerLib.segmentation.params.VertebraeParams`, not published cut-offs.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

from SpinePlannerLib.segmentation.params import VertebraeParams


def _bone_run(row: np.ndarray, at: int) -> tuple[int, int] | None:
    """The maximal run ``(start, stop)`` (inclusive) of True in ``row`` containing index ``at``."""
    if not 0 <= at < len(row) or not row[at]:
        return None
    lo = at
    while lo > 0 and row[lo - 1]:
        lo -= 1
    hi = at
    while hi < len(row) - 1 and row[hi + 1]:
        hi += 1
    return lo, hi


def _nearest_true(row: np.ndarray, at: int, reach: int) -> int | None:
    for d in range(reach + 1):
        for p in (at - d, at + d):
            if 0 <= p < len(row) and row[p]:
                return p
    return None


def _anterior_arch(hard_col: np.ndarray, hu_col: np.ndarray, c: int, sign: int, sp_j: float,
                   params: VertebraeParams) -> tuple[bool, float]:
    """In front of the dens centre ``c`` along one antero-posterior column: the atlanto-dental
    joint then a thin bone run (the C1 anterior arch). Returns ``(found, arch thickness mm)``."""
    n = len(hard_col)
    steps = int(round(25.0 / sp_j))
    idx = [c + sign * t for t in range(steps) if 0 <= c + sign * t < n]
    b = hard_col[idx]
    p = hu_col[idx]
    half_max = 0.5 * params.dens_width_mm[1] / sp_j
    # leave the dens: the first non-bone sample, or an HU dip when dens and arch touch
    t = 0
    while t < len(b) and b[t]:
        t += 1
    if t > half_max + 2.0 / sp_j:  # the run goes on past any dens: look for the joint as a dip
        lo_t = max(1, int(np.floor(0.5 * params.dens_width_mm[0] / sp_j)))
        run = p[:t]
        best = None
        for m in range(lo_t, t - 1):
            depth = min(run[:m].max(), run[m + 1:].max()) - run[m]
            if depth >= params.c1_gap_contrast_hu and (best is None or depth > best[1]):
                best = (m, depth)
        if best is None:
            return False, 0.0
        thickness = (t - best[0] - 1) * sp_j
        return thickness <= params.c1_arch_max_depth_mm, thickness
    gap = t
    while t < len(b) and not b[t]:
        t += 1
    if t >= len(b) or (t - gap) * sp_j > 6.0:  # no bone within 6 mm in front of the dens
        return False, 0.0
    start = t
    while t < len(b) and b[t]:
        t += 1
    thickness = (t - start) * sp_j
    return thickness <= params.c1_arch_max_depth_mm, thickness


OUTSIDE_HU = -1000.0
"""Value (HU) of the voxels outside the CT's field of view on the spine-aligned working grid
(:func:`seg_vertebrae._spine_aligned_grid`); the RAS-aligned working grid covers the field of
view exactly and has none."""


def _canal_open_above(img: np.ndarray, centres: np.ndarray, k_last: int, sp) -> bool:
    """Whether the tracked canal runs to the top of the image data: no slice within 5 mm above its
    last slice, or mostly outside-the-scan voxels (exactly ``OUTSIDE_HU``) within 5 mm of the canal
    centre there. At the craniocervical junction the canal ends inside the data (foramen magnum,
    posterior fossa above)."""
    nk = img.shape[2]
    m = max(1, int(round(5.0 / sp[2])))
    if k_last + m > nk - 1:
        return True
    ci, cj = (int(round(v)) for v in centres[k_last])
    r = max(1, int(round(5.0 / sp[0])))
    win = img[max(0, ci - r):ci + r + 1, max(0, cj - r):cj + r + 1, k_last + 1:k_last + m + 1]
    return bool(win.size == 0 or np.mean(win == OUTSIDE_HU) > 0.5)


def _scan_column(hard: np.ndarray, fit, di: float, dj: float, bi: float, k_start: int, k_last: int, sp,
                 params: VertebraeParams):
    """Bone runs along i, slice by slice upwards from the top body, following the narrow column
    (the dens) where it is narrow and the body's axis where it is wide.

    Returns ``(widths, axis)``: slice -> run width (mm), slice -> (i centre, j, half width in voxels).
    """
    nj, nk = hard.shape[1], hard.shape[2]
    w_max = params.dens_width_mm[1]
    widths: dict[int, float] = {}
    axis: dict[int, tuple[float, float, float]] = {}
    i_prev = bi
    k_top_scan = min(nk - 1, k_last + int(round(params.c2_max_canal_above_mm / sp[2])))
    for k in range(k_start, k_top_scan + 1):
        j = int(round(np.polyval(fit[1], k) + dj))
        if not 0 <= j < nj:
            break
        row = hard[:, j, k]
        at = _nearest_true(row, int(round(i_prev)), max(1, int(round(2.0 / sp[0]))))
        if at is None:
            break
        run = _bone_run(row, at)
        w = (run[1] - run[0] + 1) * sp[0]
        widths[k] = w
        mid = 0.5 * (run[0] + run[1])
        axis[k] = (mid, float(j), 0.5 * (run[1] - run[0] + 1))
        if w <= w_max:
            i_prev = mid
        else:
            i_prev = float(np.polyval(fit[0], k) + di)
    return widths, axis


def _dens_slices(widths: dict, w_max: float) -> list[int]:
    """The dens: the narrow run directly above wider (body) slices."""
    ks = sorted(widths)
    dens_ks: list[int] = []
    for n in range(1, len(ks)):
        if widths[ks[n]] <= w_max < widths[ks[n - 1]]:
            m = n
            while m < len(ks) and widths[ks[m]] <= w_max:
                m += 1
            dens_ks = ks[n:m]
            break
    return dens_ks


def _c1_ring(img: np.ndarray, hard: np.ndarray, canal: np.ndarray, centres: np.ndarray, ring_ks, axis: dict,
             widths: dict, fit, di: float, dj: float, k_last: int, sign: int, sp, params: VertebraeParams):
    """Parts of the C1 ring (lateral masses, anterior arch, posterior arch) slice by slice.

    Returns ``(parts, ring_slices, arch_depths)``: slices showing each part, slices showing all
    three, and the anterior arch depth (mm) in those.
    """
    ni, nj = img.shape[:2]
    w_max = params.dens_width_mm[1]
    parts = {"lateral_masses": 0, "anterior_arch": 0, "posterior_arch": 0}
    ring_slices, arch_depths = 0, []
    reach = int(round(params.c1_lateral_mass_mm / sp[0]))
    depth = int(round(params.arch_depth_mm / sp[1]))
    for k in ring_ks:
        if k in axis and widths[k] <= w_max:
            i_c, j_c, _half = axis[k]
        else:
            i_c, j_c = np.polyval(fit[0], k) + di, np.polyval(fit[1], k) + dj
        if not (0 <= round(i_c) < ni and 0 <= round(j_c) < nj):
            continue
        row = hard[:, int(round(j_c)), k]
        run = _bone_run(row, int(round(i_c))) or (int(round(i_c)), int(round(i_c)))
        left = row[max(0, run[0] - reach):run[0]]
        right = row[run[1] + 1:run[1] + 1 + reach]
        lateral = bool(left.any() and right.any())
        col_b = hard[int(round(i_c)), :, k]
        col_hu = img[int(round(i_c)), :, k]
        arch, thick = _anterior_arch(col_b, col_hu, int(round(j_c)), sign, sp[1], params)
        # posterior arch: bone behind the canal on the canal centre's column
        post = False
        if k <= k_last and canal[:, :, k].any():
            ci_k = int(round(centres[k, 0]))
            on_col = canal[ci_k, :, k]
            rows = np.flatnonzero(on_col) if on_col.any() else np.argwhere(canal[:, :, k])[:, 1]
            edge = rows.min() if sign > 0 else rows.max()
            a, b = (edge - depth, edge) if sign > 0 else (edge + 1, edge + depth + 1)
            band = slice(max(0, ci_k - 2), min(ni, ci_k + 3))
            post = bool(hard[band, max(0, a):min(nj, b), k].any())
        parts["lateral_masses"] += lateral
        parts["anterior_arch"] += arch
        parts["posterior_arch"] += post
        if lateral and arch and post:
            ring_slices += 1
            arch_depths.append(thick)
    return parts, ring_slices, arch_depths


def c2_evidence(img: np.ndarray, canal: np.ndarray, centres: np.ndarray, bodies: list, k_last: int, sign: int,
                spacing, params: VertebraeParams) -> dict | None:
    """Whether the most cranial body slot is C2 (see module docstring).

    Parameters
    ----------
    img : array (i, j, k)
        CT (HU) on the RAS-aligned working grid.
    canal : bool array (i, j, k)
        Bony canal on the same grid.
    centres : array (nk, 2)
        Canal centre ``(i, j)`` per slice (voxels).
    bodies : list of (k0, k1, lo, hi)
        Body slots, inferior to superior (slices; ``lo``/``hi`` the bounding discs or the
        tracked canal's ends).
    k_last : int
        Most cranial slice of the tracked canal.
    sign : int
        +1 when the bodies lie towards +j (anterior) of the canal, -1 otherwise.
    spacing : (3,) float
        Working grid spacing (mm).
    params : VertebraeParams

    Returns
    -------
    dict or None
        None when nothing C2-like is seen (no narrow column above the top body and no C1-like
        ring). Otherwise: ``anchored`` (the slot is C2), ``reliable`` (the dens and the C1 ring
        are both seen), ``reason``, ``slot`` (index into ``bodies``) and the evidence
        (:data:`PUBLIC_KEYS`, JSON-ready: ``dens_height_mm``, ``dens_width_mm``, ``c1_ring``, the
        number of slices showing each part of the ring, ``canal_above_dens_mm``...); plus, for
        :func:`label_c1`, ``dens_base_k``, ``dens_axis`` (slice -> (i, j, half width in voxels))
        and ``spine_direction`` (unit vector in the working grid's mm frame).
    """
    if not bodies:
        return None
    sp = np.asarray(spacing, float)
    ni, nj, nk = img.shape
    hard = img > params.cancellous_hu
    slot = len(bodies) - 1
    k0, k1, _lo, _hi = bodies[slot]
    # the body's axis: the canal's cranio-caudal trend below and through the body (canal centres
    # at the dens level are disturbed by the soft tissue around the dens), at the body's offset
    k_fit0 = max(0, k0 - int(round(30.0 / sp[2])))
    k_start = min(k0 + max(1, int(round(3.0 / sp[2]))), nk - 1)
    kk = np.arange(k_fit0, k_start + 1)
    fit = [np.polyfit(kk, centres[kk, d], 1) if len(kk) >= 2 else np.array([0.0, centres[k_start, d]])
           for d in range(2)]
    direction = np.array([fit[0][0] * sp[0], fit[1][0] * sp[1], sp[2]])
    direction /= np.linalg.norm(direction)
    # body centroid in front of the canal at the start slice
    ci, cj = centres[k_start]
    ii, jj = np.meshgrid(np.arange(ni), np.arange(nj), indexing="ij")
    off = (jj - cj) * sp[1] * sign
    front = hard[:, :, k_start] & (np.abs(ii - ci) * sp[0] <= 10.0) & (off > 3.0) & (off < 35.0)
    if front.sum() < 5:
        return None
    bi, bj = np.argwhere(front).mean(axis=0)
    dj = bj - np.polyval(fit[1], k_start)
    di = bi - np.polyval(fit[0], k_start)

    w_max, w_min = params.dens_width_mm[1], params.dens_width_mm[0]
    widths, axis = _scan_column(hard, fit, di, dj, bi, k_start, k_last, sp, params)
    ks = sorted(widths)
    dens_ks = _dens_slices(widths, w_max)
    height = len(dens_ks) * sp[2]
    dens_w = float(np.median([widths[k] for k in dens_ks])) if dens_ks else 0.0
    dens_found = bool(height >= params.dens_min_height_mm and w_min <= dens_w <= w_max)

    # the C1 ring in the dens slices (without a dens: in the slices above the top body's column,
    # around its axis, so that a ring seen without a dens is reported)
    if dens_ks:
        ring_ks = list(dens_ks)
    else:
        first = (ks[-1] + 1) if ks else k_start
        ring_ks = list(range(first, min(k_last, first + int(round(25.0 / sp[2]))) + 1))
    parts, ring_slices, arch_depths = _c1_ring(img, hard, canal, centres, ring_ks, axis, widths, fit, di, dj, k_last,
                                               sign, sp, params)
    ring = ring_slices >= 2
    if not dens_ks and (not ring or _canal_open_above(img, centres, k_last, sp)):
        # a ring without a dens is only worth reporting below the foramen magnum: where the canal
        # runs on to the edge of the data, the top arch is the next vertebra's, cut by the field
        # of view (as on a thoracolumbar scan)
        return None
    dens_top = dens_ks[-1] if dens_ks else k1
    canal_above = max(0.0, (k_last - dens_top) * sp[2])
    reasons = []
    if not dens_ks:
        reasons.append("no dens: no narrow column rises from the most cranial body"
                       + (" although a ring without a body (C1-like) lies above it" if ring else ""))
    elif not dens_found:
        reasons.append(f"no dens: the narrow column above the most cranial body runs {height:.1f} mm "
                       f"(at least {params.dens_min_height_mm:g} mm needed) and is {dens_w:.1f} mm wide "
                       f"({w_min:g}-{w_max:g} mm needed)")
    if canal_above > params.c2_max_canal_above_mm:
        reasons.append(f"the bony canal goes on {canal_above:.0f} mm above the column "
                       f"(> {params.c2_max_canal_above_mm:g} mm): not the craniocervical junction")
    anchored = dens_found and canal_above <= params.c2_max_canal_above_mm
    if anchored and not ring:
        reasons.append("the dens is seen but not the whole C1 ring around it (anterior arch past the "
                       "atlanto-dental joint, both lateral masses, posterior arch)")
    return {
        "anchored": bool(anchored), "reliable": bool(anchored and ring),
        "reason": "; ".join(reasons) if reasons else "dens rising from the top body into a C1 ring",
        "slot": int(slot),
        "dens_height_mm": round(float(height), 1), "dens_width_mm": round(dens_w, 1),
        "c1_ring": bool(ring), "c1_ring_slices": int(ring_slices),
        "c1_parts_slices": {key: int(v) for key, v in parts.items()},
        "c1_anterior_arch_depth_mm": round(float(np.median(arch_depths)), 1) if arch_depths else None,
        "canal_above_dens_mm": round(float(canal_above), 1),
        "dens_base_k": int(dens_ks[0]) if dens_ks else None,
        "dens_axis": {int(k): tuple(float(v) for v in axis[k]) for k in dens_ks},
        "spine_direction": [float(v) for v in direction],
    }


PUBLIC_KEYS = ("dens_height_mm", "dens_width_mm", "c1_ring", "c1_ring_slices", "c1_parts_slices",
               "c1_anterior_arch_depth_mm", "canal_above_dens_mm")


def anchor_evidence(evidence: dict) -> dict:
    """The JSON part of :func:`c2_evidence`'s result that goes into ``plan["vertebrae"]["anchor"]``."""
    return {key: evidence[key] for key in PUBLIC_KEYS if key in evidence}


def label_c1(ws: np.ndarray, evidence: dict, img: np.ndarray, canal: np.ndarray, spacing,
             params: VertebraeParams, *, margin_mm: float = 1.0, seed_gap_mm: float = 3.0,
             reach_mm: float = 15.0, min_piece: float = 0.1) -> tuple[np.ndarray, int | None]:
    """Split C1 off the C2 label.

    ``ws`` holds ``slot + 1`` per voxel (0 elsewhere). Heights are measured along the spine's
    direction (``evidence["spine_direction"]``) from the base of the dens. Among the voxels of
    the C2 slot and of the slot just above it (an arch-only slot: the C1 posterior arch) higher
    than ``-reach_mm``, the C1 seed is what lies at least ``seed_gap_mm`` above the base and more
    than ``margin_mm`` outside the dens column (connected pieces of at least ``min_piece`` of the
    largest: the anterior ring, the posterior arch); the C2 seed is the body at least
    ``seed_gap_mm`` below the base plus the dens column. A watershed on the negative distance
    transform of those voxels splits them at the narrow necks (the atlanto-axial joints).
    Soft tissue (``img <= cancellous_hu``) connected in its slice to the canal is not bone (the
    ligaments around the dens, enclosed by the C1 ring and filled as bone): it is unlabelled.
    Returns ``(ws, C1 slot or None)``; C1 is slot ``C2 + 1``.
    """
    if not evidence.get("c1_ring") or evidence.get("dens_base_k") is None:
        return ws, None
    sp = np.asarray(spacing, float)
    s2 = int(evidence["slot"])
    c1 = s2 + 1
    k_base = int(evidence["dens_base_k"])
    axis = evidence["dens_axis"]
    k_axis = np.array(sorted(axis))
    centre = np.array([axis[k][:2] for k in k_axis])
    half = np.array([axis[k][2] for k in k_axis])
    t = np.asarray(evidence["spine_direction"], float)
    base = np.array([*axis[k_base][:2], k_base], float)
    domain = (ws == s2 + 1) | (ws == c1 + 1)
    pts = np.argwhere(domain)
    h = ((pts - base) * sp) @ t
    near = h >= -reach_mm
    pts, h = pts[near], h[near]
    if not len(pts):
        return ws, None
    # in-plane distance to the dens axis of the voxel's slice (nearest dens slice outside it)
    row = np.clip(np.searchsorted(k_axis, pts[:, 2]), 0, len(k_axis) - 1)
    d = np.hypot((pts[:, 0] - centre[row, 0]) * sp[0], (pts[:, 1] - centre[row, 1]) * sp[1])
    in_dens = (pts[:, 2] >= k_axis[0]) & (pts[:, 2] <= k_axis[-1]) & (d <= half[row] * sp[0])
    out_dens = ~((pts[:, 2] <= k_axis[-1]) & (d <= half[row] * sp[0] + margin_mm))
    c1_pts = pts[(h >= seed_gap_mm) & out_dens]
    c2_pts = pts[(h <= -seed_gap_mm) | in_dens]
    sub = np.zeros(ws.shape, bool)
    sub[tuple(pts.T)] = True
    c1_seed = np.zeros(ws.shape, bool)
    c1_seed[tuple(c1_pts.T)] = True
    lab, n = ndimage.label(c1_seed, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return ws, None
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    c1_seed = np.isin(lab, np.flatnonzero(sizes >= max(1.0, min_piece * sizes.max())))
    markers = np.zeros(ws.shape, np.int32)
    markers[tuple(c2_pts.T)] = 1
    markers[c1_seed] = 2
    split = watershed(-ndimage.distance_transform_edt(sub, sampling=sp), markers, mask=sub)
    out = ws.copy()
    out[split == 2] = c1 + 1
    out[(split == 1) & (out == c1 + 1)] = s2 + 1
    for k in range(max(0, k_axis[0] - 1), ws.shape[2]):
        both = (out[:, :, k] == s2 + 1) | (out[:, :, k] == c1 + 1)
        if not both.any() or not canal[:, :, k].any():
            continue
        soft, _n = ndimage.label((img[:, :, k] <= params.cancellous_hu) | canal[:, :, k])
        touching = np.unique(soft[canal[:, :, k]])
        out[:, :, k][both & np.isin(soft, touching[touching > 0])] = 0
    return out, c1
