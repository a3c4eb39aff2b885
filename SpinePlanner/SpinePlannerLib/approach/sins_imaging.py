"""SINS elements measured on the images: location, bone lesion, collapse, alignment and
posterolateral involvement (L1: masks and CT in, :class:`~.sins.SinsElement` out).

Frames: every mask is read as RAS points (mm). Each level gets a local frame from its canal centre
``c`` (RAS): ``w`` the spinal axis (superior), ``ap`` the unit direction from ``c`` to the vertebra's
centroid made perpendicular to ``w`` (anterior), ``lr = ap x w`` (patient right). A point ``x``
has coordinates ``(lr, ap, s) = ((x-c).lr, (x-c).ap, (x-c).w)``. The body is the part of the level
(vertebra label united with the tumor inside the level's cranio-caudal range) farther than
``canal_radius_mm`` in front of ``c``; the posterolateral zone (pedicles, facets, costovertebral
joints) is the band lateral to the canal between ``zone_back_mm`` behind and ``zone_front_mm`` in
front of ``c``. Cut-offs: :mod:`.params` (settings, shown in the plan).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from SpinePlannerLib.approach.params import ApproachParams
from SpinePlannerLib.approach.sins import (
    ALIGNMENT_POINTS,
    COLLAPSE_POINTS,
    LESION_POINTS,
    POSTEROLATERAL_POINTS,
    SinsElement,
    undecided,
)
from SpinePlannerLib.core.geometry import resample
from SpinePlannerLib.core.volume import Volume

BODY_HALF_WIDTH_MM = 30.0
"""Body points lie within this distance of the midline (keeps ribs and transverse processes out)."""
MIDLINE_MM = 8.0
"""Body axes and endplate corners come from the midline strip of this half width (no pedicles,
whose articular processes rise above the endplates)."""


@dataclass
class Level:
    """One labelled vertebra: its label value, name, RAS points (mm) and local frame."""

    index: int
    name: str
    points: np.ndarray
    cut: bool
    canal_ras: np.ndarray | None
    centroid: np.ndarray
    involved_ml: float = 0.0
    voxel_mm3: float = 1.0
    tumor_points: np.ndarray | None = None
    tumor_in_label: int = 0
    """Tumor voxels inside this level's own label."""
    tumor_all: np.ndarray | None = None
    """RAS points of every tumor voxel on the vertebra grid (shared)."""
    bone_points: np.ndarray | None = None
    """RAS points of the label without the tumor (the bone that still holds its shape)."""
    """RAS points of the tumor voxels on the vertebra grid that are not this level's label (shared)."""

    def frame(self, axis: np.ndarray):
        """``(origin, lr, ap, w)`` unit vectors in RAS, or None without a canal centre."""
        if self.canal_ras is None:
            return None
        w = axis / np.linalg.norm(axis)
        d = self.centroid - self.canal_ras
        ap = d - w * np.dot(d, w)
        if np.linalg.norm(ap) < 1e-6:
            return None
        ap /= np.linalg.norm(ap)
        return self.canal_ras, np.cross(ap, w), ap, w

    def local(self, pts: np.ndarray, axis: np.ndarray) -> np.ndarray | None:
        f = self.frame(axis)
        if f is None:
            return None
        o, lr, ap, w = f
        q = pts - o
        return np.stack([q @ lr, q @ ap, q @ w], axis=1)


