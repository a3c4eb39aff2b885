"""Setzer tract-tumor classification with a confidence and decision-support wording (L1).

Setzer et al. 2010 (CLINICAL.md §3): type 1, fibers displaced around the lesion, none inside
(cleavage plane likely); type 2, some fibers pass through the lesion (plane uncertain); type 3,
fibers encased in / ending within an infiltrative lesion (no plane expected). The numeric rules
turning streamline fractions into a type are settings of :class:`SetzerParams`, tuned on the
project's phantoms and never clinical evidence; the result always carries the numbers and the
rule that decided it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .params import SetzerParams

PATTERNS = {1: "displaced", 2: "crossing", 3: "encased", None: "indeterminate"}

RESECTABILITY = {
    1: "Fibers displaced around the lesion, none inside: cleavage plane likely; gross-total resection "
       "plausible.",
    2: "Some fibers pass through the lesion: cleavage plane uncertain; consider subtotal resection guided by "
       "neuromonitoring.",
    3: "Fibers end in or are encased by the lesion (infiltrative pattern): no cleavage plane expected; "
       "biopsy or limited resection more likely appropriate.",
}
DISCLAIMER = ("Decision support from DTI tractography (Setzer 2010 types); thresholds are documented "
              "settings tuned on phantoms, not clinical evidence; confirm with the imaging and at surgery.")


@dataclass
class SetzerResult:
    """Setzer type (or None), pattern, confidence 0..1, wording, evidence numbers and rule."""

    setzer_type: int | None
    pattern: str
    confidence: float | None
    resectability: str
    rule: str
    evidence: dict = field(default_factory=dict)


def _margin(value: float, threshold: float) -> float:
    """Relative distance of ``value`` from ``threshold``, clipped to 0..1."""
    if threshold <= 0:
        return 1.0
    return float(min(1.0, abs(value - threshold) / threshold))


def classify_setzer(*, n_tumor_level: int, fraction_entering: float | None, fraction_terminating: float | None,
                    params: SetzerParams | None = None, evidence: dict | None = None) -> SetzerResult:
    """Setzer type from the relationship fractions (rules in :class:`SetzerParams`).

    Confidence is a heuristic, not a probability: 0.5 at a rule threshold rising to 1.0 when
    the deciding fractions are twice (or, below a threshold, zero times) the threshold, scaled
    down when fewer than 5 x ``min_streamlines`` tumor-level streamlines support it.
    """
    params = params or SetzerParams()
    ev = dict(evidence or {})
    ev.update({"n_tumor_level_streamlines": n_tumor_level, "fraction_entering_tumor": fraction_entering,
               "fraction_terminating_in_tumor": fraction_terminating})
    if n_tumor_level < params.min_streamlines or fraction_entering is None or fraction_terminating is None:
        return SetzerResult(None, PATTERNS[None], None,
                            f"Indeterminate: only {n_tumor_level} streamline(s) reach the tumor level (need "
                            f"{params.min_streamlines}); no tract-tumor relationship can be stated.",
                            f"n_tumor_level < min_streamlines ({params.min_streamlines})", ev)
    t3, t2 = params.terminating_type3, params.entering_type2
    if fraction_terminating >= t3:
        setzer, rule = 3, f"fraction_terminating_in_tumor {fraction_terminating:.3f} >= {t3}"
        margin = _margin(fraction_terminating, t3)
    elif fraction_entering >= t2:
        setzer = 2
        rule = (f"fraction_terminating_in_tumor {fraction_terminating:.3f} < {t3} and "
                f"fraction_entering_tumor {fraction_entering:.3f} >= {t2}")
        margin = min(_margin(fraction_entering, t2), _margin(fraction_terminating, t3))
    else:
        setzer = 1
        rule = (f"fraction_terminating_in_tumor {fraction_terminating:.3f} < {t3} and "
                f"fraction_entering_tumor {fraction_entering:.3f} < {t2}")
        margin = min(_margin(fraction_entering, t2), _margin(fraction_terminating, t3))
    support = min(1.0, (n_tumor_level / (5.0 * params.min_streamlines)) ** 0.5)
    confidence = round((0.5 + 0.5 * margin) * support, 2)
    text = f"Setzer type {setzer} ({PATTERNS[setzer]}). {RESECTABILITY[setzer]} {DISCLAIMER}"
    return SetzerResult(setzer, PATTERNS[setzer], confidence, text, rule, ev)


def indeterminate(reason: str, evidence: dict | None = None) -> SetzerResult:
    """No type: the data or the inputs cannot support one (``reason`` is shown to the user)."""
    return SetzerResult(None, PATTERNS[None], None, f"No tract-tumor verdict: {reason}", "not classified",
                        dict(evidence or {}))
