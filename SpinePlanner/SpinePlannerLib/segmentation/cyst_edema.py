"""Cyst and edema segments next to an intradural tumor, when the contrasts support them (L1).

Clinical basis: intramedullary tumors (ependymoma, hemangioblastoma, astrocytoma) often come with
polar or intratumoral cysts or a syrinx, and with cord edema. A cyst holds fluid: CSF-bright on
T2, CSF-dark on T1, not enhancing. Edema is T2-hyperintense cord (brighter than cord, darker
than CSF) that does not enhance. On T2 alone edema and solid tumor look alike, so edema needs a
contrast-enhanced T1 (the solid tumor enhances, edema does not); a cyst needs T2 and a T1 (T1
or T1c) to be called fluid.

Method (every image on the reference grid; levels measured on the case itself)
-------------------------------------------------------------------------------
Only the region within ``search_mm`` of the tumor's bounding box is examined. Levels: normal
cord = histogram mode inside the cord mask (robust to edema occupying part of it); CSF on T2 =
the cord pass's CSF median (else the histogram mode in the sac away from cord and tumor); CSF on T1/T1c = histogram mode
over the T2-defined CSF in the sac away from cord and tumor.

1. Cysts: fluid voxels (T2 >= cord + ``fluid_fraction_t2`` (CSF - cord) and T1 <= CSF +
   ``fluid_fraction_t1`` (cord - CSF)); each connected region within ``adjoin_mm`` of the tumor,
   at least ``min_cyst_ml`` large and *enclosed* is a cyst. The subarachnoid CSF runs the whole
   length of the examined region; an intramedullary or intratumoral cyst is enclosed by tissue,
   so a region touching the examined box's faces is not a cyst (a syrinx longer than the box is
   missed, never mistaken). The sac mask of the cord pass is not needed here: a swollen cord with
   bright cysts can mislead it.
2. Solid tumor (T1c): the tumor enhances when its 90th-percentile T1c is at least
   ``min_enhancement`` above the cord's level (relative); the solid tumor is then the part of the
   tumor mask at or above the half-maximum (``enhancing_fraction``) between cord and tumor levels,
   minus cysts. Where the tumor mask was grown on T1c it already is that part.
3. Edema (T1c, enhancing tumor): non-enhancing, non-fluid voxels with T2 >= cord +
   ``edema_fraction_t2`` (CSF - cord), not tumor, not cyst. Cores ``edema_core_mm`` inside such
   tissue (with tumor and cysts) and as far from the solid tumor (where the partial-volume border
   of the cord surface or of the tumor cannot mimic edema) that come within ``adjoin_mm`` of the
   tumor or a cyst are kept and grown back ``regrow_steps`` voxel layers into edema-like voxels;
   in total at least ``min_edema_ml``. CSF (fluid) separates the cord from the epidural space,
   so the edema cannot grow out of the thecal sac.

Without the contrasts needed, or when nothing qualifies, the result says ``segmented: false``
with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.measurement import lesion as measure
from SpinePlannerLib.segmentation.common import ball
from SpinePlannerLib.segmentation.params import CystEdemaParams

NEEDS_T1C = "needs contrast-enhanced T1 to separate edema from tumor"
NEEDS_T1 = "needs T2 and a T1 (T1 or T1c) to call a region fluid"


@dataclass
class CystEdemaResult:
    """Outcome of :func:`segment_cyst_edema`.

    Attributes
    ----------
    cyst, edema : Volume or None
        0/1 masks on the reference grid (None when not segmented).
    solid_tumor : Volume or None
        The enhancing part of the tumor mask minus cysts (T1c given and the tumor enhances), else
        the tumor mask minus cysts when cysts were found, else None.
    cyst_info, edema_info, tumor_info : dict
        ``segmented`` and ``reason``; when segmented ``volume_ml``, ``craniocaudal_extent_mm``
        (along the cord axis), ``method``, ``contrasts`` and the levels used (image units).
    """

    cyst: Volume | None = None
    edema: Volume | None = None
    solid_tumor: Volume | None = None
    cyst_info: dict = field(default_factory=dict)
    edema_info: dict = field(default_factory=dict)
    tumor_info: dict = field(default_factory=dict)


def _mode(values: np.ndarray) -> float | None:
    """Most frequent value of ``values`` (histogram of 64 bins over the 1st-99th percentiles,
    smoothed over two bins); None for fewer than 20 values."""
    v = np.asarray(values, float)
    if v.size < 20:
        return None
    lo, hi = np.percentile(v, [1.0, 99.0])
    if hi <= lo:
        return float(lo)
    hist, edges = np.histogram(v, bins=64, range=(lo, hi))
    hist = ndimage.gaussian_filter1d(hist.astype(float), 2.0)
    k = int(np.argmax(hist))
    return float(0.5 * (edges[k] + edges[k + 1]))


def _crop(masks, shape, spacing, margin_mm: float):
    """Slices of the bounding box of the union of ``masks`` grown by ``margin_mm``."""
    union = np.zeros(shape, bool)
    for m in masks:
        union |= m
    pts = np.argwhere(union)
    pad = np.ceil(margin_mm / np.asarray(spacing)).astype(int)
    lo = np.maximum(pts.min(axis=0) - pad, 0)
    hi = np.minimum(pts.max(axis=0) + pad + 1, shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def _near(mask: np.ndarray, spacing, radius_mm: float) -> np.ndarray:
    if radius_mm <= 0 or not mask.any():
        return mask.copy()
    return ndimage.binary_dilation(mask, structure=ball(radius_mm, spacing))


def _uncrop(mask: np.ndarray, ref: Volume, sl, name: str | None = None) -> Volume:
    """A mask of the examined box ``sl`` as a 0/1 Volume on ``ref``'s whole grid."""
    full = np.zeros(ref.shape3, np.uint8)
    full[sl] = mask
    return ref.with_array(full, name=name)