def levels_from_labels(vertebrae: Volume, names: dict[int, str], tumor: Volume, *,
                       canal_centres: dict[int, list] | None = None, margin_mm: float = 2.0,
                       cut_levels: set[int] | None = None) -> list[Level]:
    """Levels of a vertebra label map (cranial first) with the tumor volume (mL) within
    ``margin_mm`` of each vertebra (``involved_ml``). ``cut_levels``: levels whose body the field
    of view cuts (from the segmentation); without it, a level touching the first or last slice
    along the grid axis closest to the spine is cut."""
    lab = np.asarray(vertebrae.array)
    t_on = resample(tumor.with_array((tumor.array > 0).astype(np.float32)), vertebrae.affine, lab.shape, order=0) > 0.5
    spacing = np.linalg.norm(vertebrae.affine[:3, :3], axis=0)
    vox_ml = abs(np.linalg.det(vertebrae.affine[:3, :3])) / 1000.0
    out = []
    tumor_all = vertebrae.ijk_to_ras(np.argwhere(t_on))
    for idx in sorted(int(v) for v in np.unique(lab) if v > 0):
        m = lab == idx
        ijk = np.argwhere(m)
        if cut_levels is not None:
            cut = idx in cut_levels
        else:
            ax = int(np.argmax(np.abs(vertebrae.affine[2, :3]) / spacing))
            cut = bool(ijk[:, ax].min() == 0 or ijk[:, ax].max() == lab.shape[ax] - 1)
        near = ndimage.distance_transform_edt(~m, sampling=spacing) <= margin_mm if t_on.any() else m
        pts = vertebrae.ijk_to_ras(ijk)
        canal = (canal_centres or {}).get(idx)
        out.append(Level(idx, names.get(idx, f"V{idx}"), pts, cut,
                         None if canal is None else np.asarray(canal, float), pts.mean(axis=0),
                         float((near & t_on).sum() * vox_ml), vox_ml * 1000.0,
                         vertebrae.ijk_to_ras(np.argwhere(t_on & ~m)), int((t_on & m).sum()), tumor_all,
                         vertebrae.ijk_to_ras(np.argwhere(m & ~t_on))))
    out.sort(key=lambda lv: -lv.centroid[2])
    return out


def _mask_from_points(points: np.ndarray, grid: Volume) -> np.ndarray:
    """Boolean mask on ``grid`` of RAS points that are voxel centres of that grid."""
    out = np.zeros(grid.shape3, bool)
    if points is not None and len(points):
        out[tuple(np.rint(grid.ras_to_ijk(points)).astype(int).T)] = True
    return out


def _involved(levels: list[Level], min_ml: float = 0.05) -> list[Level]:
    return [lv for lv in levels if lv.involved_ml >= min_ml]


# -- bone lesion -----------------------------------------------------------------------------------
def bone_lesion_element(ct: Volume | None, vertebrae: Volume, levels: list[Level],
                        params: ApproachParams) -> SinsElement:
    """Lytic / mixed / blastic from the lesion's CT density against neighbouring normal bone."""
    p = params.bone_quality
    inv = _involved(levels)
    if ct is None:
        return undecided("bone_lesion", "needs CT (bone density); MRI cannot grade lytic vs blastic", source="imaging")
    if not inv:
        return undecided("bone_lesion", "the tumor does not involve a labelled vertebra", source="imaging")
    lab = np.asarray(vertebrae.array)
    hu = resample(ct, vertebrae.affine, lab.shape, order=1, cval=-1000.0)
    t_on = _mask_from_points(inv[0].tumor_all, vertebrae)  # the tumor as levels_from_labels put it on this grid
    spacing = np.linalg.norm(vertebrae.affine[:3, :3], axis=0)
    inv_mask = np.isin(lab, [lv.index for lv in inv])
    lesion = t_on & (ndimage.distance_transform_edt(~inv_mask, sampling=spacing) <= p.bone_margin_mm)
    inv_idx = {lv.index for lv in inv}
    order = [lv.index for lv in levels]
    neighbours = {order[i + d] for i, k in enumerate(order) if k in inv_idx for d in (-2, -1, 1, 2)
                  if 0 <= i + d < len(order)} - inv_idx
    normal = ndimage.binary_erosion(np.isin(lab, list(neighbours))) & ~t_on
    if lesion.sum() < 10 or normal.sum() < 50:
        return undecided("bone_lesion", "too few lesion or normal-bone voxels on CT to compare",
                         source="imaging", evidence={"lesion_voxels": int(lesion.sum()), "normal_voxels": int(normal.sum())})
    ref = float(np.median(hu[normal]))
    vals = hu[lesion]
    lytic_below = p.soft_tissue_hu + (1.0 - p.lytic_loss_fraction) * (ref - p.soft_tissue_hu)
    f_lytic = float(np.mean(vals < lytic_below))
    f_blastic = float(np.mean(vals > ref + p.blastic_rise_hu))
    evidence = {"lesion_median_hu": round(float(np.median(vals)), 1), "normal_bone_median_hu": round(ref, 1),
                "lytic_below_hu": round(lytic_below, 1), "blastic_above_hu": round(ref + p.blastic_rise_hu, 1),
                "lytic_fraction": round(f_lytic, 3), "blastic_fraction": round(f_blastic, 3),
                "normal_levels": [lv.name for lv in levels if lv.index in neighbours]}
    if f_lytic >= p.dominant_fraction:
        finding = "lytic"
    elif f_blastic >= p.dominant_fraction:
        finding = "blastic"
    elif f_lytic >= p.minor_fraction or f_blastic >= p.minor_fraction:
        finding = "mixed"
    else:
        return undecided("bone_lesion", "the lesion's CT density does not differ from the neighbouring bone "
                         "(infiltration without lysis or sclerosis?): grade it on the images", source="imaging",
                         evidence=evidence)
    conf = "high" if max(f_lytic, f_blastic) >= p.dominant_fraction else "moderate"
    return SinsElement(
        "bone_lesion", LESION_POINTS[finding], finding, conf,
        evidence=evidence,
        rule=(f"voxels that lost >= {p.lytic_loss_fraction:g} of the normal bone's density above {p.soft_tissue_hu:g} HU lytic, > normal + {p.blastic_rise_hu:g} HU blastic; "
              f"lytic/blastic when >= {p.dominant_fraction:g} of the lesion, mixed when both >= {p.minor_fraction:g} "
              "(settings, not published cut-offs)"))


