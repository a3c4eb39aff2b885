"""Cohort mode: the synthetic-CT check over a table of cases (the ``spineplan sct-cohort`` command
is :mod:`SpinePlannerLib.cli.sct_cohort`).

``CASES`` may also be the output folder of ``spineplan batch``: the same tables are then a view
of the batch's plans (each plan's ``synthetic_ct_check`` section), nothing is run again.

``CASES.csv`` has one row per case with the columns ``ct``, ``sct`` and ``roi`` (image and
tumour-mask paths, relative to the CSV's folder or absolute) and optionally ``case`` (an id),
``swi`` or ``gre`` (T2*/SWI MRI), ``vertebrae`` (label map) and ``roi_frame`` (``mri``, the
default, when the ROI was drawn on the MRI; ``ct`` when it is on the CT).

Outputs in ``DIR``:

* ``sct_cohort_cases.csv`` - one row per case (visibility, diameters, HU, class, flags, bone);
* ``sct_cohort_summary.csv`` - the published comparison's layout: measure, real CT, synthetic
  CT, p (paired t-test), p (Wilcoxon signed-rank): tumour visible n/N, mean axial diameter,
  mean sagittal (cranio-caudal) diameter, mean HU in the tumour ROI;
* ``sct_cohort.json`` - both tables with unrounded numbers, SDs, settings and notes.

The statistics are paired over all cases (a lesion not depicted counts as 0 x 0 mm, as in the
published table). With five cases the smallest two-sided Wilcoxon p is 0.0625.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.imageio import write_text_atomic
from SpinePlannerLib.planning.pipeline import write_json_atomic

CASE_COLUMNS = ("case", "ct_visible", "sct_visible", "ct_axial_mm", "sct_axial_mm", "ct_sagittal_mm",
                "sct_sagittal_mm", "ct_mean_hu", "sct_mean_hu", "ct_median_hu", "sct_median_hu",
                "ct_calcified_ml", "sct_calcified_ml", "ct_class", "sct_class", "disagreement", "bone_mae_hu",
                "bone_bias_hu", "registration", "registration_residual_mm", "flags")
SUMMARY_COLUMNS = ("measure", "real_ct", "synthetic_ct", "p_paired_t", "p_wilcoxon")
MEASURES = (("mean axial diameter (mm)", "ct_axial_mm", "sct_axial_mm"),
            ("mean sagittal diameter (mm)", "ct_sagittal_mm", "sct_sagittal_mm"),
            ("mean HU in tumor ROI", "ct_mean_hu", "sct_mean_hu"))
OUTPUT_FILES = {"cases": "sct_cohort_cases.csv", "summary": "sct_cohort_summary.csv", "json": "sct_cohort.json"}


def read_cases(csv_path) -> list[dict]:
    """Rows of ``CASES.csv`` with paths resolved against the CSV's folder.

    Raises
    ------
    InputError
        Missing file or columns, an empty table, or an empty required cell.
    """
    path = Path(csv_path)
    if not path.is_file():
        raise InputError(str(path), "cases table not found")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = [c.strip().lower() for c in (reader.fieldnames or [])]
        missing = [c for c in ("ct", "sct", "roi") if c not in fields]
        if missing:
            raise InputError(str(path), f"missing column(s) {', '.join(missing)}; need ct, sct, roi "
                             "(optional: case, swi/gre, vertebrae, roi_frame)")
        rows = []
        for i, raw in enumerate(reader, start=2):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
            if not any(row.values()):
                continue
            for col in ("ct", "sct", "roi"):
                if not row.get(col):
                    raise InputError(f"{path.name} line {i}", f"empty '{col}' cell")
            case = {"case": row.get("case") or f"case{len(rows) + 1}", "line": i,
                    "roi_frame": (row.get("roi_frame") or "mri").lower()}
            if case["roi_frame"] not in ("mri", "ct"):
                raise InputError(f"{path.name} line {i}", f"roi_frame must be mri or ct, got {row['roi_frame']!r}")
            for col in ("ct", "sct", "roi", "swi", "gre", "vertebrae"):
                if row.get(col):
                    p = Path(row[col])
                    case[col] = str(p if p.is_absolute() else path.parent / p)
            rows.append(case)
    if not rows:
        raise InputError(str(path), "the cases table has no rows")
    return rows


def case_row(case_id: str, section: dict) -> dict:
    """One row of the per-case table from a plan ``synthetic_ct_check`` section."""
    ct, sct = section["ct"], section["sct"]
    return {
        "case": case_id,
        "ct_visible": ct["visible"], "sct_visible": sct["visible"],
        # the published table counts a lesion not seen as 0 mm (plan.json: null)
        "ct_axial_mm": ct["lesion_axial_diameter_mm"] or 0.0, "sct_axial_mm": sct["lesion_axial_diameter_mm"] or 0.0,
        "ct_sagittal_mm": ct["lesion_craniocaudal_mm"] or 0.0, "sct_sagittal_mm": sct["lesion_craniocaudal_mm"] or 0.0,
        "ct_mean_hu": ct["mean_hu"], "sct_mean_hu": sct["mean_hu"],
        "ct_median_hu": ct["median_hu"], "sct_median_hu": sct["median_hu"],
        "ct_calcified_ml": ct["calcified_volume_ml"], "sct_calcified_ml": sct["calcified_volume_ml"],
        "ct_class": ct["calcification_class"], "sct_class": sct["calcification_class"],
        "disagreement": section["disagreement"],
        "bone_mae_hu": section["bone"]["mae_hu"], "bone_bias_hu": section["bone"]["bias_hu"],
        "registration": section["registration"]["method"],
        "registration_residual_mm": section["registration"]["residual_mm"],
        "flags": ";".join(f["code"] for f in section["flags"]),
    }


def format_p(p: float | None) -> str:
    """``< 0.001`` below 0.001, three decimals otherwise, ``-`` when undefined."""
    if p is None:
        return "-"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def paired_tests(a, b) -> tuple[float | None, float | None, list[str]]:
    """Two-sided paired t-test and Wilcoxon signed-rank p-values of ``a`` vs ``b`` (None when undefined)."""
    from scipy import stats

    a = np.asarray(a, float)
    b = np.asarray(b, float)
    notes = []
    d = a - b
    if len(d) < 2:
        return None, None, ["fewer than 2 cases: no paired test"]
    if np.allclose(d, 0.0):
        return None, None, ["all paired differences are 0: no test"]
    p_t: float | None
    if np.allclose(d, d[0]):
        p_t = None
        notes.append("identical paired differences (zero variance): t-test undefined")
    else:
        p_t = float(stats.ttest_rel(a, b).pvalue)
    p_w = float(stats.wilcoxon(a, b).pvalue)
    return (p_t if p_t is not None and math.isfinite(p_t) else None), (p_w if math.isfinite(p_w) else None), notes


def summary_table(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """The published table's rows (visible n/N, mean diameters, mean HU with paired p-values)."""
    n = len(rows)
    table = [{"measure": "tumor visible", "real_ct": f"{sum(bool(r['ct_visible']) for r in rows)}/{n}",
              "synthetic_ct": f"{sum(bool(r['sct_visible']) for r in rows)}/{n}",
              "p_paired_t": "-", "p_wilcoxon": "-",
              "real_ct_value": sum(bool(r["ct_visible"]) for r in rows),
              "synthetic_ct_value": sum(bool(r["sct_visible"]) for r in rows), "n": n}]
    notes: list[str] = []
    for label, kc, ks in MEASURES:
        a = np.array([r[kc] for r in rows], float)
        b = np.array([r[ks] for r in rows], float)
        p_t, p_w, why = paired_tests(a, b)
        notes += [f"{label}: {w}" for w in why]
        unit = "" if "HU" in label else " mm"
        table.append({
            "measure": label, "real_ct": f"{a.mean():.1f}{unit}", "synthetic_ct": f"{b.mean():.1f}{unit}",
            "p_paired_t": format_p(p_t), "p_wilcoxon": format_p(p_w),
            "real_ct_value": float(a.mean()), "synthetic_ct_value": float(b.mean()),
            "real_ct_sd": float(a.std(ddof=1)) if n > 1 else None,
            "synthetic_ct_sd": float(b.std(ddof=1)) if n > 1 else None,
            "p_paired_t_value": p_t, "p_wilcoxon_value": p_w, "n": n})
    if n < 6:
        notes.append(f"n = {n}: the Wilcoxon signed-rank test cannot reach p < {2 / 2 ** n:.4f}")
    return table, notes


