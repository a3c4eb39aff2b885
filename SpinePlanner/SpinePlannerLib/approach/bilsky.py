"""Epidural spinal cord compression grade (Bilsky scale) from tumor, thecal sac and cord masks (L1).

Source: Bilsky MH et al., J Neurosurg Spine 2010;13:324-8 (the six-point ESCC scale), as used in
NOMS (Laufer I et al., Oncologist 2013;18:744-51); see ``CLINICAL.md`` section 6a. Graded on the
axial cross-section of worst compression:

===== ===========================================================================
grade definition
===== ===========================================================================
0     bone-only disease
1a    epidural impingement, no deformation of the thecal sac
1b    deformation of the thecal sac, no abutment of the cord
1c    deformation of the thecal sac with cord abutment, no cord compression
2     cord compression, CSF still visible around the cord
3     cord compression, no CSF visible around the cord
===== ===========================================================================

Method: the masks are reformatted onto cross-sections perpendicular to the cord axis
(:mod:`.reformat`); on each cross-section the epidural tumor (outside the sac and bone, inside
within a band around the sac), the sac and cord areas against reference cross-sections away from the tumor, the sac's
solidity and its indentation (radial profile from the cord centre against the reference
profile), the tumor-cord distance, the cord's flattening and the directions around the cord that
still show CSF decide the grade with the cut-offs of :class:`~.params.BilskyParams` (settings: the
scale's words are qualitative). Grades 0-1b are low grade, 2-3 high grade; 1c is discussed either
way (the result says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from SpinePlannerLib.approach.params import BilskyParams
from SpinePlannerLib.approach.reformat import AxialStack, axial_stack
from SpinePlannerLib.core.volume import Volume

GRADES = ("0", "1a", "1b", "1c", "2", "3")
SOURCE = "Bilsky MH et al. J Neurosurg Spine 2010;13:324-8; Laufer I et al. Oncologist 2013 (NOMS)"


def grade_category(grade: str | None) -> str | None:
    """``"low"`` (0-1b), ``"high"`` (2-3) or ``"borderline"`` (1c: discussed either way)."""
    if grade is None:
        return None
    return {"0": "low", "1a": "low", "1b": "low", "1c": "borderline", "2": "high", "3": "high"}[grade]


@dataclass
class SectionFindings:
    """What one cross-section shows (areas mm^2, distances mm)."""

    offset_mm: float
    centre_ras: list
    epidural_mm2: float
    sac_mm2: float
    cord_mm2: float
    sac_area_ratio: float | None
    sac_solidity: float | None
    sac_indentation_mm: float | None
    cord_area_ratio: float | None
    cord_flattening_ratio: float | None
    tumor_cord_distance_mm: float | None
    csf_visible_fraction: float | None
    sac_deformed: bool
    cord_abutted: bool
    cord_compressed: bool
    grade: str

    def as_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class BilskyResult:
    """The grade at the worst cross-section, with the cross-sections that decide it."""

    grade: str | None
    applicable: bool
    reason: str = ""
    worst: SectionFindings | None = None
    reference: dict = field(default_factory=dict)
    n_sections_with_epidural_tumor: int = 0

    def as_dict(self, params: BilskyParams | None = None) -> dict:
        out = {
            "grade": self.grade, "applicable": self.applicable, "reason": self.reason,
            "category": grade_category(self.grade),
            "worst_section": self.worst.as_dict() if self.worst else None,
            "reference_section": {k: v for k, v in self.reference.items() if k != "sac_radius_profile_mm"},
            "n_sections_with_epidural_tumor": self.n_sections_with_epidural_tumor,
            "source": SOURCE,
        }
        if self.grade == "1c":
            out["note"] = "grade 1c (cord abutment without compression) is treated as low or high grade by different authors"
        if params is not None:
            out["settings"] = dict(params.__dict__)
        return out


# -- per-section geometry -----------------------------------------------------------------------
def _solidity(mask2d: np.ndarray) -> float | None:
    from skimage.measure import regionprops

    if mask2d.sum() < 4:
        return None
    props = regionprops(mask2d.astype(np.uint8))
    return float(props[0].solidity) if props else None


def _axis_ratio(mask2d: np.ndarray) -> float | None:
    """Minor / major axis of the cross-section's inertia ellipse (1 = round)."""
    pts = np.argwhere(mask2d)
    if len(pts) < 5:
        return None
    ev = np.linalg.eigvalsh(np.cov(pts.T))
    return float(np.sqrt(max(ev[0], 0.0) / ev[1])) if ev[1] > 0 else None


def _sector(offsets: np.ndarray, n_dirs: int) -> np.ndarray:
    """Direction sector (0..n_dirs-1) of in-plane offsets (N, 2) from a centre."""
    return np.floor((np.arctan2(offsets[:, 1], offsets[:, 0]) + np.pi) / (2 * np.pi) * n_dirs).astype(int) % n_dirs


