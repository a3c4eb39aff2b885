"""Stage ``approach``: SINS, Bilsky grade, NOMS and the compartment-specific approach with a
planned trajectory, from the typed results of the earlier stages (never from plan.json).

Clinical inputs that imaging cannot give come from ``params["clinical"]`` (the CLI's ``--pain``,
``--myelopathy``, ``--histology``; the SpinePlanner module's fields); settings from
``params["approach"]`` (:class:`~.params.ApproachParams`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from SpinePlannerLib.approach.advisor import ApproachInputs, advise
from SpinePlannerLib.approach.bilsky import bilsky_grade
from SpinePlannerLib.approach.noms import noms_summary
from SpinePlannerLib.approach.params import ApproachParams, ClinicalInputs
from SpinePlannerLib.approach.position import tumor_position
from SpinePlannerLib.approach.sins_imaging import sins_from_imaging
from SpinePlannerLib.approach.trajectory import plan_trajectory
from SpinePlannerLib.core.params import from_dict, to_dict
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.measurement.lesion import levels_spanned
from SpinePlannerLib.planning.context import PlanContext, Progress, StageResult, StageSkipped

SCHEMA_NOTE = "decision support: pre-filled from imaging with the measurements, rules and sources behind each item"


@dataclass
class ApproachResult(StageResult):
    """Result of the ``approach`` stage: the plan section and the planned trajectory (RAS mm)."""

    section: dict = field(default_factory=dict)
    trajectory: dict | None = None

    def to_plan(self) -> dict[str, dict]:
        return {"approach": self.section}


def _corridor_direction(compartment: str, pos: dict, sins: dict) -> np.ndarray:
    """Unit RAS direction from the target towards the entry for the compartment's corridor."""
    right, ant = np.asarray(pos["right_ras"]), np.asarray(pos["anterior_ras"])
    side = 1.0 if pos["side"] == "right" else -1.0 if pos["side"] == "left" else 0.0
    if compartment == "intramedullary":
        if pos["sector"] == "ventral":
            return ant
        tilt = np.deg2rad(25.0) if pos["sector"] == "dorsolateral" else 0.0
    elif compartment == "intradural_extramedullary":
        tilt = np.deg2rad(30.0) if pos["dentate"] != "dorsal" or pos["side"] != "midline" else 0.0
    else:
        involved = (sins.get("elements", {}).get("posterolateral", {}).get("evidence", {}).get("sides_involved") or [])
        if len(involved) == 1:
            side = 1.0 if involved[0] == "right" else -1.0
        tilt = np.deg2rad(20.0) if side else 0.0
    d = -ant * np.cos(tilt) + side * right * np.sin(tilt)
    return d / np.linalg.norm(d)


def _vessel_masks(ctx: PlanContext) -> dict[str, Volume]:
    roles = ctx.label("vessels")
    if roles is None:
        return {}
    out = {}
    for name, code in (("feeders", 2), ("Adamkiewicz candidate", 3), ("anterior spinal artery", 4), ("vessels", 1)):
        m = roles.array == code
        if m.any():
            out[name] = roles.with_array(m.astype(np.uint8))
    return out


def _inputs(ctx: PlanContext, meas, pos: dict, sins: dict, bil: dict, exposure: list[str], prm) -> ApproachInputs:
    tract, sct, ves, seg = (ctx.result(n) for n in ("tractography", "synthetic_ct_check", "vessels", "segmentation"))
    tsec = getattr(tract, "section", {}) or {}
    ct_stats = (sct.check.section.get("ct") or {}) if sct is not None and sct.check is not None else {}
    an = getattr(ves, "analysis", None)
    emb = bool(an is not None and any("emboli" in w.lower() for w in an.warnings))
    cyst = getattr(seg, "cyst_record", {}) or {}
    return ApproachInputs(
        compartment=meas.compartment or "unknown", levels_spanned=meas.levels_spanned,
        levels_reliable=bool(meas.tumor.get("levels_reliable")), exposure_levels=exposure, position=pos,
        setzer_type=tsec.get("setzer_type"), tract_reliable=tsec.get("reliable"), resectability=tsec.get("resectability"),
        cyst_ml=cyst.get("volume_ml"), calcification_class=ct_stats.get("calcification_class"),
        ct_mean_hu=ct_stats.get("mean_hu"), canal_occupancy=(meas.tumor.get("canal_occupancy") or {}).get("fraction"),
        hypervascular=(len(an.feeders) > 0) if an is not None and an.detectable and an.tumor_assessed else None,
        n_feeders=len(an.feeders) if an is not None else None,
        vessels_detectable=an.detectable if an is not None else None,
        adamkiewicz_level=(an.adamkiewicz or {}).get("level") if an is not None else None,
        adamkiewicz_side=(an.adamkiewicz or {}).get("side") if an is not None else None,
        embolization_risk=emb, sins=sins, bilsky=bil, has_ct="ct" in ctx.volumes, has_dwi=ctx.dwi is not None,
        has_angio="angio" in ctx.volumes)


