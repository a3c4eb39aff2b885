"""The plan's ``summary`` block: the facts a surgeon reads first, as short strings with units.

Computed from the plan dict only (never from stage internals), so ``plan.json`` and the report's
first page say the same thing. Lengths in mm, volumes in mL, CT density in HU, FA unitless.

Warning severity (``high`` > ``caution`` > ``note``) is a presentation rule of this module, not a
clinical grading: stage failures, embolization risks and a synthetic CT that disagrees with CT in
the lesion are ``high``; assumptions that change a level name, a verdict or a measurement are
``caution``; everything else is a ``note``.
"""

from __future__ import annotations

SEVERITY_ORDER = ("high", "caution", "note")

_HIGH_WORDS = ("failed", "embolization", "embolisation", "infarction", "cannot replace ct", "not depicted")
_CAUTION_WORDS = ("confirm", "may not", "assum", "insufficient", "not reliable", "approximat", "not found",
                  "not labelled", "not detectable", "cut", "kept")

_COMPARTMENT_NAMES = {
    "intramedullary": "intramedullary",
    "intradural_extramedullary": "intradural extramedullary (IDEM)",
    "extradural": "extradural",
    "unknown": "compartment unknown",
}


def _num(value, fmt: str, unit: str = "") -> str | None:
    if value is None:
        return None
    return f"{format(value, fmt)}{(' ' + unit) if unit else ''}"


def warning_severity(text: str) -> str:
    """``high``, ``caution`` or ``note`` for a plain-text plan warning (keyword rule, see module doc)."""
    low = text.lower()
    if any(w in low for w in _HIGH_WORDS):
        return "high"
    if any(w in low for w in _CAUTION_WORDS):
        return "caution"
    return "note"


def _case(plan: dict) -> dict:
    demo = plan.get("demo") or {}
    stages = plan.get("stages") or {}
    return {
        "name": (f"phantom {demo['phantom_kind']} (seed {demo.get('seed', 0)})" if demo.get("phantom_kind")
                 else "patient case"),
        "created_utc": plan.get("created_utc", ""),
        "inputs": sorted(k for k in (plan.get("inputs") or {}) if k not in ("bval", "bvec")),
        "reference_image": plan.get("reference_role"),
        "stages": {k: v.get("status", "") for k, v in stages.items()},
    }


def _levels(t: dict) -> str | None:
    levels = t.get("levels_spanned") or []
    if not levels:
        return None
    text = levels[0] if len(levels) == 1 else f"{levels[0]}–{levels[-1]}"
    if t.get("levels_reliable") is False:
        text += f" (named from the {t.get('levels_method', 'an assumed anchor')}: confirm)"
    return text


def _tumor(plan: dict) -> dict:
    t = plan.get("tumor") or {}
    if not t.get("volume_ml"):
        return {"found": False}
    axial, cc = t.get("max_axial_diameter_mm"), t.get("craniocaudal_extent_mm")
    occ = t.get("canal_occupancy") or {}
    return {
        "found": True,
        "compartment": _COMPARTMENT_NAMES.get(t.get("compartment", "unknown"), t.get("compartment")),
        "levels": _levels(t),
        "size": (f"{axial:.1f} mm axial × {cc:.1f} mm cranio-caudal" if axial is not None and cc is not None
                 else None),
        "volume": _num(t.get("volume_ml"), ".2f", "mL"),
        "canal_occupancy": (f"{100 * occ['fraction']:.0f} % of the canal at {occ.get('level') or 'its widest'}"
                            if occ.get("fraction") is not None else None),
        "centroid_ras_mm": t.get("centroid_ras"),
    }


def _tracts_verdict(tr: dict) -> dict:
    if not tr.get("reliable", False):
        return {"topic": "tracts (DTI)", "text": "no Setzer type: " + "; ".join(tr.get("reasons") or ["not reliable"])}
    if tr.get("setzer_type") is None:
        why = tr.get("rule") or tr.get("resectability") or "no verdict"
        return {"topic": "tracts (DTI)", "text": f"no Setzer type ({tr.get('pattern', 'indeterminate')}): {why}"}
    head = tr.get("resectability", "").split(". Decision support")[0]
    return {"topic": "tracts (DTI)",
            "text": f"{head} (FA in tumor {tr.get('fa_tumor')}, around it {tr.get('fa_peritumoral')})"}


def _sct_verdict(s: dict) -> dict:
    ct = s.get("ct") or {}
    sct = s.get("sct") or {}
    if ct:
        dens = (f"CT {ct.get('mean_hu'):.0f} HU class {ct.get('calcification_class')}, "
                f"synthetic CT {sct.get('mean_hu'):.0f} HU class {sct.get('calcification_class')}")
    else:
        dens = f"no CT; synthetic CT {sct.get('mean_hu', 0):.0f} HU"
    agree = "DISAGREE in the lesion" if s.get("disagreement") else "agree in the lesion"
    return {"topic": "calcification / synthetic CT", "text": f"{dens}: {agree}"}


