"""One case of the synthetic-CT check: CT vs synthetic CT in the lesion and in bone (L1).

Frames. Every MRI-derived image (synthetic CT, T2*/SWI, the MRI carrying the ROI) shares the
MRI session's world frame; the CT has its own. The CT is rigidly registered to the synthetic
CT (:mod:`.registration`) and everything is measured in the frame of the ROI (``roi_frame``):

* ``"mri"`` (default): the ROI was drawn on the MRI; the CT is moved into the MRI frame;
* ``"ct"``: the ROI is on the CT (e.g. the planner's reference grid is the CT); the synthetic
  CT and the T2*/SWI image are moved into the CT frame.

Voxel data are never resampled twice: the ROI is carried onto each image's own grid through
world coordinates (:func:`SpinePlannerLib.core.geometry.resample_mask_like`); only the difference
volume and the bone agreement use the synthetic CT sampled on the CT grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.geometry import (
    mask_centroid_ras,
    resample,
    resample_mask_like,
    world_overlap_fraction,
)
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.measurement.lesion import SUPERIOR, cord_axis
from SpinePlannerLib.planning.context import Progress, no_progress

from .bone_agreement import BoneAgreement, bone_agreement
from .calcification import VoidResult, detect_signal_voids
from .flags import Flag, context_flags, is_disagreement, lesion_flags, verdict_and_hint
from .lesion_stats import LesionStats, measure_lesion, require_hounsfield
from .masks import crop_volume, padded
from .params import CheckParams
from .registration import RegistrationResult, moved, register_ct_to_sct

DEFAULT_NAMES = {"ct": "ct", "sct": "sct", "roi": "tumor segmentation", "gre": "swi"}

CALCIFIED_HU_RATIONALE = ("130 HU is the Agatston coronary-calcium threshold, used as a convention for "
                          "calcium-dense voxels, not as a validated cut-off for spinal tumours")


@dataclass
class CheckResult:
    """Everything one check produced.

    Attributes
    ----------
    section : dict
        The plan.json ``synthetic_ct_check`` section.
    difference : Volume or None
        CT - synthetic CT (HU, float32) on the CT grid placed in the ROI's frame; 0 where the
        synthetic CT has no data.
    flagged : Volume or None
        The flagged region (0/1): hyperdense on CT but not on the synthetic CT (or the MRI
        signal voids without a CT), on the grid of ``difference`` (of the T2*/SWI without CT).
    ct_to_roi_frame_ras : np.ndarray (4, 4)
        Maps CT RAS to the ROI frame (identity when the ROI is on the CT).
    """

    section: dict
    ct: LesionStats | None = None
    sct: LesionStats | None = None
    bone: BoneAgreement | None = None
    registration: RegistrationResult | None = None
    voids: VoidResult | None = None
    flags: list[Flag] = field(default_factory=list)
    difference: Volume | None = None
    flagged: Volume | None = None
    calcification: Volume | None = None
    ct_to_roi_frame_ras: np.ndarray = field(default_factory=lambda: np.eye(4))


class RoiOutsideImage(InputError):
    """The tumour ROI covers no voxel of an image after carrying it through world coordinates."""


def _require_overlap(ct: Volume, sct: Volume, names: dict) -> None:
    if world_overlap_fraction(ct, sct) <= 0.0 or world_overlap_fraction(sct, ct) <= 0.0:
        lo_c, hi_c = ct.bounds_ras()
        lo_s, hi_s = sct.bounds_ras()
        raise InputError(names["sct"], "does not overlap the CT in world coordinates (CT RAS bounds "
                         f"{np.round(lo_c, 1).tolist()}..{np.round(hi_c, 1).tolist()} mm, synthetic CT "
                         f"{np.round(lo_s, 1).tolist()}..{np.round(hi_s, 1).tolist()} mm); check that both belong "
                         "to the same patient and region")


def crop_to_overlap(volume: Volume, other: Volume, *, margin_mm: float = 2.0) -> Volume:
    """``volume`` cropped to the index box that covers ``other``'s field of view (+ margin)."""
    n = np.asarray(other.shape3) - 1
    corners = np.array([[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])], float)
    ijk = volume.ras_to_ijk(other.ijk_to_ras(corners))
    pad = margin_mm / volume.spacing
    lo = np.clip(np.floor(ijk.min(axis=0) - pad).astype(int), 0, np.asarray(volume.shape3) - 1)
    hi = np.clip(np.ceil(ijk.max(axis=0) + pad).astype(int) + 1, lo + 1, volume.shape3)
    return crop_volume(volume, tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True)))