# -- collapse --------------------------------------------------------------------------------------
def _body_points(lv: Level, axis, canal_radius_mm: float, *, with_tumor: bool) -> tuple[np.ndarray, int] | None:
    """Local (lr, ap, s) points of the body: the level's label in front of the canal plus, for an
    involved level, the tumor voxels (same grid) inside the body's envelope; and how many of the
    returned points are tumor voxels outside the label."""
    loc = lv.local(lv.points, axis)
    if loc is None:
        return None
    body = loc[loc[:, 1] > canal_radius_mm]
    if len(body) == 0 or not with_tumor or lv.tumor_points is None or len(lv.tumor_points) == 0:
        return body, 0
    t = lv.local(lv.tumor_points, axis)
    s_lo, s_hi = body[:, 2].min(), body[:, 2].max()
    half_w = np.percentile(np.abs(body[:, 0]), 95)
    ap_hi = np.percentile(body[:, 1], 99)
    keep = (t[:, 1] > canal_radius_mm) & (t[:, 1] <= ap_hi) & (np.abs(t[:, 0]) <= half_w) & \
        (t[:, 2] >= s_lo) & (t[:, 2] <= s_hi)
    return np.concatenate([body, t[keep]]), int(keep.sum())


def body_heights_mm(body: np.ndarray, *, column_mm: float = 2.0, midline_mm: float = 8.0) -> dict[str, float]:
    """Anterior, middle and posterior body heights (mm): the median cranio-caudal extent of 2 mm
    columns within ``midline_mm`` of the midline, in each third of the body's depth."""
    mid = body[np.abs(body[:, 0]) <= midline_mm]
    if len(mid) < 10:
        return {}
    ap_lo, ap_hi = mid[:, 1].min(), mid[:, 1].max()
    out = {}
    for i, name in enumerate(("posterior", "middle", "anterior")):
        lo = ap_lo + (ap_hi - ap_lo) * i / 3
        band = mid[(mid[:, 1] >= lo) & (mid[:, 1] <= lo + (ap_hi - ap_lo) / 3)]
        if len(band) == 0:
            continue
        cols = np.floor(band[:, :2] / column_mm).astype(int)
        _, inv = np.unique(cols, axis=0, return_inverse=True)
        inv = inv.ravel()
        top = np.full(inv.max() + 1, -np.inf)
        bot = np.full(inv.max() + 1, np.inf)
        np.maximum.at(top, inv, band[:, 2])
        np.minimum.at(bot, inv, band[:, 2])
        out[name] = float(np.median(top - bot))
    return out


