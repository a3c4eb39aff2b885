"""NOMS framework summary (neurologic, oncologic, mechanical, systemic): branches, not orders (L1).

Source: Laufer I et al., Oncologist 2013;18:744-51 (NOMS), with the Bilsky grade for N and SINS
for M; radiosensitivity lists as commonly cited (``CLINICAL.md`` section 6a). The framework's
branch that the inputs lead to is shown as the framework's branch; S (systemic fitness) is the
clinician's.
"""

from __future__ import annotations

from SpinePlannerLib.approach.bilsky import grade_category

SOURCE = "Laufer I et al. Oncologist 2013;18:744-51 (NOMS); Bilsky 2010; Fisher 2010 (SINS); CLINICAL.md 6a"

RADIOSENSITIVE = ("lymphoma", "myeloma", "plasmacytoma", "seminoma", "breast", "prostate")
"""Histologies commonly cited as radiosensitive to conventional external-beam radiotherapy
(breast and prostate "often")."""
RADIORESISTANT = ("renal cell", "thyroid", "melanoma", "sarcoma", "colorectal", "non-small-cell lung",
                  "hepatocellular")
"""Histologies commonly cited as radioresistant to conventional radiotherapy."""


def radiosensitivity(histology: str | None) -> str | None:
    """``"radiosensitive"``, ``"radioresistant"`` or None (not given or not on either list)."""
    if not histology:
        return None
    h = histology.lower().replace("_", " ").replace("-", " ")
    if any(k.replace("-", " ") in h for k in RADIORESISTANT):
        return "radioresistant"
    if any(k in h for k in RADIOSENSITIVE):
        return "radiosensitive"
    return None


def noms_summary(*, bilsky_grade: str | None, myelopathy: bool | None, histology: str | None,
                 sins_total_range: tuple[int, int] | None) -> dict:
    """The NOMS summary with the framework branch(es) the inputs allow.

    Parameters
    ----------
    bilsky_grade : str or None
        Epidural compression grade (``"0"`` ... ``"3"``).
    myelopathy : bool or None
        Clinical myelopathy (``--myelopathy yes|no``).
    histology : str or None
        Primary histology (``--histology``), matched against :data:`RADIOSENSITIVE` /
        :data:`RADIORESISTANT`.
    sins_total_range : (int, int) or None
        SINS total (lo == hi) or range.
    """
    n_cat = grade_category(bilsky_grade)
    o = radiosensitivity(histology)
    if sins_total_range is None:
        m = None
    else:
        lo, hi = sins_total_range
        m = "unstable or potentially unstable (SINS >= 7)" if lo >= 7 else "stable (SINS <= 6)" if hi <= 6 else None
    missing = []
    if n_cat is None:
        missing.append("N: no epidural compression grade")
    if myelopathy is None:
        missing.append("N: myelopathy not given (--myelopathy yes|no)")
    if o is None:
        missing.append("O: histology not given or not on the radiosensitivity lists (--histology)")
    if m is None:
        missing.append("M: SINS range crosses 6/7 (give --pain, or elements imaging could not decide)")
    branches = []
    if m is not None and m.startswith("unstable"):
        branches.append("mechanical instability: surgical stabilisation (or cement augmentation) is considered "
                        "whatever N and O")
    if o == "radiosensitive":
        branches.append("radiosensitive histology: conventional external-beam radiotherapy whatever the grade")
    elif o == "radioresistant":
        if n_cat == "low":
            branches.append("radioresistant, low-grade compression: stereotactic radiosurgery")
        elif n_cat == "high":
            branches.append("radioresistant, high-grade compression: separation surgery, then stereotactic "
                            "radiosurgery")
        elif n_cat == "borderline":
            branches.append("radioresistant, grade 1c: radiosurgery or separation surgery (1c is treated either way)")
    if myelopathy and n_cat in ("high", "borderline"):
        branches.append("high-grade compression with myelopathy: surgical decompression is considered")
    return {
        "neurologic": {"bilsky_grade": bilsky_grade, "category": n_cat, "myelopathy": myelopathy},
        "oncologic": {"histology": histology, "radiosensitivity": o,
                      "lists": {"radiosensitive": list(RADIOSENSITIVE), "radioresistant": list(RADIORESISTANT)}},
        "mechanical": {"sins_total_range": list(sins_total_range) if sins_total_range else None, "assessment": m},
        "systemic": "systemic fitness and prognosis are the clinician's assessment (not from imaging)",
        "framework_branches": branches,
        "missing": missing,
        "note": "branches of the NOMS framework for discussion, not an order; S decides whether any applies",
        "source": SOURCE,
    }
