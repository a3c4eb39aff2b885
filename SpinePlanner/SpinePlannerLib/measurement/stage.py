"""Stage: measure the tumor (and cord volume) from the label maps on the reference grid."""

from __future__ import annotations

from SpinePlannerLib.core.geometry import mask_centroid_ras, mask_volume_ml
from SpinePlannerLib.measurement.lesion import (
    canal_occupancy,
    classify_compartment,
    cord_axis,
    cord_compression,
    lesion_widths_mm,
    levels_spanned,
)
from SpinePlannerLib.planning.context import PlanContext, Progress, StageSkipped


def run(ctx: PlanContext, progress: Progress) -> None:
    cord = ctx.label("cord")
    if cord is not None:
        ctx.plan["cord"] = {**ctx.plan.get("cord", {}), "volume_ml": round(mask_volume_ml(cord), 3)}
    tumor = ctx.label("tumor")
    if tumor is None:
        raise StageSkipped("no tumor segmentation (give --tumor-seg or --tumor-seed)")
    progress(0.2, "tumor centroid and volume")
    centroid = mask_centroid_ras(tumor)
    axis = cord_axis(cord, near_ras=centroid)
    progress(0.5, "diameters along the cord axis")
    compartment, evidence = classify_compartment(
        tumor, cord=cord, thecal_sac=ctx.label("csf"), bone=ctx.label("bone"))
    axial_mm, craniocaudal_mm = lesion_widths_mm(tumor, axis)
    section = ctx.plan.get("tumor", {})
    section.update({
        "volume_ml": round(mask_volume_ml(tumor), 3),
        "centroid_ras": [round(float(c), 2) for c in centroid],
        "max_axial_diameter_mm": round(axial_mm, 2),
        "craniocaudal_extent_mm": round(craniocaudal_mm, 2),
        "compartment": compartment,
        "compartment_evidence": evidence,
        "cord_axis_ras": [round(float(c), 4) for c in axis],
        "source": "given label map" if "tumor" in ctx.given_labels else ctx.plan.get("tumor", {}).get("source", "segmentation"),
    })
    progress(0.7, "levels, canal occupancy, cord compression")
    section.update(_levels_and_compression(ctx, tumor, cord, centroid, axis, compartment))
    ctx.plan["tumor"] = section
    progress(1.0, "tumor measured")


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
    vert = ctx.plan.get("vertebrae", {})
    vertebrae = vert.get("vertebrae", []) if vert.get("found") else []
    if vertebrae:
        out["levels_spanned"] = levels_spanned(tumor, vertebrae)
        out["levels_reliable"] = bool(vert.get("reliable")) and vert.get("method") != "unanchored"
        out["levels_method"] = vert.get("method", "")
    else:
        out["levels_spanned"] = []
        out["levels_reliable"] = False
        out["levels_method"] = "none: " + vert.get("reason", "no vertebrae labelled")
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
