"""Approach advisor per compartment: each suggestion with its rule, the numbers that triggered it,
its source, and what the missing inputs prevent (L1: plain values in, dicts out).

Sources (``CLINICAL.md``): intramedullary corridors section 7 and Setzer 2010 (section 3);
IDEM hardness and exposure from the calcification/synthetic-CT study (section 4); vessels and
embolisation section 5; SINS and NOMS sections 6-6a; the mobile nerve-sheath tumor warning
section 7. Conventions that are not from these sources are marked ``"convention"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SRC_CORRIDOR = "CLINICAL.md 7 (myelotomy corridor by axial position)"
SRC_SETZER = "Setzer M et al. 2010 (tract-tumor relationship and cleavage plane); CLINICAL.md 3"
SRC_IDEM = "calcification and synthetic-CT study of intradural tumors; CLINICAL.md 4"
SRC_VESSELS = "CLINICAL.md 5 (pre-operative embolisation, Adamkiewicz and anterior spinal artery)"
SRC_SINS = "Fisher CG et al. Spine 2010 (SINS); CLINICAL.md 6"
SRC_NOMS = "Laufer I et al. Oncologist 2013 (NOMS); Bilsky MH et al. 2010; CLINICAL.md 6a"
SRC_MOBILE = "CLINICAL.md 7 (nerve sheath tumors are mobile: half a vertebra to five vertebrae)"
SRC_VA = "CLINICAL.md 7 (transverse foramen involvement: vertebral artery)"


@dataclass
class ApproachInputs:
    """What the advisor reads (filled by the planning stage from the other stages' results)."""

    compartment: str
    levels_spanned: list[str] = field(default_factory=list)
    levels_reliable: bool = False
    exposure_levels: list[str] = field(default_factory=list)
    position: dict = field(default_factory=dict)
    setzer_type: int | None = None
    tract_reliable: bool | None = None
    resectability: str | None = None
    cyst_ml: float | None = None
    calcification_class: str | None = None
    ct_mean_hu: float | None = None
    canal_occupancy: float | None = None
    hypervascular: bool | None = None
    n_feeders: int | None = None
    vessels_detectable: bool | None = None
    adamkiewicz_level: str | None = None
    adamkiewicz_side: str | None = None
    embolization_risk: bool = False
    sins: dict | None = None
    bilsky: dict | None = None
    has_ct: bool = False
    has_dwi: bool = False
    has_angio: bool = False
    foramen_lateral_mm: float = 12.0
    """Tumor reaching farther than this from the canal centre line extends into the foramen."""
    transverse_foramen_mm: float = 20.0
    """At cervical levels, tumor reaching this far laterally comes near the transverse foramen."""
    fixation_levels_each_side: int = 2


def _s(topic: str, text: str, rule: str, numbers: dict | None = None, source: str = "", limited_by=()) -> dict:
    return {"topic": topic, "suggestion": text, "rule": rule, "numbers": numbers or {}, "source": source,
            "limited_by": list(limited_by)}


def _exposure(inp: ApproachInputs) -> dict:
    lv = inp.exposure_levels or inp.levels_spanned
    return _s("exposure", f"expose {lv[0]}-{lv[-1]}" if len(lv) > 1 else (f"expose {lv[0]}" if lv else
              "levels to expose unknown (no vertebral levels)"),
              "levels whose bodies overlap the tumor's poles plus the exposure margin", {"levels": lv},
              "convention", [] if inp.levels_reliable else ["levels counted from an assumed anchor: confirm the level "
                                                             "intra-operatively (fluoroscopy count)"])


def intramedullary(inp: ApproachInputs) -> list[dict]:
    out = []
    pos = inp.position
    if pos.get("available"):
        corridor = {"dorsal-midline": "posterior median sulcus (midline myelotomy)",
                    "central": "posterior median sulcus (midline myelotomy)",
                    "dorsolateral": f"posterolateral sulcus (dorsal root entry zone), {pos['side']} side",
                    "ventral": "anterior median fissure (anterior approach, corpectomy)"}[pos["sector"]]
        out.append(_s("myelotomy corridor", corridor,
                      "dorsal midline or central -> posterior median sulcus; dorsolateral -> posterolateral sulcus; "
                      "ventral -> anterior median fissure",
                      {k: pos[k] for k in ("lateral_mm", "dorsal_mm", "cord_radius_mm", "sector",
                                           "depth_from_dorsal_surface_mm")}, SRC_CORRIDOR))
    else:
        out.append(_s("myelotomy corridor", "not assessable", "needs cord and tumor masks", {}, SRC_CORRIDOR,
                      [pos.get("reason", "no position")]))
    if inp.setzer_type is not None:
        plane = {1: "cleavage plane likely: gross-total resection plausible",
                 2: "plane uncertain: partial resection possible",
                 3: "no plane expected: biopsy or limited resection"}[inp.setzer_type]
        out.append(_s("resectability", plane, "Setzer type 1 displaced / 2 crossing / 3 encased",
                      {"setzer_type": inp.setzer_type, "resectability": inp.resectability}, SRC_SETZER))
    else:
        out.append(_s("resectability", "no tract-based verdict", "Setzer type needs a reliable DTI acquisition", {},
                      SRC_SETZER, ["no DWI given" if not inp.has_dwi else "DWI insufficient for tractography"]))
    if inp.cyst_ml:
        out.append(_s("cysts", f"polar cyst(s) of {inp.cyst_ml:.2f} mL: drain through the myelotomy; they need not be "
                      "resected", "cysts segmented beside the tumor", {"cyst_ml": inp.cyst_ml}, "convention"))
    out.append(_s("monitoring", "intra-operative neuromonitoring (MEP/SSEP, D-wave) and ultrasound to localise the "
                  "poles before the myelotomy", "intramedullary resection", {}, "convention"))
    return out


def idem(inp: ApproachInputs) -> list[dict]:
    out = []
    pos = inp.position
    hard = inp.calcification_class in ("dense", "partial")
    lacking = [] if inp.has_ct else ["no CT: hardness (calcification) unknown"]
    if pos.get("available"):
        out.append(_s("position", f"{pos['side']}, {pos['dentate']} to the dentate ligament",
                      f"tumor centre more than {2.0:g} mm dorsal/ventral of the cord's coronal mid-plane",
                      {k: pos[k] for k in ("lateral_mm", "dorsal_mm", "side", "dentate")}, SRC_IDEM))
    if inp.calcification_class is not None:
        if hard:
            text = ("hard (calcified) tumor: midline/bilateral exposure (laminectomy or laminoplasty), resection from "
                    "the periphery inwards with a bone-cutting ultrasonic tip, no pressure on the cord")
        else:
            text = ("soft tumor: unilateral hemilaminectomy, central debulking first (soft tip ultrasonic aspirator), "
                    "then dissection; feasible even ventral to the dentate ligament")
        out.append(_s("hardness and exposure", text, "calcification class on CT (cut-offs are settings)",
                      {"calcification_class": inp.calcification_class, "ct_mean_hu": inp.ct_mean_hu,
                       "canal_occupancy": inp.canal_occupancy}, SRC_IDEM))
    else:
        out.append(_s("hardness and exposure", "hardness unknown", "needs CT", {}, SRC_IDEM, lacking))
    if pos.get("available") and pos.get("max_lateral_extent_mm", 0) > inp.foramen_lateral_mm:
        out.append(_s("foraminal extension", "tumor reaches into the foramen (dumbbell?): plan foraminal exposure "
                      "(facetectomy may need fixation)", f"tumor > {inp.foramen_lateral_mm:g} mm from the canal centre line",
                      {"max_lateral_extent_mm": pos["max_lateral_extent_mm"]}, "convention"))
    cervical = [lv for lv in inp.levels_spanned if lv.upper().startswith("C")]
    if cervical and pos.get("available") and pos.get("max_lateral_extent_mm", 0) >= inp.transverse_foramen_mm:
        out.append(_s("vertebral artery", f"tumor reaches {pos['max_lateral_extent_mm']:.0f} mm laterally at "
                      f"{', '.join(cervical)}: vertebral artery (transverse foramen) proximity; review the angiography",
                      f"cervical level and lateral extent >= {inp.transverse_foramen_mm:g} mm", {}, SRC_VA))
    out.append(_s("level confirmation", "if a nerve sheath tumor: it is mobile (half a vertebra to five vertebrae); "
                  "confirm its level by intra-operative ultrasound before opening the dura",
                  "IDEM tumor", {"levels_spanned": inp.levels_spanned}, SRC_MOBILE))
    return out


def extradural(inp: ApproachInputs) -> list[dict]:
    out = []
    sins, bil = inp.sins or {}, inp.bilsky or {}
    rng = sins.get("total_range")
    if rng:
        lo, hi = rng
        if lo >= 7:
            text = "decompression with fixation (SINS >= 7: potentially unstable or unstable)"
        elif hi <= 6:
            text = "decompression alone is mechanically acceptable (SINS 0-6: stable)"
        else:
            text = "fixation undecided: the SINS range crosses 6/7 (give pain; see undecided elements)"
        lim = [f"SINS element undecided: {n}" for n in sins.get("undecided", [])]
        out.append(_s("stability", text, "SINS 0-6 stable, 7-12 indeterminate, 13-18 unstable",
                      {"sins_total_range": rng, "bands": sins.get("bands_possible")}, SRC_SINS, lim))
        if lo >= 7:
            out.append(_s("instrumentation", f"instrument {inp.fixation_levels_each_side} levels above and below the "
                          "involved levels (posterior pedicle screws)", "common practice for thoracolumbar metastases",
                          {"levels_spanned": inp.levels_spanned}, "convention"))
    grade = bil.get("grade")
    if grade is not None:
        if grade in ("2", "3"):
            text = "high-grade epidural compression: separation surgery (circumferential decompression) before radiosurgery"
        elif grade == "1c":
            text = "grade 1c: separation surgery or radiosurgery (1c is discussed either way)"
        else:
            text = "low-grade epidural compression: radiotherapy/radiosurgery without separation surgery is a NOMS branch"
        out.append(_s("decompression", text, "Bilsky grade (worst cross-section)", {"bilsky_grade": grade}, SRC_NOMS))
    else:
        out.append(_s("decompression", "compression grade not assessable", "needs sac and cord masks", {}, SRC_NOMS,
                      [bil.get("reason", "no Bilsky grade")]))
    if inp.hypervascular or inp.embolization_risk:
        risk = (" Caution: a feeder shares its segmental artery with the Adamkiewicz candidate "
                f"({inp.adamkiewicz_level or '?'} {inp.adamkiewicz_side or ''}): embolisation risks cord infarction; "
                "confirm on DSA" if inp.embolization_risk else "")
        out.append(_s("embolisation", "pre-operative embolisation of the feeders (within 48 h before surgery)." + risk,
                      "feeding vessels found on angiography", {"n_feeders": inp.n_feeders}, SRC_VESSELS))
    elif not inp.has_angio or inp.vessels_detectable is False:
        out.append(_s("embolisation", "vascularity not assessed", "needs an angiography on which vessels are detectable",
                      {}, SRC_VESSELS, ["no angiography" if not inp.has_angio else "vessels not detectable"]))
    return out


def advise(inp: ApproachInputs) -> dict:
    """The approach section's advice for the tumor's compartment."""
    by = {"intramedullary": intramedullary, "intradural_extramedullary": idem, "extradural": extradural}
    if inp.compartment not in by:
        return {"compartment": inp.compartment, "suggestions": [],
                "reason": "compartment unknown: no compartment-specific advice"}
    out = [_exposure(inp), *by[inp.compartment](inp)]
    lacking = sorted({x for s in out for x in s["limited_by"]})
    return {"compartment": inp.compartment, "suggestions": out, "limited_by": lacking,
            "note": "decision support: each suggestion names its rule and source; the surgeon decides"}