def _extent_info(mask: np.ndarray, ref: Volume, sl, axis) -> tuple[float, float]:
    return (float(mask.sum()) * ref.voxel_volume_ml, measure.extent_along_mm(_uncrop(mask, ref, sl), axis))


def _r(v, nd: int = 4):
    return None if v is None else round(float(v), nd)


def _find_cysts(out: CystEdemaResult, t1_levels, t1, t1c, t2, fluid2: np.ndarray, tm: np.ndarray, tumor: Volume, sl,
                axis, levels: dict, params: CystEdemaParams) -> np.ndarray:
    """Step 1: enclosed fluid regions (T2 and T1/T1c at CSF level) adjoining the tumor, in the
    examined box; sets ``out.cyst_info`` and adds the T1 levels to ``levels``."""
    no_cyst = {"segmented": False}
    sp = tumor.spacing
    t1_role = "t1" if t1 is not None else "t1c" if t1c is not None else None
    cyst = np.zeros_like(tm)
    if t1_role is None:
        out.cyst_info = {**no_cyst, "reason": NEEDS_T1}
    else:
        i1, cord1, csf1 = t1_levels(t1 if t1 is not None else t1c)
        levels.update({f"{t1_role}_cord": _r(cord1), f"{t1_role}_csf": _r(csf1)})
        if cord1 is None or csf1 is None or cord1 <= csf1:
            out.cyst_info = {**no_cyst, "reason": f"CSF is not darker than cord on {t1_role}: fluid cannot be called"}
        else:
            fluid = fluid2 & (i1 <= csf1 + params.fluid_fraction_t1 * (cord1 - csf1))
            lab, n = ndimage.label(fluid)
            faces = np.zeros_like(tm)
            for ax in range(3):
                idx = [slice(None)] * 3
                for end in (0, -1):
                    idx[ax] = end
                    faces[tuple(idx)] = True
            open_ids = np.unique(lab[faces & (lab > 0)])
            near_t = _near(tm, sp, params.adjoin_mm)
            min_vox = params.min_cyst_ml / tumor.voxel_volume_ml
            for k in np.unique(lab[near_t & (lab > 0)]):
                comp = lab == k
                if k in open_ids or comp.sum() < min_vox:
                    continue
                cyst |= comp
            if cyst.any():
                vol_ml, cc = _extent_info(cyst, tumor, sl, axis)
                comps = _components_info(cyst, tumor, sl, axis)
                out.cyst_info = {
                    "segmented": True, "reason": "enclosed fluid-signal region(s) adjoining the tumor",
                    "volume_ml": round(vol_ml, 3), "craniocaudal_extent_mm": round(cc, 1), "count": len(comps),
                    "components": comps, "contrasts": ["t2", t1_role],
                    "method": f"T2 and {t1_role} at CSF level, enclosed by tissue (not the subarachnoid space), "
                              f"within {params.adjoin_mm} mm of the tumor"}
            else:
                out.cyst_info = {**no_cyst, "reason": "no fluid-signal region adjoining the tumor"}
        out.cyst_info["contrasts_available"] = [r for r, v in (("t2", t2), ("t1", t1), ("t1c", t1c)) if v is not None]
    return cyst