def collapse_element(levels: list[Level], axis, params: ApproachParams) -> SinsElement:
    """Body collapse of the involved levels against the mean heights of their uninvolved neighbours;
    without collapse, the share of the body the tumor takes (label voxels it overlaps plus tumor
    voxels inside the body's envelope)."""
    p = params.collapse
    inv = _involved(levels)
    if not inv:
        return undecided("collapse", "the tumor does not involve a labelled vertebra", source="imaging")
    heights, fractions = {}, {}
    inv_names = {lv.name for lv in inv}
    for lv in levels:
        got = _body_points(lv, axis, p.canal_radius_mm, with_tumor=lv.name in inv_names)
        if got is None or lv.cut:
            continue
        body, n_tumor = got
        heights[lv.name] = body_heights_mm(body)
        if lv.name in inv_names and len(body):
            fractions[lv.name] = float(min(1.0, (n_tumor + lv.tumor_in_label) / len(body)))
    names = [lv.name for lv in levels]
    worst = None
    for lv in inv:
        if lv.name not in heights or not heights[lv.name]:
            continue
        i = names.index(lv.name)
        refs = [heights[n] for n in (names[i - 1] if i > 0 else None, names[i + 1] if i + 1 < len(names) else None)
                if n in heights and heights[n] and n not in inv_names]
        if not refs:
            continue
        losses = {part: 1.0 - h / np.mean([r[part] for r in refs if part in r])
                  for part, h in heights[lv.name].items() if any(part in r for r in refs)}
        loss = max(losses.values()) if losses else None
        if loss is not None and (worst is None or loss > worst[1]):
            worst = (lv.name, loss, losses)
    if worst is None:
        return undecided("collapse", "no involved body with a measurable uninvolved neighbour (cut by the field "
                         "of view, or no canal centre)", source="imaging", evidence={"heights_mm": heights})
    name, loss, losses = worst
    frac = fractions.get(name, 0.0)
    if loss >= 0.5:
        finding = ">= 50 % collapse"
    elif loss >= p.collapse_min_fraction:
        finding = "< 50 % collapse"
    elif frac > p.involved_body_fraction:
        finding = "no collapse, > 50 % of the body involved"
    else:
        finding = "none"
    return SinsElement(
        "collapse", COLLAPSE_POINTS[finding], finding, "moderate",
        evidence={"level": name, "height_loss_fraction": round(loss, 3),
                  "height_loss_by_part": {k: round(v, 3) for k, v in losses.items()},
                  "heights_mm": {k: {p_: round(h, 1) for p_, h in v.items()} for k, v in heights.items()},
                  "body_fraction_involved": round(frac, 3)},
        rule=(f"height loss = 1 - height / mean height of the uninvolved adjacent bodies (anterior, middle, posterior "
              f"thirds; worst); collapse from {p.collapse_min_fraction:g} (setting), >= 0.5 and > 50 % body "
              "involvement as published"))


# -- alignment -------------------------------------------------------------------------------------
def _body_axis(lv: Level, axis, canal_radius_mm: float) -> np.ndarray | None:
    """Unit cranio-caudal axis of a body (RAS, superior): the line through the centroids of its
    1 mm cross-sections over the middle 60 % of its height, re-cut perpendicular to the line found
    (three passes: cross-sections of a tilted body cut perpendicular to the wrong axis are partial)."""
    v = np.asarray(axis, float)
    for _ in range(3):
        pts = _body_only(lv, v, canal_radius_mm, MIDLINE_MM)  # the body/arch split turns with the body
        if pts is None:
            return None
        s = pts @ v
        lo, hi = np.percentile(s, [20, 80])
        bins = np.floor(s).astype(int)
        keep = np.unique(bins[(s >= lo) & (s <= hi)])
        if len(keep) < 4:
            return None
        cents = np.array([pts[bins == b].mean(axis=0) for b in keep])
        _, _, vt = np.linalg.svd(cents - cents.mean(axis=0), full_matrices=False)
        v = vt[0] if np.dot(vt[0], axis) >= 0 else -vt[0]
    return v


def _body_only(lv: Level, axis, canal_radius_mm: float, half_width_mm: float = BODY_HALF_WIDTH_MM) -> np.ndarray | None:
    """RAS points of the body's remaining bone (in front of the canal, tumor voxels left out so a
    lesion inside the label does not move the walls), or all its bone without a canal centre."""
    pts = lv.bone_points if lv.bone_points is not None and len(lv.bone_points) >= 20 else lv.points
    loc = lv.local(pts, axis)
    if loc is not None:
        pts = pts[(loc[:, 1] > canal_radius_mm) & (np.abs(loc[:, 0]) <= half_width_mm)]
    return pts if len(pts) >= 20 else None


def _angles_deg(v: np.ndarray) -> tuple[float, float]:
    """Sagittal (towards anterior) and coronal (towards right) tilt of a superior-pointing axis."""
    return float(np.degrees(np.arctan2(v[1], v[2]))), float(np.degrees(np.arctan2(v[0], v[2])))