def run(ctx: PlanContext, progress: Progress) -> ApproachResult:
    meas = ctx.result("tumor_measurement")
    tumor = ctx.label("tumor")
    if meas is None or tumor is None or meas.compartment is None:
        raise StageSkipped("no measured tumor: the approach needs the tumor and its compartment")
    prm = from_dict(ApproachParams, ctx.params.get("approach"), where="approach")
    clinical = from_dict(ClinicalInputs, ctx.params.get("clinical"), where="clinical")
    seg = ctx.result("segmentation")
    axis = np.asarray(meas.cord_axis_ras if meas.cord_axis_ras is not None else (0.0, 0.0, 1.0), float)
    cord, sac, verts = ctx.label("cord"), ctx.label("csf"), ctx.label("vertebrae")
    records = (getattr(seg, "vertebrae_record", {}) or {}).get("vertebrae", []) if seg is not None else []
    canal = {int(v["index"]): v.get("canal_centre_ras") or v.get("cord_centre_ras") for v in records
             if v.get("canal_centre_ras") or v.get("cord_centre_ras")}
    progress(0.1, "SINS from imaging")
    sins = sins_from_imaging(levels_spanned=meas.levels_spanned, levels_reliable=bool(meas.tumor.get("levels_reliable")),
                             vertebrae=verts, vertebra_names=seg.level_names if seg is not None else {}, tumor=tumor,
                             axis=axis, ct=ctx.volumes.get("ct"), canal_centres=canal, pain=clinical.pain,
                             params=prm, cut_levels={int(v["index"]) for v in records
                                                     if v.get("body_cut_by_field_of_view")} if records else None).as_dict()
    progress(0.4, "epidural compression grade")
    bone = ctx.label("bone") if "ct" in ctx.volumes else None  # HU bone: a lytic body is not bone
    if bone is None and verts is not None:
        bone = verts.with_array((verts.array > 0).astype(np.uint8))
    bil = bilsky_grade(tumor, sac, cord, axis, bone=bone, params=prm.bilsky).as_dict(prm.bilsky)
    progress(0.6, "position in the canal")
    pos = tumor_position(tumor, cord, axis, sac=sac)
    exposure = levels_spanned(tumor, records, margin_mm=prm.exposure_margin_mm) if records else []
    advice = advise(_inputs(ctx, meas, pos, sins, bil, exposure, prm))
    if meas.compartment == "extradural":
        noms = {"applicable": True, **noms_summary(bilsky_grade=bil["grade"], myelopathy=clinical.myelopathy,
                                                   histology=clinical.histology,
                                                   sins_total_range=tuple(sins["total_range"]))}
    else:
        noms = {"applicable": False, "reason": "NOMS is a framework for metastatic (extradural) spine disease",
                "framework_branches": [], "missing": []}
    progress(0.8, "trajectory")
    trajectory = None
    if pos.get("available"):
        target = np.asarray(pos["section_centre_ras"]) if meas.compartment == "intramedullary" else \
            tumor.ijk_to_ras(np.argwhere(tumor.array > 0)).mean(axis=0)
        structures = {"cord": cord, **_vessel_masks(ctx)} if meas.compartment != "intramedullary" else _vessel_masks(ctx)
        trajectory = plan_trajectory(target, _corridor_direction(meas.compartment, pos, sins), bone=bone,
                                     structures=structures, clearance_mm=prm.trajectory_clearance_mm, sac=sac)
        trajectory["corridor"] = next((s["suggestion"] for s in advice["suggestions"]
                                       if s["topic"] in ("myelotomy corridor", "position")), meas.compartment)
    warnings = []
    if sins.get("surgical_consultation") and sins["applicable"]:
        warnings.append(f"SINS {sins['total_range'][0]}-{sins['total_range'][1]}: surgical consultation for stability "
                        "(SINS >= 7)" if sins["total"] is None else
                        f"SINS {sins['total']} ({sins['band']}): surgical consultation for stability (SINS >= 7)")
    if bil.get("category") == "high":
        warnings.append(f"high-grade epidural spinal cord compression (Bilsky {bil['grade']})")
    section = {"compartment": meas.compartment, "clinical_inputs": dict(clinical.__dict__), "sins": sins, "bilsky": bil, "noms": noms,
               "position": pos, "advice": advice, "trajectory": trajectory, "note": SCHEMA_NOTE,
               "settings": to_dict(prm)}
    progress(1.0, "approach planned")
    return ApproachResult(warnings=warnings, section=section, trajectory=trajectory)