def _solid_tumor(out: CystEdemaResult, t1_levels, t1c, tm: np.ndarray, cyst: np.ndarray, levels: dict,
                 tumor_on_t1c: bool, params: CystEdemaParams):
    """Step 2: the solid (enhancing) tumor; sets ``out.tumor_info``. Returns ``(solid, enhancing)``
    (``enhancing`` None without T1c or enhancement)."""
    solid = tm & ~cyst
    enh = None
    out.tumor_info = {"solid_rule": "tumor mask minus cysts", "enhances": None}
    if t1c is None:
        out.tumor_info["limitation"] = ("no T1c: the tumor mask may include non-enhancing edema, which T2 "
                                        "does not separate from solid tumor")
    else:
        ic, cord_c, csf_c = t1_levels(t1c)
        tum_c = float(np.percentile(ic[tm], 90.0))
        levels.update({"t1c_cord": _r(cord_c), "t1c_tumor_p90": _r(tum_c)})
        enhances = cord_c is not None and tum_c >= cord_c * (1.0 + params.min_enhancement)
        out.tumor_info["enhances"] = bool(enhances)
        if enhances:
            enh = ic >= cord_c + params.enhancing_fraction * (tum_c - cord_c)
            if tumor_on_t1c:
                out.tumor_info["solid_rule"] = "tumor grown on T1c (the enhancing part), minus cysts"
            else:
                part = ndimage.binary_fill_holes(tm & enh) & tm & ~cyst
                if part.any():
                    out.tumor_info["solid_rule"] = ("enhancing part of the tumor mask on T1c (half-maximum "
                                                    "between cord and tumor levels), minus cysts")
                    solid = part
    return solid, enh


def _edema_section(out: CystEdemaResult, t1c, enh, i2, fluid2, solid, cyst, tumor: Volume, sl, axis, cord2: float,
                   csf2: float, levels: dict, params: CystEdemaParams) -> None:
    """Step 3: edema (non-enhancing T2-hyperintense tissue contiguous with the tumor) into ``out``."""
    no_edema = {"segmented": False}
    sp = tumor.spacing
    if t1c is None:
        out.edema_info = {**no_edema, "reason": NEEDS_T1C}
    elif enh is None:
        out.edema_info = {**no_edema, "reason": "the tumor does not enhance on T1c: edema cannot be separated "
                                                "from non-enhancing tumor"}
    else:
        edema = _edema(i2, enh, fluid2, solid, cyst, sp, cord2, csf2, params)
        if edema.sum() * tumor.voxel_volume_ml >= params.min_edema_ml:
            vol_ml, cc = _extent_info(edema, tumor, sl, axis)
            out.edema = _uncrop(edema, tumor, sl, "edema")
            out.edema_info = {
                "segmented": True, "reason": "non-enhancing T2-hyperintense tissue contiguous with the tumor",
                "volume_ml": round(vol_ml, 3), "craniocaudal_extent_mm": round(cc, 1), "contrasts": ["t2", "t1c"],
                "method": "T2 between cord and CSF levels, below the T1c half-maximum of the tumor's enhancement, "
                          f"not fluid, contiguous with the tumor or a cyst (within {params.adjoin_mm} mm)",
                "levels": dict(levels)}
        else:
            out.edema_info = {**no_edema, "reason": "no non-enhancing T2-hyperintense tissue adjoining the tumor"}