def _chord_offset_mm(above: Level, mid: Level, below: Level) -> float | None:
    """Distance (mm) of ``mid``'s canal centre from the line through its neighbours' canal centres.

    The canal follows a slip or subluxation of a vertebra fully, while a smooth curve or an
    angulation about the disc moves it little (a 20 deg kyphosis about the anterior body edge:
    about 3 mm at a 30 mm pitch)."""
    if above.canal_ras is None or mid.canal_ras is None or below.canal_ras is None:
        return None
    line = below.canal_ras - above.canal_ras
    n = np.linalg.norm(line)
    if n < 1e-6:
        return None
    d = mid.canal_ras - above.canal_ras
    return float(np.linalg.norm(d - line / n * np.dot(d, line / n)))


def alignment_element(levels: list[Level], axis, params: ApproachParams) -> SinsElement:
    """Translation of the involved levels (canal centre off the line of the neighbours' canal
    centres), and the kyphosis / coronal angle across the lesion (between the bodies above and
    below) against that of the adjacent normal segments."""
    p, cr = params.alignment, params.collapse.canal_radius_mm
    inv = _involved(levels)
    names = [lv.name for lv in levels]
    usable = [lv for lv in levels if not lv.cut]
    if not inv:
        return undecided("alignment", "the tumor does not involve a labelled vertebra", source="imaging")
    first, last = names.index(inv[0].name), names.index(inv[-1].name)
    above = next((lv for lv in reversed(levels[:first]) if not lv.cut), None)
    below = next((lv for lv in levels[last + 1:] if not lv.cut), None)
    if above is None or below is None:
        return undecided("alignment", "needs an uncut vertebra above and below the involved levels",
                         source="imaging", evidence={"levels": names})
    offsets = {}
    for lv in inv:
        d = _chord_offset_mm(above, lv, below)
        if d is not None:
            offsets[lv.name] = round(d, 2)
    trans = max(offsets.values()) if offsets else 0.0
    axes = {lv.name: _body_axis(lv, axis, cr) for lv in usable}
    if axes.get(above.name) is None or axes.get(below.name) is None:
        return undecided("alignment", "body axes not measurable", source="imaging")
    sag_a, cor_a = _angles_deg(axes[above.name])
    sag_b, cor_b = _angles_deg(axes[below.name])
    kyph = sag_a - sag_b
    coronal = cor_a - cor_b
    n_seg = names.index(below.name) - names.index(above.name)
    inv_names = {lv.name for lv in inv}
    normal_pairs = [(a, b) for a, b in zip(usable, usable[1:], strict=False)
                    if a.name not in inv_names and b.name not in inv_names
                    and axes.get(a.name) is not None and axes.get(b.name) is not None]
    per_seg = (np.mean([_angles_deg(axes[a.name])[0] - _angles_deg(axes[b.name])[0] for a, b in normal_pairs])
               if normal_pairs else 0.0)
    excess = kyph - per_seg * n_seg
    evidence = {"translation_mm": offsets, "kyphosis_across_lesion_deg": round(kyph, 1),
                "expected_kyphosis_deg": round(float(per_seg * n_seg), 1), "kyphosis_excess_deg": round(float(excess), 1),
                "coronal_angle_deg": round(coronal, 1), "levels_compared": [above.name, below.name],
                "normal_segments_used": len(normal_pairs)}
    if trans >= p.translation_mm:
        finding = "subluxation/translation"
    elif excess >= p.kyphosis_excess_deg or abs(coronal) >= p.scoliosis_deg:
        finding = "de novo deformity"
    else:
        finding = "normal"
    return SinsElement(
        "alignment", ALIGNMENT_POINTS[finding], finding, "moderate" if normal_pairs else "low", evidence=evidence,
        rule=(f"translation: canal centre >= {p.translation_mm:g} mm off the line of the neighbours' canal centres; kyphosis exceeding the adjacent "
              f"segments' by >= {p.kyphosis_excess_deg:g} deg or coronal angle >= {p.scoliosis_deg:g} deg (settings); "
              "one image cannot tell a new deformity from an old one: compare with earlier imaging"))