def _csf_visible_fraction(cord: np.ndarray, csf: np.ndarray, ring_px: float, n_dirs: int = 36) -> float | None:
    """Share of ``n_dirs`` directions around the cord's centroid in which CSF lies within
    ``ring_px`` of the cord's surface."""
    if cord.sum() == 0:
        return None
    dist_out = ndimage.distance_transform_edt(~cord)
    ring = csf & (dist_out <= ring_px) & (dist_out > 0)
    if not ring.any():
        return 0.0
    c = np.argwhere(cord).mean(axis=0)
    pts = np.argwhere(ring) - c
    ang = _sector(pts, n_dirs)
    return float(len(np.unique(ang)) / n_dirs)


def _radial_profile(mask: np.ndarray, centre, pixel_mm: float, n_dirs: int = 36) -> np.ndarray:
    """Farthest extent (mm) of ``mask`` from ``centre`` (pixel coordinates) in each of ``n_dirs``
    direction sectors (NaN where the mask has no pixel)."""
    pts = np.argwhere(mask) - np.asarray(centre, float)
    if len(pts) == 0:
        return np.full(n_dirs, np.nan)
    ang = _sector(pts, n_dirs)
    rad = np.hypot(pts[:, 0], pts[:, 1]) * pixel_mm
    prof = np.zeros(n_dirs)
    np.maximum.at(prof, ang, rad)
    prof[np.bincount(ang, minlength=n_dirs) == 0] = np.nan
    return prof


def _cord_centre(stack: AxialStack, k: int):
    cord = stack.arrays["cord"][:, :, k]
    m = cord if cord.any() else stack.arrays["sac"][:, :, k]
    return np.argwhere(m).mean(axis=0) if m.any() else None


def _reference(stack: AxialStack, tumor_k: np.ndarray, gap_slices: int) -> dict:
    sac, cord = stack.arrays["sac"], stack.arrays["cord"]
    ks = [k for k in range(stack.n_slices)
          if (np.abs(tumor_k - k).min() > gap_slices if len(tumor_k) else True) and sac[:, :, k].any()
          and cord[:, :, k].any()]
    px2 = stack.pixel_mm ** 2
    if len(ks) < 2:
        return {}
    sol = [s for s in (_solidity(sac[:, :, k]) for k in ks) if s is not None]
    flat = [r for r in (_axis_ratio(cord[:, :, k]) for k in ks) if r is not None]
    profiles = [_radial_profile(sac[:, :, k], _cord_centre(stack, k), stack.pixel_mm) for k in ks]
    return {"n_sections": len(ks),
            "sac_radius_profile_mm": np.nanmedian(np.stack(profiles), axis=0),
            "sac_mm2": float(np.median([sac[:, :, k].sum() * px2 for k in ks])),
            "cord_mm2": float(np.median([cord[:, :, k].sum() * px2 for k in ks])),
            "sac_solidity": float(np.median(sol)) if sol else None,
            "cord_axis_ratio": float(np.median(flat)) if flat else None}


def _epidural(stack: AxialStack, k: int, p: BilskyParams) -> np.ndarray:
    """Epidural tumor of cross-section ``k``: tumor outside the sac, the cord and bone, within
    ``epidural_band_mm`` of the sac (the canal's epidural space; deeper tumor is intraosseous or
    paravertebral)."""
    t = stack.arrays["tumor"][:, :, k]
    sac, cord = stack.arrays["sac"][:, :, k], stack.arrays["cord"][:, :, k]
    bone = stack.arrays.get("bone")
    e = t & ~sac & ~cord
    if bone is not None:
        e &= ~bone[:, :, k]
    dural = sac | cord
    if not dural.any() or not e.any():
        return np.zeros_like(e)
    return e & (ndimage.distance_transform_edt(~dural) * stack.pixel_mm <= p.epidural_band_mm)