def segment_cyst_edema(tumor: Volume, *, cord: Volume | None, sac: Volume | None, t2: Volume | None,
                       t1: Volume | None = None, t1c: Volume | None = None, csf_level_t2: float | None = None,
                       tumor_on_t1c: bool = False, params: CystEdemaParams | None = None) -> CystEdemaResult:
    """Cysts and edema adjoining ``tumor`` (see the module docstring).

    Parameters
    ----------
    tumor : Volume
        0/1 tumor mask on the reference grid (RAS affine, any orientation).
    cord, sac : Volume or None
        0/1 cord and thecal-sac masks on the same grid (the cord may exclude the tumor; it should
        not hold edema already found: the mode of the cord's T2 is the normal-cord level); they
        only serve to measure the cord and CSF levels and the cord axis.
    t2, t1, t1c : Volume or None
        T2-weighted, T1-weighted and contrast-enhanced T1 images resampled onto the same grid
        (relative units).
    csf_level_t2 : float or None
        CSF median on T2 measured by the cord pass (image units); otherwise the histogram mode in
        the sac away from cord and tumor.
    tumor_on_t1c : bool
        True when ``tumor`` was grown on the T1c (it then already is the enhancing part).
    params : CystEdemaParams

    Returns
    -------
    CystEdemaResult
        Masks on the reference grid; volumes in mL, extents in mm along the local cord axis.
    """
    params = params or CystEdemaParams()
    out = CystEdemaResult()
    t_mask = tumor.array > 0
    no_cyst = {"segmented": False}
    no_edema = {"segmented": False}
    if not t_mask.any():
        out.cyst_info = {**no_cyst, "reason": "no tumor to look next to"}
        out.edema_info = {**no_edema, "reason": "no tumor to look next to"}
        return out
    if t2 is None:
        out.cyst_info = {**no_cyst, "reason": "needs a T2 image to find CSF-like fluid"}
        out.edema_info = {**no_edema, "reason": NEEDS_T1C if t1c is None else "needs a T2 image to find T2 "
                                                                               "hyperintensity"}
        return out
    sp = tumor.spacing
    sl = _crop([t_mask], tumor.shape3, sp, params.search_mm)
    tm = t_mask[sl]
    cord_m = (cord.array[sl] > 0) if cord is not None else np.zeros_like(tm)
    sac_m = (sac.array[sl] > 0) if sac is not None and np.any(sac.array) else None
    sigma = params.smoothing_mm / sp

    def smooth(vol):
        a = vol.array[sl].astype(np.float32)
        return ndimage.gaussian_filter(a, sigma) if params.smoothing_mm > 0 else a

    i2 = smooth(t2)
    cord_vals = i2[cord_m & ~tm]
    cord2 = _mode(cord_vals)
    csf2 = csf_level_t2
    if csf2 is None and sac_m is not None:  # the sac away from cord and tumor is mostly CSF
        csf2 = _mode(i2[sac_m & ~_near(cord_m | tm, sp, 1.5)])
    if cord2 is None or csf2 is None or csf2 - cord2 <= 0:
        why = "the cord's and CSF's T2 levels could not be measured" if cord2 is None or csf2 is None \
            else "CSF is not brighter than cord on T2"
        out.cyst_info = {**no_cyst, "reason": why}
        out.edema_info = {**no_edema, "reason": NEEDS_T1C if t1c is None else why}
        return out
    fluid2 = i2 >= cord2 + params.fluid_fraction_t2 * (csf2 - cord2)
    axis = measure.cord_axis(cord if cord is not None and np.any(cord.array) else sac,
                             near_ras=tumor.ijk_to_ras(np.argwhere(t_mask).mean(axis=0)))
    # CSF on T2 away from cord and tumor (in the sac when known): where the T1 CSF level is measured
    csf_t2 = fluid2 & ~_near(cord_m | tm, sp, 1.5)
    if sac_m is not None:
        csf_t2 &= ndimage.binary_erosion(sac_m, structure=ndimage.generate_binary_structure(3, 1))
    levels = {"t2_cord": _r(cord2), "t2_csf": _r(csf2)}

    def t1_levels(vol):
        img = smooth(vol)
        return img, _mode(img[cord_m & ~tm]), _mode(img[csf_t2])

    # ---- 1. cysts --------------------------------------------------------------------------
    cyst = _find_cysts(out, t1_levels, t1, t1c, t2, fluid2, tm, tumor, sl, axis, levels, params)

    # ---- 2. solid tumor (enhancing part) -------------------------------------------------------
    solid, enh = _solid_tumor(out, t1_levels, t1c, tm, cyst, levels, tumor_on_t1c, params)
    if cyst.any() or enh is not None:
        out.solid_tumor = _uncrop(solid, tumor, sl, "tumor")
        out.tumor_info["solid_volume_ml"] = round(float(solid.sum()) * tumor.voxel_volume_ml, 3)
    if cyst.any():
        out.cyst = _uncrop(cyst, tumor, sl, "cyst")
        out.cyst_info["levels"] = dict(levels)

    # ---- 3. edema ----------------------------------------------------------------------------------
    _edema_section(out, t1c, enh, i2, fluid2, solid, cyst, tumor, sl, axis, cord2, csf2, levels, params)
    return out