def _carry_roi(roi: Volume, target: Volume, name: str, what: str) -> Volume:
    out = resample_mask_like(padded(roi), target)
    if not np.any(out.array):
        raise RoiOutsideImage(name, f"the tumour ROI is empty after carrying it onto the {what} grid through world "
                         f"coordinates: it lies outside the {what}'s field of view (after alignment)")
    return out


def _labels_on(label: Volume | None, target: Volume) -> np.ndarray | None:
    if label is None or not np.any(label.array):
        return None
    return resample(label, target.affine, target.shape3, order=0, cval=0) > 0


def _align(ct: Volume | None, sct: Volume, gre: Volume | None, centroid, roi_frame: str, p: CheckParams,
           progress: Progress):
    """Register the CT to the synthetic CT and bring the images into the ROI's frame (no CT: as given).

    Returns ``(registration, to_roi, sct_w, gre_w, ct_w)`` (``ct_w`` cropped to the overlap)."""
    registration = None
    to_roi = np.eye(4)
    sct_w, gre_w, ct_w = sct, gre, None
    if ct is not None:
        progress(0.05, "aligning CT to synthetic CT")
        # the lesion centre is in the ROI's frame; for roi_frame="ct" it serves as the focus in the
        # synthetic CT's frame too (frames agree to the headers' accuracy, well within the focus radius)
        registration = register_ct_to_sct(ct, sct, params=p.registration, focus_ras=centroid,
                                          progress=lambda f, m: progress(0.05 + 0.4 * f, m))
        t = registration.ct_to_sct_ras
        if roi_frame == "mri":
            to_roi = t
            ct_w = moved(ct, t)
        else:
            inv = np.linalg.inv(t)
            ct_w = ct
            sct_w = moved(sct, inv)
            gre_w = moved(gre, inv) if gre is not None else None
        ct_w = crop_to_overlap(ct_w, sct_w)
    return registration, to_roi, sct_w, gre_w, ct_w


def _compare_on_ct(roi: Volume, ct_w: Volume, sct_w: Volume, sct_stats, vertebrae, axis, names: dict, p: CheckParams,
                   notes: list[str], progress: Progress):
    """Lesion statistics on the CT, bone agreement, CT - sCT difference and the hyperdense voxels
    the synthetic CT misses. Returns ``(ct_stats, bone, difference, flagged, calcification)``."""
    roi_ct = _carry_roi(roi, ct_w, names["ct"], "CT")
    roi_ml = float(np.count_nonzero(roi.array)) * roi.voxel_volume_ml
    ct_ml = float(np.count_nonzero(roi_ct.array)) * ct_w.voxel_volume_ml
    if ct_ml < 0.8 * roi_ml:
        notes.append(f"only {100 * ct_ml / roi_ml:.0f} % of the tumour ROI lies inside the CT (after "
                     "alignment): the CT values describe part of the lesion")
    vert_ct = _labels_on(vertebrae, ct_w)
    sct_on_ct = resample(sct_w, ct_w.affine, ct_w.shape3, order=1, cval=np.nan)
    ct_stats = measure_lesion(ct_w, roi_ct, axis=axis, params=p.lesion, cutoffs=p.classes,
                              exclude_from_surroundings=vert_ct)
    progress(0.75, "bone agreement")
    bone = bone_agreement(ct_w, sct_on_ct, vertebrae=vert_ct, lesion=roi_ct.array > 0, params=p.bone)
    diff = ct_w.array.astype(np.float32) - sct_on_ct.astype(np.float32)
    difference = ct_w.with_array(np.nan_to_num(diff, nan=0.0).astype(np.float32), name="CT minus sCT")
    sct_hyper_on_ct = resample_mask_like(sct_stats.hyperdense, ct_w).array > 0
    flagged_arr = (ct_stats.hyperdense.array > 0) & ~sct_hyper_on_ct
    flagged = ct_w.with_array(flagged_arr.astype(np.uint8), name="sCT disagreement")
    calcification = ct_stats.calcified
    return ct_stats, bone, difference, flagged, calcification