def _section(stack: AxialStack, k: int, epi: np.ndarray, ref: dict, p: BilskyParams) -> SectionFindings:
    px, px2 = stack.pixel_mm, stack.pixel_mm ** 2
    t = stack.arrays["tumor"][:, :, k]
    sac, cord = stack.arrays["sac"][:, :, k], stack.arrays["cord"][:, :, k]
    sac_ratio = sac.sum() * px2 / ref["sac_mm2"] if ref.get("sac_mm2") else None
    cord_ratio = cord.sum() * px2 / ref["cord_mm2"] if ref.get("cord_mm2") else None
    sol = _solidity(sac)
    ar = _axis_ratio(cord)
    flat = ar / ref["cord_axis_ratio"] if (ar is not None and ref.get("cord_axis_ratio")) else None
    dist = None
    if cord.any():
        d_cord = ndimage.distance_transform_edt(~cord) * px
        dist = float(d_cord[epi].min()) if epi.any() else None
    csf = sac & ~cord & ~t
    csf_frac = _csf_visible_fraction(cord, csf, p.csf_ring_mm / px)
    indent = None
    if sac.any() and ref.get("sac_radius_profile_mm") is not None:
        prof = _radial_profile(sac, _cord_centre(stack, k), px)
        indent = float(np.nanmax(ref["sac_radius_profile_mm"] - prof)) if np.isfinite(prof).any() else None
    deformed = bool((indent is not None and indent >= p.sac_indentation_mm)
                    or (sac_ratio is not None and sac_ratio < 1 - p.sac_deformation_fraction)
                    or (sol is not None and ref.get("sac_solidity") is not None
                        and sol < ref["sac_solidity"] - p.solidity_drop))
    abutted = dist is not None and dist <= p.cord_abutment_mm + px / 2
    compressed = bool((cord_ratio is not None and cord_ratio < 1 - p.cord_compression_fraction)
                      or (flat is not None and flat < 1 - p.cord_flattening))
    if compressed and abutted:
        grade = "2" if (csf_frac or 0.0) >= p.csf_visible_min_fraction else "3"
    elif deformed and abutted:
        grade = "1c"
    elif deformed:
        grade = "1b"
    else:
        grade = "1a"
    return SectionFindings(
        offset_mm=stack.offset_mm(k), centre_ras=[round(float(x), 2) for x in stack.slice_centre_ras(k)],
        epidural_mm2=float(epi.sum() * px2), sac_mm2=float(sac.sum() * px2), cord_mm2=float(cord.sum() * px2),
        sac_area_ratio=sac_ratio, sac_solidity=sol, sac_indentation_mm=indent, cord_area_ratio=cord_ratio, cord_flattening_ratio=flat,
        tumor_cord_distance_mm=dist, csf_visible_fraction=csf_frac, sac_deformed=deformed, cord_abutted=abutted,
        cord_compressed=compressed, grade=grade)


def bilsky_grade(tumor: Volume, sac: Volume | None, cord: Volume | None, axis, *, bone: Volume | None = None,
                 params: BilskyParams | None = None) -> BilskyResult:
    """Bilsky grade of epidural compression at the worst cross-section.

    Parameters
    ----------
    tumor, sac, cord : Volume
        Binary masks on any grids (RAS mm); ``sac`` is the thecal sac (cord + CSF).
    axis : array-like
        Cord axis (RAS unit vector) at the tumor; cross-sections are perpendicular to it.
    bone : Volume, optional
        Bone (CT: the HU bone mask; MRI: the vertebral bodies): tumor inside it is not epidural.
    params : BilskyParams, optional
        Cut-offs (settings).

    Returns
    -------
    BilskyResult
        ``applicable`` is False (grade None) without a sac or cord, or when no tumor lies outside
        the sac (intradural tumors are not graded on this scale).
    """
    p = params or BilskyParams()
    if sac is None or cord is None or not np.any(sac.array) or not np.any(cord.array):
        return BilskyResult(None, False, "needs the thecal sac and the cord (T2 MRI)")
    t_pts = np.argwhere(tumor.array > 0)
    if len(t_pts) == 0:
        return BilskyResult(None, False, "no tumor")
    centre = tumor.ijk_to_ras(t_pts).mean(axis=0)
    ext = np.ptp(tumor.ijk_to_ras(t_pts) @ (np.asarray(axis, float) / np.linalg.norm(axis)))
    half_len = ext / 2 + p.reference_gap_mm + 15.0
    masks = {"tumor": tumor, "sac": sac, "cord": cord, **({"bone": bone} if bone is not None else {})}
    stack = axial_stack(masks, centre, axis, half_length_mm=half_len)
    tumor_k = np.flatnonzero(stack.arrays["tumor"].any(axis=(0, 1)))
    ref = _reference(stack, tumor_k, int(np.ceil(p.reference_gap_mm / stack.step_mm)))
    min_px = p.min_epidural_mm2 / stack.pixel_mm ** 2
    sections = []
    for k in tumor_k:
        epi = _epidural(stack, k, p)
        if epi.sum() >= min_px:
            sections.append(_section(stack, k, epi, ref, p))
    if not sections:
        outside = stack.arrays["tumor"] & ~stack.arrays["sac"] & ~stack.arrays["cord"]
        if outside.sum() * stack.pixel_mm ** 2 * stack.step_mm < 1.0:
            return BilskyResult(None, False, "no tumor outside the thecal sac: intradural tumors are not graded on "
                                "the epidural compression scale", reference=ref)
        return BilskyResult("0", True, "tumor outside the sac lies in bone or outside the canal: bone-only disease",
                            reference=ref)
    if not ref:
        return BilskyResult(None, False, "fewer than 2 cross-sections of sac and cord away from the tumor "
                            "to compare with", n_sections_with_epidural_tumor=len(sections))
    worst = max(sections, key=lambda s: (GRADES.index(s.grade), -(s.cord_area_ratio or 1.0)))
    return BilskyResult(worst.grade, True, "worst cross-section", worst, ref, len(sections))