def _vessels_verdict(v: dict) -> dict:
    if not v.get("detectable", False):
        return {"topic": "vessels", "text": f"not assessed: {v.get('reason') or 'vessels not detectable'}"}
    feeders = v.get("feeders") or []
    parts = [f"{len(feeders)} feeding/draining candidate{'s' if len(feeders) != 1 else ''}"]
    if feeders:
        parts[0] += " (" + ", ".join(
            f"#{f.get('rank', i + 1)} {f.get('level') or '?'} {f.get('side') or ''} {f['diameter_mm']:.1f} mm".replace("  ", " ")
            for i, f in enumerate(feeders[:4])) + ")"
    ak = v.get("adamkiewicz_candidate") or {}
    if ak.get("present"):
        parts.append(f"Adamkiewicz candidate {ak.get('level')} {ak.get('side')}"
                     + (f", {ak['diameter_mm']:.1f} mm" if ak.get("diameter_mm") is not None else ""))
    else:
        parts.append("no Adamkiewicz candidate found")
    return {"topic": "vessels", "text": "; ".join(parts)}


def _approach_verdicts(a: dict) -> list[dict]:
    """SINS (total or range with its band(s)), Bilsky grade, NOMS branches and the approach advice."""
    out = []
    sins = a.get("sins") or {}
    if sins.get("applicable") is False:
        out.append({"topic": "SINS", "text": f"not applicable: {sins.get('reason', '')}"})
    elif sins.get("total_range"):
        lo, hi = sins["total_range"]
        total = f"{lo}" if lo == hi else f"{lo}-{hi}"
        bands = "/".join(sins.get("bands_possible") or [])
        open_ = f"; not decided from imaging: {', '.join(sins['undecided'])}" if sins.get("undecided") else ""
        out.append({"topic": "SINS", "text": f"{total} ({bands}){open_}"})
    bilsky = a.get("bilsky") or {}
    if bilsky.get("grade") is not None:
        out.append({"topic": "Bilsky grade", "text": f"{bilsky['grade']} ({bilsky.get('category')})"})
    elif bilsky.get("reason"):
        out.append({"topic": "Bilsky grade", "text": f"not graded: {bilsky['reason']}"})
    branches = (a.get("noms") or {}).get("framework_branches") or []
    if branches:
        out.append({"topic": "NOMS", "text": "; ".join(branches)})
    for s in (a.get("advice") or {}).get("suggestions", []):
        if s.get("topic") != "exposure":
            out.append({"topic": f"approach: {s['topic']}", "text": s["suggestion"]})
    traj = a.get("trajectory")
    if traj:
        near = ", ".join(f"{k} {v} mm" for k, v in (traj.get("structures_within_clearance_mm") or {}).items())
        out.append({"topic": "trajectory", "text": f"{traj['length_mm']} mm from the {traj['entry_basis']}"
                    + (f"; within {traj['clearance_mm']} mm: {near}" if near else "")})
    return out


def _verdicts(plan: dict) -> list[dict]:
    out = []
    if plan.get("tractography"):
        out.append(_tracts_verdict(plan["tractography"]))
    if plan.get("synthetic_ct_check"):
        out.append(_sct_verdict(plan["synthetic_ct_check"]))
    if plan.get("vessels"):
        out.append(_vessels_verdict(plan["vessels"]))
    if isinstance(plan.get("approach"), dict):
        out.extend(_approach_verdicts(plan["approach"]))
    return out


def _warnings(plan: dict) -> list[dict]:
    seen, out = set(), []
    texts = list(plan.get("warnings") or [])
    for f in (plan.get("synthetic_ct_check") or {}).get("flags") or []:
        if f.get("severity") in ("warning", "critical"):
            texts.append(f"synthetic CT: {f['message']}" if f["severity"] == "warning"
                         else f"synthetic CT cannot replace CT: {f['message']}")
    for text in texts:
        if text in seen:
            continue
        seen.add(text)
        out.append({"severity": warning_severity(text), "text": text})
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    return sorted(out, key=lambda w: rank[w["severity"]])  # stable: plan order within a severity


def _not_assessed(plan: dict) -> list[dict]:
    out = []
    for name, st in (plan.get("stages") or {}).items():
        if st.get("status") in ("skipped", "failed"):
            out.append({"what": name.replace("_", " "), "why": f"{st['status']}: {st.get('reason') or 'no reason given'}"})
    tr = plan.get("tractography") or {}
    if tr and not tr.get("reliable", True):
        out.append({"what": "tract-tumor relationship (Setzer type)", "why": "; ".join(tr.get("reasons") or [])})
    v = plan.get("vessels") or {}
    if v and not v.get("detectable", True):
        out.append({"what": "feeding vessels", "why": v.get("reason", "")})
    seg = plan.get("segmentation") or {}
    for key in ("cyst", "edema"):
        info = seg.get(key) or {}
        if info and not info.get("segmented", True):
            out.append({"what": key, "why": info.get("reason", "")})
    comp = (plan.get("tumor") or {}).get("cord_compression") or {}
    if comp and comp.get("applicable") is False:
        out.append({"what": "cord compression", "why": comp.get("reason", "")})
    vert = plan.get("vertebrae") or {}
    if vert and not vert.get("found", True):
        out.append({"what": "vertebral levels", "why": vert.get("reason", "")})
    return out


def build_summary(plan: dict) -> dict:
    """The ``summary`` block of ``plan`` (see the schema): case, tumor, verdicts, warnings, not assessed."""
    return {
        "case": _case(plan),
        "tumor": _tumor(plan),
        "verdicts": _verdicts(plan),
        "warnings": _warnings(plan),
        "not_assessed": _not_assessed(plan),
    }
