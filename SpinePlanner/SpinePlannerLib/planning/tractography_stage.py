"""Planning stage ``tractography``: DTI fit, cord tracking, Setzer tract-tumor relationship.

The adapter between the planning context and :mod:`DTITractographyLib` (which knows nothing of
the context). Reads ``ctx.dwi`` and the ``cord`` / ``tumor`` label maps on the reference grid
(given with ``--cord-seg`` / ``--tumor-seg`` or produced by the segmentation stage), the
``vertebrae`` label map with the segmentation result's level names for per-level counts, and the
tumor compartment of the measurement result. Returns a :class:`TractographyStageResult`: the
``tractography`` plan section, the streamline files ``tracts/cord_tracts.{trx,tck,vtp}`` (RAS mm)
and, through :func:`DTITractographyLib.mrml_tracts.add_tractography_result`, FA/MD/AD/RD, the
tensor volume and the tract model in the scene. Overrides come from ``ctx.params["tractography"]``
(see :class:`~DTITractographyLib.params.TractographyParams`).

An acquisition that cannot support tractography (too few directions, thick slices, low SNR)
ends with ``reliable: false``, its reasons and no Setzer type: the stage is *done* (it answered
the question), not failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from DTITractographyLib.analysis import TractographyResult, analyze, unavailable_section, write_tract_files
from DTITractographyLib.params import TractographyParams
from DTITractographyLib.reliability import assess_reliability
from DTITractographyLib.tensor_fit import check_gradient_scheme
from SpinePlannerLib.measurement.lesion import classify_compartment
from SpinePlannerLib.planning.context import PlanContext, Progress, StageResult, StageSkipped

SECTION = "tractography"
EXPORT_DIR = "tracts"


@dataclass
class TractographyStageResult(StageResult):
    """Result of the ``tractography`` stage.

    Attributes
    ----------
    analysis : TractographyResult or None
        Tensors, streamlines (RAS mm), relationship and Setzer verdict; None when no tracking
        was attempted (then ``section`` says why).
    compartment : str or None
        The tumor compartment the verdict was given for.
    section : dict
        The ``plan["tractography"]`` section.
    """

    analysis: TractographyResult | None = None
    compartment: str | None = None
    section: dict = field(default_factory=dict)

    def to_plan(self) -> dict[str, dict]:
        return {SECTION: self.section}

    def write_exports(self, folder: Path) -> dict[str, str]:
        if self.analysis is None or not self.analysis.streamlines:
            return {}
        files = write_tract_files(self.analysis, Path(folder) / EXPORT_DIR)
        return {f"tracts_{key}": f"{EXPORT_DIR}/{path.name}" for key, path in files.items()}


def level_names(ctx: PlanContext) -> dict[int, str] | None:
    """Vertebral level index -> name from the segmentation result; None without levels."""
    seg = ctx.result("segmentation")
    return getattr(seg, "level_names", None) or None


def tumor_compartment(ctx: PlanContext, tumor, cord) -> str | None:
    """The tumor compartment from the measurement stage, else classified here from the masks."""
    if tumor is None:
        return None
    known = getattr(ctx.result("tumor_measurement"), "compartment", None)
    if known:
        return known
    return classify_compartment(tumor, cord=cord, thecal_sac=ctx.label("csf"), bone=ctx.label("bone"))[0]


def run(ctx: PlanContext, progress: Progress) -> TractographyStageResult:
    if ctx.dwi is None:
        raise StageSkipped("no diffusion MRI (--dwi with --bval/--bvec)")
    params = TractographyParams.from_dict(ctx.params.get(SECTION))
    check_gradient_scheme(ctx.dwi)
    cord = ctx.label("cord")
    if cord is None:
        reliability = assess_reliability(ctx.dwi, params=params.reliability)
        section = unavailable_section(reliability, "no cord segmentation to seed and bound the tracking", params)
        raise StageSkipped("no cord segmentation (give --cord-seg, or an anatomical image for the segmentation stage)",
                           TractographyStageResult(section=section))
    tumor = ctx.label("tumor")
    compartment = tumor_compartment(ctx, tumor, cord)
    analysis = analyze(ctx.dwi, cord, tumor, params=params, vertebrae=ctx.label("vertebrae"),
                       level_names=level_names(ctx), compartment=compartment,
                       progress=lambda f, m: progress(0.95 * f, m))
    section = analysis.section()
    section["compartment"] = compartment
    section["inputs"] = {"cord": "given label map" if "cord" in ctx.given_labels else "segmentation",
                         "tumor": None if tumor is None else
                         ("given label map" if "tumor" in ctx.given_labels else "segmentation")}
    result = TractographyStageResult(analysis=analysis, compartment=compartment, section=section)
    if not analysis.reliability.reliable:
        result.warnings.append("DTI: acquisition insufficient for tractography ("
                               + "; ".join(analysis.reliability.reasons) + "); no tract-tumor verdict given")
    progress(1.0, "tractography done")
    return result
