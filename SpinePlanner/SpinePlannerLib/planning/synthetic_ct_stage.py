"""Planning stage ``synthetic_ct_check``: synthetic CT vs CT in the lesion and in bone.

The adapter between the planning context and :mod:`SyntheticCTCheckLib` (which knows nothing of
the context). Reads ``ctx.volumes`` (``sct``; ``ct``; ``swi`` or ``gre`` when the MRI has a
T2*/SWI image), the tumor ROI ``ctx.labels["tumor"]`` (and ``vertebrae``, ``cord``) on the
reference grid, and the measurement result (cord axis, compartment) when that stage ran. Returns
a :class:`SyntheticCTResult`: the ``synthetic_ct_check`` plan section, the label maps
``calcification`` (CT >= the calcified threshold inside the ROI) and ``sct_disagreement`` (the
flagged region), the export ``synthetic_ct_check/ct_minus_sct.nii.gz`` and, through
:func:`SyntheticCTCheckLib.mrml_sct.add_sct_result`, the difference volume with a diverging color
map, the flagged segment, the CT alignment transform and a result table in the scene.
Overrides: ``ctx.params["synthetic_ct_check"]`` (see :class:`~SyntheticCTCheckLib.params.CheckParams`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from SpinePlannerLib.core.geometry import resample_mask_like
from SpinePlannerLib.core.imageio import write_volume
from SpinePlannerLib.planning.context import PlanContext, Progress, StageResult, StageSkipped
from SyntheticCTCheckLib.check import CheckResult, RoiOutsideImage, check_synthetic_ct
from SyntheticCTCheckLib.masks import padded
from SyntheticCTCheckLib.params import CheckParams

SECTION = "synthetic_ct_check"
T2STAR_ROLES = ("swi", "gre")
"""Context roles of a susceptibility-weighted / T2* gradient-echo MRI (first present is used)."""
DIFFERENCE_EXPORT = "synthetic_ct_check/ct_minus_sct.nii.gz"


@dataclass
class SyntheticCTResult(StageResult):
    """Result of the ``synthetic_ct_check`` stage.

    Attributes
    ----------
    check : CheckResult
        Statistics, verdict, difference volume (CT - sCT, HU), flagged and calcified masks.
    roi_frame : str
        ``"ct"`` when the ROI lies on the CT's grid, else ``"mri"`` (the CT is then shown
        through its alignment transform).
    """

    check: CheckResult | None = None
    roi_frame: str = "mri"

    def to_plan(self) -> dict[str, dict]:
        return {SECTION: self.check.section}

    def write_exports(self, folder: Path) -> dict[str, str]:
        if self.check.difference is None:
            return {}
        write_volume(self.check.difference, Path(folder) / DIFFERENCE_EXPORT)
        return {"sct_difference": DIFFERENCE_EXPORT}


def run(ctx: PlanContext, progress: Progress) -> SyntheticCTResult:
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
    params = CheckParams.from_dict(ctx.params.get(SECTION))
    roi_frame = "ct" if ctx.reference_role == "ct" else "mri"
    measured = ctx.result("tumor_measurement")
    roi_name = "--tumor-seg" if "tumor" in ctx.given_labels else "tumor segmentation"
    try:
        check = check_synthetic_ct(
            sct, roi, ct=ct, gre=ctx.volumes.get(gre_role) if gre_role else None, gre_sequence=gre_role or "gre",
            vertebrae=ctx.label("vertebrae"), cord=ctx.label("cord"),
            cord_axis_ras=getattr(measured, "cord_axis_ras", None), roi_frame=roi_frame,
            compartment=getattr(measured, "compartment", None), params=params,
            names={"roi": roi_name, "gre": f"--{gre_role}" if gre_role else "--swi"}, progress=progress)
    except RoiOutsideImage as exc:  # the lesion is outside an image: this stage cannot run, the plan can
        raise RuntimeError(str(exc)) from None
    result = SyntheticCTResult(check=check, roi_frame=roi_frame)
    ref = ctx.reference
    for label, mask in (("calcification", check.calcification), ("sct_disagreement", check.flagged)):
        if mask is not None and np.any(mask.array) and label not in ctx.labels:
            carried = resample_mask_like(padded(mask), ref)
            if np.any(carried.array):
                result.labels[label] = carried
    if check.section["disagreement"]:
        result.warnings.append(f"synthetic CT: {check.section['verdict']}")
    return result
