"""Planning stage ``tractography``: DTI fit, cord tracking, Setzer tract-tumor relationship.

Reads ``ctx.dwi`` and the ``cord`` / ``tumor`` label maps on the reference grid (given with
``--cord-seg`` / ``--tumor-seg`` or produced by the segmentation stage), and ``vertebrae`` with
``plan["vertebrae"]["levels"]`` for per-level counts when present. Writes
``ctx.plan["tractography"]``, the streamline files ``tracts/cord_tracts.{trx,tck,vtp}`` (RAS mm)
and, in the scene, FA/MD/AD/RD, the tensor volume and the tract model. Overrides come from
``ctx.params["tractography"]`` (see :class:`~DTITractographyLib.params.TractographyParams`).

An acquisition that cannot support tractography (too few directions, thick slices, low SNR)
ends with ``reliable: false``, its reasons and no Setzer type: the stage is *done* (it answered
the question), not failed.
"""

from __future__ import annotations

from SpinePlannerLib.core.params import from_dict
from SpinePlannerLib.measurement.lesion import classify_compartment
from SpinePlannerLib.planning.context import PlanContext, Progress, StageSkipped

from .analysis import analyze, unavailable_section
from .params import TractographyParams
from .reliability import assess_reliability
from .tensor_fit import check_gradient_scheme

SECTION = "tractography"
EXPORT_DIR = "tracts"


def level_names_from_plan(plan: dict) -> dict[int, str] | None:
    """Vertebral level index -> name from ``plan["vertebrae"]["levels"]``, tolerating a list of
    names (index = position + 1), a dict ``{index: name}`` or a list of ``{"label"/"index", "name"}``."""
    levels = (plan.get("vertebrae") or {}).get("levels")
    if not levels:
        return None
    out: dict[int, str] = {}
    if isinstance(levels, dict):
        for k, v in levels.items():
            try:
                out[int(k)] = str(v)
            except (TypeError, ValueError):
                try:
                    out[int(v)] = str(k)
                except (TypeError, ValueError):
                    continue
        return out or None
    for i, item in enumerate(levels):
        if isinstance(item, str):
            out[i + 1] = item
        elif isinstance(item, dict):
            idx = item.get("label", item.get("index", item.get("value", i + 1)))
            name = item.get("name", item.get("level", str(idx)))
            try:
                out[int(idx)] = str(name)
            except (TypeError, ValueError):
                continue
    return out or None


def tumor_compartment(ctx: PlanContext, tumor, cord) -> str | None:
    """The tumor compartment from the measurement stage, else classified here from the masks."""
    if tumor is None:
        return None
    known = (ctx.plan.get("tumor") or {}).get("compartment")
    if known:
        return known
    return classify_compartment(tumor, cord=cord, thecal_sac=ctx.label("csf"), bone=ctx.label("bone"))[0]


def run(ctx: PlanContext, progress: Progress) -> None:
    if ctx.dwi is None:
        raise StageSkipped("no diffusion MRI (--dwi with --bval/--bvec)")
    params = from_dict(TractographyParams, ctx.params.get(SECTION), where=SECTION)
    check_gradient_scheme(ctx.dwi)
    cord = ctx.label("cord")
    if cord is None:
        reliability = assess_reliability(ctx.dwi, params=params.reliability)
        ctx.plan[SECTION] = unavailable_section(reliability, "no cord segmentation to seed and bound the tracking",
                                                params)
        raise StageSkipped("no cord segmentation (give --cord-seg, or an anatomical image for the segmentation stage)")
    tumor = ctx.label("tumor")
    compartment = tumor_compartment(ctx, tumor, cord)
    result = analyze(ctx.dwi, cord, tumor, params=params, vertebrae=ctx.label("vertebrae"),
                     level_names=level_names_from_plan(ctx.plan), compartment=compartment,
                     progress=lambda f, m: progress(0.95 * f, m))
    section = result.section()
    section["compartment"] = compartment
    section["inputs"] = {"cord": "given label map" if "cord" in ctx.given_labels else "segmentation",
                         "tumor": None if tumor is None else
                         ("given label map" if "tumor" in ctx.given_labels else "segmentation")}
    ctx.plan[SECTION] = section
    if not result.reliability.reliable:
        ctx.warn("DTI: acquisition insufficient for tractography (" + "; ".join(result.reliability.reasons)
                 + "); no tract-tumor verdict given")

    if ctx.staging_dir is not None and result.streamlines:
        progress(0.97, "writing TRX, TCK and VTP")
        from .mrml_tract_files import write_tract_files

        files = write_tract_files(result, ctx.staging_dir / EXPORT_DIR)
        exports = ctx.extra.setdefault("exports", {})
        for key, path in files.items():
            exports[f"tracts_{key}"] = f"{EXPORT_DIR}/{path.name}"

    def build(core, ctx_, nodes):
        from .mrml_tracts import build_tractography_nodes

        nodes.update(build_tractography_nodes(core.scene, result))

    ctx.scene_builders.append(build)
    progress(1.0, "tractography done")