def _edema(i2, enh, fluid2, solid, cyst, sp, cord2, csf2, params: CystEdemaParams) -> np.ndarray:
    """Edema mask in the examined box (module docstring, step 3)."""
    like = (i2 >= cord2 + params.edema_fraction_t2 * (csf2 - cord2)) & ~fluid2 & ~enh & ~solid & ~cyst
    base = like | solid | cyst
    core_tissue = ndimage.binary_erosion(base, structure=ball(params.edema_core_mm, sp)) \
        if params.edema_core_mm > 0 else base
    core = like & core_tissue & ~_near(solid, sp, params.edema_core_mm)
    lab, n = ndimage.label(core)
    if n == 0:
        return np.zeros_like(core)
    touch = _near(solid | cyst, sp, params.adjoin_mm) & (lab > 0)
    keep = np.isin(lab, np.unique(lab[touch])) & (lab > 0)
    if params.regrow_steps > 0 and keep.any():
        keep = ndimage.binary_dilation(keep, structure=ndimage.generate_binary_structure(3, 1),
                                       iterations=params.regrow_steps, mask=like)
    return keep


def _components_info(mask: np.ndarray, ref: Volume, sl, axis) -> list[dict]:
    """Per connected region: volume (mL), cranio-caudal extent (mm) and centroid (RAS mm)."""
    lab, n = ndimage.label(mask)
    out = []
    off = np.array([s.start for s in sl])
    for k in range(1, n + 1):
        comp = lab == k
        vol_ml, cc = _extent_info(comp, ref, sl, axis)
        centroid = ref.ijk_to_ras(np.argwhere(comp).mean(axis=0) + off)
        out.append({"volume_ml": round(vol_ml, 3), "craniocaudal_extent_mm": round(cc, 1),
                    "centroid_ras": [round(float(c), 2) for c in np.ravel(centroid)]})
    return sorted(out, key=lambda c: -c["centroid_ras"][2])