def _section(ct_stats, sct_stats, disagrees: bool, flags, bone, registration, verdict, hint, voids, reasons,
             roi: Volume, roi_frame: str, axis, p: CheckParams) -> dict:
    """The plan.json ``synthetic_ct_check`` section."""
    return {
        "ct": ct_stats.as_dict() if ct_stats is not None else None,
        "sct": sct_stats.as_dict(),
        "disagreement": bool(disagrees),
        "flags": [f.as_dict() for f in flags],
        "bone": bone.as_dict() if bone is not None else
        {"mae_hu": None, "bias_hu": None, "n_voxels": 0, "source": "none", "reason": "no CT"},
        "registration": registration.as_dict() if registration is not None else
        {"method": "none (no CT)", "residual_mm": None},
        "verdict": verdict,
        "approach_hint": hint,
        "mri_calcification": voids.as_dict() if voids is not None else None,
        "reliable": not reasons,
        "reasons": reasons,
        "roi": {"frame": roi_frame, "volume_ml": round(float(np.count_nonzero(roi.array)) * roi.voxel_volume_ml, 3),
                "cord_axis_ras": [round(float(v), 4) for v in axis]},
        "settings": {
            "calcified_hu": p.lesion.calcified_hu,
            "calcified_hu_rationale": CALCIFIED_HU_RATIONALE,
            "visibility": (f"visible when the ROI part at least {p.lesion.visibility_contrast_hu:g} HU above the "
                           f"surrounding soft tissue is >= {p.lesion.min_visible_volume_mm3:g} mm^3 (setting)"),
            "class_cutoffs": {"faint_mean_hu": p.classes.faint_mean_hu, "partial_mean_hu": p.classes.partial_mean_hu,
                              "dense_mean_hu": p.classes.dense_mean_hu, "faint_fraction": p.classes.faint_fraction,
                              "partial_fraction": p.classes.partial_fraction},
            "class_rule": p.classes.describe(),
            "density_difference_hu": p.flags.density_difference_hu,
        },
    }


