"""Stage: measure the tumor (and cord volume) from the label maps on the reference grid."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from SpinePlannerLib.core.geometry import mask_centroid_ras, mask_volume_ml
from SpinePlannerLib.measurement.lesion import (
    canal_occupancy,
    classify_compartment,
    cord_axis,
    cord_compression,
    lesion_widths_mm,
    levels_spanned,
)
from SpinePlannerLib.planning.context import PlanContext, Progress, StageResult, StageSkipped


@dataclass
class MeasurementResult(StageResult):
    """Result of the ``tumor_measurement`` stage.

    Attributes
    ----------
    cord_volume_ml : float or None
        Volume of the cord label map (ml), None without one.
    compartment : str or None
        ``intramedullary``, ``intradural_extramedullary``, ``extradural`` or ``unknown``; None
        when no tumor was measured.
    cord_axis_ras : np.ndarray or None
        Unit vector (RAS) of the cord's long axis near the tumor centroid.
    tumor : dict
        The measurements as reported in ``plan["tumor"]`` (volume, centroid, diameters, evidence,
        levels spanned, canal occupancy, cord compression, source).
    """

    cord_volume_ml: float | None = None
    compartment: str | None = None
    cord_axis_ras: np.ndarray | None = None
    tumor: dict = field(default_factory=dict)

    @property
    def levels_spanned(self) -> list[str]:
        return list(self.tumor.get("levels_spanned", []))

    def to_plan(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        if self.cord_volume_ml is not None:
            out["cord"] = {"volume_ml": round(self.cord_volume_ml, 3)}
        if self.tumor:
            out["tumor"] = dict(self.tumor)
        return out


def run(ctx: PlanContext, progress: Progress) -> MeasurementResult:
    cord = ctx.label("cord")
    result = MeasurementResult(cord_volume_ml=mask_volume_ml(cord) if cord is not None else None)
    tumor = ctx.label("tumor")
    if tumor is None:
        raise StageSkipped("no tumor segmentation (give --tumor-seg or --tumor-seed)", result)
    progress(0.2, "tumor centroid and volume")
    centroid = mask_centroid_ras(tumor)
    axis = cord_axis(cord, near_ras=centroid)
    progress(0.5, "diameters along the cord axis")
    compartment, evidence = classify_compartment(
        tumor, cord=cord, thecal_sac=ctx.label("csf"), bone=ctx.label("bone"))
    axial_mm, craniocaudal_mm = lesion_widths_mm(tumor, axis)
    seg = ctx.result("segmentation")
    segmented_source = getattr(seg, "tumor_source", None) or "segmentation"
    result.compartment, result.cord_axis_ras = compartment, np.asarray(axis, float)
    result.tumor = {
        "volume_ml": round(mask_volume_ml(tumor), 3),
        "centroid_ras": [round(float(c), 2) for c in centroid],
        "max_axial_diameter_mm": round(axial_mm, 2),
        "craniocaudal_extent_mm": round(craniocaudal_mm, 2),
        "compartment": compartment,
        "compartment_evidence": evidence,
        "cord_axis_ras": [round(float(c), 4) for c in axis],
        "source": "given label map" if "tumor" in ctx.given_labels else segmented_source,
    }
    progress(0.7, "levels, canal occupancy, cord compression")
    result.tumor.update(_levels_and_compression(ctx, tumor, cord, centroid, axis, compartment))
    progress(1.0, "tumor measured")
    return result


def _level_at(vertebrae: list[dict], s_mm: float) -> str | None:
    """Name of the vertebra whose body S range contains (or is nearest to) ``s_mm``."""
    best, best_d = None, None
    for v in vertebrae:
        rng = v.get("body_s_range_mm")
        if rng is None:
            continue
        d = 0.0 if rng[0] <= s_mm <= rng[1] else min(abs(s_mm - rng[0]), abs(s_mm - rng[1]))
        if best_d is None or d < best_d:
            best, best_d = v["name"], d
    return best


def _levels_and_compression(ctx: PlanContext, tumor, cord, centroid, axis, compartment) -> dict:
    out: dict = {}
    seg = ctx.result("segmentation")
    vr = getattr(seg, "vertebrae", None)
    vertebrae = vr.vertebrae if vr is not None and vr.found else []
    if vertebrae:
        out["levels_spanned"] = levels_spanned(tumor, vertebrae)
        out["levels_reliable"] = bool(vr.reliable) and vr.method != "unanchored"
        out["levels_method"] = vr.method
    else:
        out["levels_spanned"] = []
        out["levels_reliable"] = False
        out["levels_method"] = "none: " + (seg.vertebrae_reason if seg is not None else "no vertebrae labelled")
    sac = ctx.label("csf")
    if sac is not None:
        occ = canal_occupancy(tumor, sac, axis)
        if vertebrae and occ.get("slab_offset_mm") is not None:
            occ["level"] = _level_at(vertebrae, float(centroid[2] + occ["slab_offset_mm"] * axis[2]))
        out["canal_occupancy"] = occ
    else:
        out["canal_occupancy"] = {"fraction": None, "reason": "no thecal sac segmentation"}
    if compartment == "intramedullary":
        out["cord_compression"] = {"area_ratio": None, "applicable": False,
                                   "reason": "intramedullary tumor: the cord is expanded, not compressed"}
    elif cord is None:
        out["cord_compression"] = {"area_ratio": None, "applicable": False, "reason": "no cord segmentation"}
    else:
        comp = cord_compression(cord, tumor, axis)
        comp["applicable"] = comp.get("area_ratio") is not None
        if vertebrae and comp.get("slab_offset_mm") is not None:
            comp["level"] = _level_at(vertebrae, float(centroid[2] + comp["slab_offset_mm"] * axis[2]))
        out["cord_compression"] = comp
    return out