# -- posterolateral --------------------------------------------------------------------------------
def posterolateral_element(levels: list[Level], axis, params: ApproachParams) -> SinsElement:
    """Tumor in each side's posterolateral zone (pedicle, facet, costovertebral joint) of the
    involved levels."""
    p = params.posterolateral
    inv = _involved(levels)
    if not inv:
        return undecided("posterolateral", "the tumor does not involve a labelled vertebra", source="imaging")
    sides = {"left": 0.0, "right": 0.0}
    per_level = {}
    measured = False
    for lv in inv:
        pts = lv.tumor_all if lv.tumor_all is not None else np.zeros((0, 3))
        loc_v = lv.local(lv.points, axis)
        if loc_v is None:
            continue
        measured = True
        t = lv.local(pts, axis) if len(pts) else np.zeros((0, 3))
        s_lo, s_hi = loc_v[:, 2].min(), loc_v[:, 2].max()
        zone = ((t[:, 1] >= -p.zone_back_mm) & (t[:, 1] <= p.zone_front_mm) & (np.abs(t[:, 0]) >= p.canal_half_width_mm)
                & (np.abs(t[:, 0]) <= p.zone_lateral_mm) & (t[:, 2] >= s_lo) & (t[:, 2] <= s_hi))
        ml = {"right": float((zone & (t[:, 0] > 0)).sum() * lv.voxel_mm3 / 1000.0),
              "left": float((zone & (t[:, 0] < 0)).sum() * lv.voxel_mm3 / 1000.0)}
        per_level[lv.name] = {k: round(v, 3) for k, v in ml.items()}
        for k in sides:
            sides[k] = max(sides[k], ml[k])
    if not measured:
        return undecided("posterolateral", "no canal centre for the involved levels (needs CT vertebrae with arches "
                         "or a cord/sac segmentation)", source="imaging")
    involved = [k for k, v in sides.items() if v >= p.min_involved_ml]
    finding = "bilateral" if len(involved) == 2 else "unilateral" if involved else "none"
    return SinsElement(
        "posterolateral", POSTEROLATERAL_POINTS[finding], finding, "moderate",
        evidence={"tumor_ml_by_level_and_side": per_level, "sides_involved": involved},
        rule=(f"tumor >= {p.min_involved_ml:g} mL lateral to the canal ({p.canal_half_width_mm:g}-{p.zone_lateral_mm:g} mm) "
              f"between {p.zone_back_mm:g} mm behind and {p.zone_front_mm:g} mm in front of the canal centre, within the "
              "level (settings)"))


# -- all elements ----------------------------------------------------------------------------------
def sins_from_imaging(*, levels_spanned: list[str], levels_reliable: bool, vertebrae: Volume | None,
                      vertebra_names: dict[int, str], tumor: Volume, axis, ct: Volume | None = None,
                      canal_centres: dict[int, list] | None = None, pain: str | None = None,
                      params: ApproachParams | None = None, cut_levels: set[int] | None = None):
    """Every SINS element from the images (and ``pain`` when the clinician gave it).

    Parameters
    ----------
    levels_spanned : list[str]
        Level names the tumor spans (cranial first); ``levels_reliable`` whether they were
        named from a seen or user-given anchor.
    vertebrae : Volume or None
        Vertebra label map (values = level indices, names in ``vertebra_names``); None when no
        vertebrae were found (only location can then be scored).
    tumor : Volume
        Tumor mask (any grid).
    axis : array-like
        Spinal axis at the tumor (RAS unit vector, superior).
    ct : Volume, optional
        CT in HU (any grid) for the bone lesion element.
    canal_centres : dict[int, list], optional
        Level index -> canal centre (RAS mm): needed for collapse, posterolateral involvement and
        the body/arch split.
    """
    from SpinePlannerLib.approach.sins import SinsScore, location_element, pain_element

    prm = params or ApproachParams()
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    elements = [location_element(levels_spanned, reliable=levels_reliable), pain_element(pain)]
    if vertebrae is None or not np.any(vertebrae.array):
        why = "no vertebrae segmented"
        elements += [undecided(n, why, source="imaging") for n in ("bone_lesion", "collapse", "alignment",
                                                                     "posterolateral")]
        return SinsScore(elements)
    levels = levels_from_labels(vertebrae, vertebra_names, tumor, canal_centres=canal_centres,
                                margin_mm=prm.bone_quality.bone_margin_mm, cut_levels=cut_levels)
    elements += [bone_lesion_element(ct, vertebrae, levels, prm), collapse_element(levels, axis, prm),
                 alignment_element(levels, axis, prm), posterolateral_element(levels, axis, prm)]
    why = None if _involved(levels) else ("the tumor involves no vertebra: SINS scores neoplastic disease of the "
                                          "spinal column (the elements are shown for completeness)")
    return SinsScore(elements, not_applicable=why)