def csv_text(rows: list[dict], columns) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return buf.getvalue()


def run_cohort(cases: list[dict], *, params=None, progress_factory=None) -> dict:
    """Run the check on every case; returns ``{"cases": [...], "table": [...], "notes": [...], ...}``.

    ``cases`` as from :func:`read_cases`. Bad input in any case raises :class:`InputError`
    naming the case.
    """
    from SpinePlannerLib.core.imageio import read_volume
    from SpinePlannerLib.core.params import from_dict, to_flat_dict

    from .check import check_synthetic_ct
    from .params import CheckParams

    params = from_dict(CheckParams, params, where="synthetic_ct_check")
    rows, sections = [], {}
    for case in cases:
        cid = case["case"]
        label = f"case {cid} (line {case['line']})"
        progress = progress_factory(f"sct {cid}") if progress_factory else (lambda f, m: None)
        vols = {k: read_volume(case[k], f"{label} {k}") for k in ("ct", "sct", "roi", "swi", "gre", "vertebrae")
                if case.get(k)}
        t2s = "swi" if "swi" in vols else ("gre" if "gre" in vols else None)
        try:
            result = check_synthetic_ct(
                vols["sct"], vols["roi"], ct=vols["ct"], gre=vols.get(t2s) if t2s else None,
                gre_sequence=t2s or "gre", vertebrae=vols.get("vertebrae"), roi_frame=case["roi_frame"],
                params=params, names={k: f"{label} {k}" for k in ("ct", "sct", "roi")} | {"gre": f"{label} {t2s}"},
                progress=progress)
        except ValueError as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(label, str(exc)) from None
        sections[cid] = result.section
        rows.append(case_row(cid, result.section))
    table, notes = summary_table(rows)
    return {"n_cases": len(rows), "cases": rows, "table": table, "notes": notes,
            "settings": to_flat_dict(params), "sections": sections}


def write_cohort(result: dict, out_dir) -> dict[str, str]:
    """Write the per-case CSV, the summary CSV and the JSON into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / v for k, v in OUTPUT_FILES.items()}
    write_text_atomic(paths["cases"], csv_text(result["cases"], CASE_COLUMNS))
    write_text_atomic(paths["summary"], csv_text(result["table"], SUMMARY_COLUMNS))
    write_json_atomic(result, paths["json"])
    return {k: str(v) for k, v in paths.items()}


def main_cohort(csv_path, out_dir, *, params=None, progress_factory=None) -> dict:
    """Read ``CASES.csv``, check every case, write the tables to ``out_dir``; returns the result dict."""
    result = run_cohort(read_cases(csv_path), params=params, progress_factory=progress_factory)
    result["outputs"] = write_cohort(result, out_dir)
    return result
