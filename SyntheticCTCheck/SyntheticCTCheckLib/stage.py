"""Planning stage ``synthetic_ct_check``: synthetic CT vs CT in the lesion and in bone.

Reads ``ctx.volumes`` (``sct``; ``ct``; ``swi`` or ``gre`` when the MRI has a T2*/SWI image),
the tumour ROI ``ctx.labels["tumor"]`` (and ``vertebrae``, ``cord``) on the reference grid,
and ``ctx.plan["tumor"]`` (cord axis, compartment) when the measurement stage ran. Writes
``ctx.plan["synthetic_ct_check"]``, the label maps ``calcification`` (CT >= the calcified
threshold inside the ROI) and ``sct_disagreement`` (the flagged region), the export
``synthetic_ct_check/ct_minus_sct.nii.gz`` and, in the scene, the difference volume with a
diverging color map, the flagged segment, the CT alignment transform and a result table.
Overrides: ``ctx.params["synthetic_ct_check"]`` (see :class:`~SyntheticCTCheckLib.params.CheckParams`).
"""

from __future__ import annotations

import numpy as np

from SpinePlannerLib.core.geometry import resample_mask_like
from SpinePlannerLib.core.imageio import write_volume
from SpinePlannerLib.core.params import from_dict
from SpinePlannerLib.planning.context import PlanContext, Progress, StageSkipped

from .check import RoiOutsideImage, check_synthetic_ct
from .masks import padded
from .params import CheckParams

SECTION = "synthetic_ct_check"
T2STAR_ROLES = ("swi", "gre")
"""Context roles of a susceptibility-weighted / T2* gradient-echo MRI (first present is used)."""
DIFFERENCE_EXPORT = "synthetic_ct_check/ct_minus_sct.nii.gz"


def run(ctx: PlanContext, progress: Progress) -> None:
    sct = ctx.volumes.get("sct")
    if sct is None:
        raise StageSkipped("no synthetic CT (--sct)")
    ct = ctx.volumes.get("ct")
    gre_role = next((r for r in T2STAR_ROLES if r in ctx.volumes), None)
    if ct is None and gre_role is None:
        raise StageSkipped("no CT (--ct) to compare the synthetic CT with, and no T2*/SWI MRI to look for "
                           "signal voids")
    roi = ctx.label("tumor")
    if roi is None:
        raise StageSkipped("no tumor ROI (give --tumor-seg or --tumor-seed)")
    params = from_dict(CheckParams, ctx.params.get(SECTION), where=SECTION)
    roi_frame = "ct" if ctx.reference_role == "ct" else "mri"
    tumor_plan = ctx.plan.get("tumor") or {}
    try:
        result = check_synthetic_ct(
            sct, roi, ct=ct, gre=ctx.volumes.get(gre_role) if gre_role else None, gre_sequence=gre_role or "gre",
            vertebrae=ctx.label("vertebrae"), cord=ctx.label("cord"), cord_axis_ras=tumor_plan.get("cord_axis_ras"),
            roi_frame=roi_frame, compartment=tumor_plan.get("compartment"), params=params,
            names={"gre": gre_role or "swi"}, progress=progress)
    except RoiOutsideImage as exc:  # the lesion is outside an image: this stage cannot run, the plan can
        raise RuntimeError(str(exc)) from None
    ctx.plan[SECTION] = result.section
    ref = ctx.reference
    for label, mask in (("calcification", result.calcification), ("sct_disagreement", result.flagged)):
        if mask is not None and np.any(mask.array) and label not in ctx.labels:
            carried = resample_mask_like(padded(mask), ref)
            if np.any(carried.array):
                ctx.labels[label] = carried
    if result.difference is not None and ctx.staging_dir is not None:
        write_volume(result.difference, ctx.staging_dir / DIFFERENCE_EXPORT)
        ctx.extra.setdefault("exports", {})["sct_difference"] = DIFFERENCE_EXPORT
    if result.section["disagreement"]:
        ctx.warn(f"synthetic CT: {result.section['verdict']}")

    def build(core, ctx_, nodes):
        from .mrml_sct import build_sct_nodes

        nodes.update(build_sct_nodes(core.scene, core.logics, result,
                                     ct_node=nodes.get("ct") if roi_frame == "mri" else None))

    ctx.scene_builders.append(build)
