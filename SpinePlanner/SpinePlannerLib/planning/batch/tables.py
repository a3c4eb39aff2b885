"""Cohort tables across a batch, read from the cases' ``plan.json`` files.

Outputs in ``<batch>/cohort/``:

* ``sct_cohort_cases.csv``, ``sct_cohort_summary.csv``, ``sct_cohort.json``: the published
  synthetic CT validation layout over the cases whose plan has a synthetic CT check (the tables
  of :mod:`SyntheticCTCheckLib.cohort`, the same code ``spineplan sct-cohort`` uses);
* ``cohort_cases.csv``: one row per planned case (:data:`KEY_COLUMNS`: compartment, size, levels,
  Setzer type, synthetic CT verdict, feeders found, SINS band when an ``approach`` section has one);
* ``cohort.json``: the rows plus counts (compartments, Setzer types, SINS bands, feeders).

and ``<batch>/index.html``: every case with its status, key results and a link to its
``report.html`` (or ``plan.json``), the counts and the synthetic CT summary table.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path

from SpinePlannerLib.core.imageio import write_text_atomic
from SpinePlannerLib.planning.pipeline import write_json_atomic

KEY_COLUMNS = ("compartment", "tumor_volume_ml", "max_axial_diameter_mm", "craniocaudal_extent_mm",
               "levels_spanned", "setzer_type", "tractography_reliable", "sct_disagreement", "ct_class", "sct_class",
               "feeders_found", "adamkiewicz", "sins_total", "sins_band", "failed_stages", "n_warnings")
SINS_BANDS = ((0, 6, "stable"), (7, 12, "indeterminate"), (13, 18, "unstable"))
"""SINS totals: 0-6 stable, 7-12 indeterminate, 13-18 unstable (Fisher et al. 2010)."""
COHORT_DIR = "cohort"


def sins_band(total) -> str | None:
    """The published SINS band of a total score (None when the total is unknown)."""
    if not isinstance(total, int | float) or isinstance(total, bool):
        return None
    return next((name for lo, hi, name in SINS_BANDS if lo <= total <= hi), None)


def _sins(plan: dict) -> tuple:
    sins = (plan.get("approach") or {}).get("sins") if isinstance(plan.get("approach"), dict) else None
    if not isinstance(sins, dict):
        return None, None
    total = next((sins[k] for k in ("total", "score", "total_points") if isinstance(sins.get(k), int | float)), None)
    return total, sins.get("band") or sins_band(total)


def key_results(plan: dict) -> dict:
    """The per-case summary of a plan (values of :data:`KEY_COLUMNS`; None where not planned)."""
    tumor, tract = plan.get("tumor") or {}, plan.get("tractography") or {}
    sct, vessels = plan.get("synthetic_ct_check") or {}, plan.get("vessels") or {}
    adam = vessels.get("adamkiewicz_candidate") or {}
    total, band = _sins(plan)
    return {
        "compartment": tumor.get("compartment"),
        "tumor_volume_ml": tumor.get("volume_ml"),
        "max_axial_diameter_mm": tumor.get("max_axial_diameter_mm"),
        "craniocaudal_extent_mm": tumor.get("craniocaudal_extent_mm"),
        "levels_spanned": ";".join(tumor.get("levels_spanned") or []) or None,
        "setzer_type": tract.get("setzer_type"),
        "tractography_reliable": tract.get("reliable"),
        "sct_disagreement": sct.get("disagreement"),
        "ct_class": (sct.get("ct") or {}).get("calcification_class"),
        "sct_class": (sct.get("sct") or {}).get("calcification_class"),
        "feeders_found": len(vessels.get("feeders") or []) if vessels.get("detectable") else None,
        "adamkiewicz": f"{adam.get('level')} {adam.get('side')}" if adam.get("present") else None,
        "sins_total": total, "sins_band": band,
        "failed_stages": ";".join(k for k, v in (plan.get("stages") or {}).items() if v.get("status") == "failed"),
        "n_warnings": len(plan.get("warnings") or []),
    }


def planned_cases(out_dir, entries: list[dict]) -> list[tuple[str, dict]]:
    """``(case id, plan)`` for every entry with a complete plan (status done or reused), in batch order."""
    out = []
    for e in entries:
        path = Path(out_dir) / e["case"] / "plan.json"
        if e.get("status") in ("done", "reused") and path.is_file():
            out.append((e["case"], json.loads(path.read_text())))
    return out


def sct_cohort(plans: list[tuple[str, dict]]) -> dict | None:
    """The synthetic CT cohort result (layout of ``sct-cohort``) over plans with a CT and sCT check."""
    from SyntheticCTCheckLib.cohort import case_row, summary_table

    sections = {cid: p["synthetic_ct_check"] for cid, p in plans
                if (p.get("stages") or {}).get("synthetic_ct_check", {}).get("status") == "done"
                and isinstance((p.get("synthetic_ct_check") or {}).get("ct"), dict)}
    if not sections:
        return None
    rows = [case_row(cid, s) for cid, s in sections.items()]
    table, notes = summary_table(rows)
    settings = [json.dumps(s.get("settings"), sort_keys=True) for s in sections.values()]
    if len(set(settings)) > 1:
        notes.append("the cases were checked with different settings (see each plan's synthetic_ct_check.settings)")
    return {"n_cases": len(rows), "cases": rows, "table": table, "notes": notes,
            "settings": next(iter(sections.values())).get("settings"), "sections": sections}


def cohort_summary(plans: list[tuple[str, dict]]) -> dict:
    """Per-case key results and their counts across the cohort."""
    rows = [{"case": cid, **key_results(p)} for cid, p in plans]

    def count(key):
        return dict(Counter(str(r[key]) for r in rows if r[key] is not None))

    feeders = [r["feeders_found"] for r in rows if r["feeders_found"] is not None]
    return {"n_cases": len(rows), "cases": rows,
            "counts": {"compartment": count("compartment"), "setzer_type": count("setzer_type"),
                       "sins_band": count("sins_band"), "sct_disagreement": count("sct_disagreement"),
                       "cases_with_feeders": sum(1 for f in feeders if f > 0),
                       "cases_with_vessels_detectable": len(feeders), "feeders_total": sum(feeders)}}


def write_cohort_tables(out_dir, entries: list[dict]) -> dict[str, str]:
    """Write the cohort tables and ``index.html`` of a batch; returns name -> path."""
    from SyntheticCTCheckLib.cohort import csv_text, write_cohort

    out_dir = Path(out_dir)
    folder = out_dir / COHORT_DIR
    plans = planned_cases(out_dir, entries)
    summary = cohort_summary(plans)
    written = {"cohort_csv": str(write_text_atomic(folder / "cohort_cases.csv",
                                                   csv_text(summary["cases"], ("case",) + KEY_COLUMNS)))}
    sct = sct_cohort(plans)
    summary["sct_cohort"] = sct and {k: sct[k] for k in ("n_cases", "table", "notes")}
    write_json_atomic(summary, folder / "cohort.json")
    written["cohort_json"] = str(folder / "cohort.json")
    if sct:
        written.update(write_cohort(sct, folder))
    write_text_atomic(out_dir / "index.html", summary_html(out_dir, entries, summary, sct))
    written["html"] = str(out_dir / "index.html")
    return written


def _cell(value) -> str:
    return "" if value is None else html.escape(str(value))


def _table(header, rows) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def summary_html(out_dir: Path, entries: list[dict], summary: dict, sct: dict | None) -> str:
    """A self-contained HTML page: cases (linked to their report or plan), counts, sCT summary."""
    keys = {r["case"]: r for r in summary["cases"]}
    rows = []
    for e in entries:
        cid = e["case"]
        link = next((f"{cid}/{n}" for n in ("report.html", "plan.json") if (out_dir / cid / n).is_file()), None)
        name = f'<a href="{html.escape(link)}">{html.escape(cid)}</a>' if link else html.escape(cid)
        k = keys.get(cid, {})
        rows.append([name, _cell(e.get("status")), _cell(e.get("reason")), _cell(e.get("seconds"))]
                    + [_cell(k.get(c)) for c in ("compartment", "setzer_type", "sct_disagreement", "feeders_found",
                                                  "sins_band")])
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>spineplan batch</title>",
             "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #999;padding:2px 6px;text-align:left}</style></head><body>",
             f"<h1>Batch: {len(entries)} cases</h1><p>Decision support: every number comes from the case's plan.json.</p>",
             _table(["case", "status", "reason", "seconds", "compartment", "Setzer type", "sCT disagreement",
                     "feeders found", "SINS band"], rows), "<h2>Counts</h2>",
             _table(["measure", "counts"], [[html.escape(k), _cell(json.dumps(v))] for k, v in summary["counts"].items()])]
    if sct:
        parts += ["<h2>Synthetic CT vs CT (published validation layout)</h2>",
                  _table(["measure", "real CT", "synthetic CT", "p (paired t)", "p (Wilcoxon)"],
                         [[_cell(r[c]) for c in ("measure", "real_ct", "synthetic_ct", "p_paired_t", "p_wilcoxon")]
                          for r in sct["table"]]),
                  "".join(f"<p>{_cell(n)}</p>" for n in sct["notes"])]
    parts.append("</body></html>\n")
    return "".join(parts)


def sct_cohort_from_batch(batch_dir) -> dict:
    """The ``sct-cohort`` tables of a finished batch folder (``batch.json``): a view, nothing re-run.

    Raises
    ------
    InputError
        No ``batch.json`` or no case with a synthetic CT check.
    """
    from SpinePlannerLib.core.errors import InputError

    path = Path(batch_dir) / "batch.json"
    if not path.is_file():
        raise InputError(str(batch_dir), "not a batch folder (no batch.json): run `spineplan batch` first")
    entries = json.loads(path.read_text())["cases"]
    sct = sct_cohort(planned_cases(batch_dir, entries))
    if sct is None:
        raise InputError(str(batch_dir), "no planned case has a synthetic CT check (needs ct and sct inputs)")
    return sct