def check_synthetic_ct(sct: Volume, roi: Volume, *, ct: Volume | None = None, gre: Volume | None = None,
                       gre_sequence: str = "gre", vertebrae: Volume | None = None, cord: Volume | None = None,
                       cord_axis_ras=None, roi_frame: str = "mri", compartment: str | None = None,
                       params: CheckParams | None = None, names: dict | None = None,
                       progress: Progress = no_progress) -> CheckResult:
    """Compare a synthetic CT with the CT (and a T2*/SWI MRI) inside a tumour ROI and in bone.

    Parameters
    ----------
    sct : Volume
        Synthetic CT in HU (MRI session frame).
    roi : Volume
        Tumour mask (non-zero = tumour) on any grid, in the ``roi_frame`` world.
    ct : Volume, optional
        Real CT in HU. Without it only the MRI signal-void check can flag the synthetic CT.
    gre : Volume, optional
        T2*-weighted gradient-echo or SWI magnitude image (MRI session frame).
    gre_sequence : str
        ``"gre"`` or ``"swi"`` (reported).
    vertebrae, cord : Volume, optional
        Label maps in the ``roi_frame`` world (vertebrae: bone for the agreement; cord: its axis).
    cord_axis_ras : array (3,), optional
        Cord axis (unit RAS vector in the ``roi_frame`` world); overrides ``cord``.
    roi_frame : {"mri", "ct"}
    compartment : str, optional
        Tumour compartment, if known (qualifies the approach hint).
    params : CheckParams
    names : dict
        Input names for error messages (keys ct, sct, roi, gre).
    progress : callable(fraction, message)

    Raises
    ------
    InputError
        CT or synthetic CT not in HU, CT and synthetic CT not overlapping, ROI empty or outside
        an image after propagation.
    """
    params = params or CheckParams()
    names = {**DEFAULT_NAMES, **(names or {})}
    if roi_frame not in ("mri", "ct"):
        raise ValueError(f"roi_frame must be 'mri' or 'ct', got {roi_frame!r}")
    if roi_frame == "ct" and ct is None:
        raise ValueError("roi_frame='ct' needs a CT")
    require_hounsfield(sct, names["sct"])
    if ct is not None:
        require_hounsfield(ct, names["ct"])
        _require_overlap(ct, sct, names)
    if not np.any(roi.array):
        raise InputError(names["roi"], "the tumour ROI is empty (no non-zero voxel)")
    centroid = mask_centroid_ras(roi)
    if cord_axis_ras is not None:
        axis = np.asarray(cord_axis_ras, float) / np.linalg.norm(cord_axis_ras)
    else:
        axis = cord_axis(cord, near_ras=centroid) if cord is not None else SUPERIOR.copy()
    p = params
    notes: list[str] = []

    registration, to_roi, sct_w, gre_w, ct_w = _align(ct, sct, gre, centroid, roi_frame, p, progress)

    progress(0.5, "lesion statistics")
    roi_sct = _carry_roi(roi, sct_w, names["sct"], "synthetic CT")
    sct_stats = measure_lesion(sct_w, roi_sct, axis=axis, params=p.lesion, cutoffs=p.classes,
                               exclude_from_surroundings=_labels_on(vertebrae, sct_w))
    ct_stats = bone = difference = flagged = calcification = None
    if ct_w is not None:
        ct_stats, bone, difference, flagged, calcification = _compare_on_ct(roi, ct_w, sct_w, sct_stats, vertebrae, axis,
                                                                           names, p, notes, progress)
    voids = None
    if gre_w is not None:
        progress(0.85, "signal voids on T2*/SWI")
        try:
            voids = detect_signal_voids(gre_w, roi, params=p.voids, sequence=gre_sequence)
        except ValueError as exc:
            raise InputError(names["gre"], str(exc)) from None
    flags = lesion_flags(ct_stats, sct_stats, params=p.flags, voids=voids)
    disagrees = is_disagreement(flags)
    if ct_w is None and voids is not None and voids.suggests_calcification and disagrees:
        flagged = voids.mask
    elif flagged is not None and disagrees and not np.any(flagged.array):
        flagged = flagged.with_array((resample_mask_like(padded(roi), flagged).array > 0).astype(np.uint8))
    elif flagged is not None and not disagrees:
        flagged = flagged.with_array(np.zeros(flagged.shape3, np.uint8))
    flags += context_flags(bone=bone, registration=registration, bone_mae_warn_hu=p.bone.mae_warn_hu,
                           residual_warn_mm=p.registration.residual_warn_mm, lesion_disagrees=disagrees,
                           notes=notes)
    verdict, hint = verdict_and_hint(ct_stats, sct_stats, flags, voids=voids, cutoffs=p.classes,
                                     compartment=compartment)
    reasons = [f.message for f in flags if f.code in ("REGISTRATION_RESIDUAL_HIGH", "ROI_NOTE")]
    if ct_stats is None:
        reasons.append("no CT: lesion density on the synthetic CT cannot be checked")
    section = _section(ct_stats, sct_stats, disagrees, flags, bone, registration, verdict, hint, voids, reasons, roi,
                       roi_frame, axis, p)
    progress(1.0, "synthetic CT check done")
    return CheckResult(section, ct_stats, sct_stats, bone, registration, voids, flags, difference, flagged,
                       calcification, to_roi)
