"""Stage: measure the tumor (and cord volume) from the label maps on the reference grid."""

from __future__ import annotations

from .context import PlanContext, Progress, StageSkipped
from .geometry import mask_centroid_ras, mask_volume_ml
from .measure import classify_compartment, cord_axis, extent_along_mm, max_axial_diameter_mm


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
    section = ctx.plan.get("tumor", {})
    section.update({
        "volume_ml": round(mask_volume_ml(tumor), 3),
        "centroid_ras": [round(float(c), 2) for c in centroid],
        "max_axial_diameter_mm": round(max_axial_diameter_mm(tumor, axis), 2),
        "craniocaudal_extent_mm": round(extent_along_mm(tumor, axis), 2),
        "compartment": compartment,
        "compartment_evidence": evidence,
        "cord_axis_ras": [round(float(c), 4) for c in axis],
        "source": "given label map" if "tumor" in ctx.given_labels else ctx.plan.get("tumor", {}).get("source", "segmentation"),
    })
    ctx.plan["tumor"] = section
    progress(1.0, "tumor measured")
