"""Spinal Instability Neoplastic Score (SINS): element points, totals and bands (L1, pure).

Source: Fisher et al., Spine 2010 (the SINS table printed in the project's seed review; see
``CLINICAL.md`` section 6). Six elements, total 0-18:

============================ ==========================================================================
element                      points
============================ ==========================================================================
location                     junctional (occiput-C2, C7-T2, T11-L1, L5-S1) 3; mobile (C3-C6, L2-L4) 2;
                             semi-rigid (T3-T10) 1; rigid (S2-S5) 0
pain                         mechanical 3; occasional, not mechanical 1; none 0
bone lesion                  lytic 2; mixed 1; blastic 0
alignment                    subluxation/translation 4; de novo deformity 2; normal 0
vertebral body collapse      >= 50 % 3; < 50 % 2; none but > 50 % of the body involved 1; none 0
posterolateral involvement   bilateral 3; unilateral 1; none 0
============================ ==========================================================================

Bands: 0-6 stable, 7-12 indeterminate (possibly impending instability), 13-18 unstable; a total
of 7 or more warrants surgical consultation. An element that imaging cannot decide (pain, which
is clinical; bone quality without CT, ...) is reported with ``points=None`` and the range of points
it may take, so the total becomes a range and the band(s) that range allows are listed.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

SOURCE = "Fisher CG et al. Spine 2010;35:E1221-9 (SINS); CLINICAL.md section 6"

ELEMENT_MAX = {"location": 3, "pain": 3, "bone_lesion": 2, "alignment": 4, "collapse": 3, "posterolateral": 3}
"""Maximum points per element (their sum is 18)."""

BANDS = ((0, 6, "stable"), (7, 12, "indeterminate"), (13, 18, "unstable"))
"""``(lowest, highest, band)`` of the total."""

SURGICAL_CONSULTATION_FROM = 7
"""Totals from which the SINS authors recommend surgical consultation."""

PAIN_POINTS = {"mechanical": 3, "occasional": 1, "none": 0}
LESION_POINTS = {"lytic": 2, "mixed": 1, "blastic": 0}
ALIGNMENT_POINTS = {"subluxation/translation": 4, "de novo deformity": 2, "normal": 0}
COLLAPSE_POINTS = {">= 50 % collapse": 3, "< 50 % collapse": 2, "no collapse, > 50 % of the body involved": 1,
                   "none": 0}
POSTEROLATERAL_POINTS = {"bilateral": 3, "unilateral": 1, "none": 0}

LOCATION_POINTS = {"junctional": 3, "mobile": 2, "semi-rigid": 1, "rigid": 0}


@dataclass
class SinsElement:
    """One SINS element.

    Attributes
    ----------
    name : str
        Key of :data:`ELEMENT_MAX`.
    points : int or None
        Points given; ``None`` when imaging (or the user) could not decide the element.
    points_range : tuple[int, int]
        The points the element may take: ``(points, points)`` when decided.
    finding : str
        The category in the SINS table's words (``"lytic"``, ``"junctional"``, ...), or why it
        is undecided.
    confidence : str
        ``"high"``, ``"moderate"``, ``"low"`` or ``"not assessable"``.
    source : str
        ``"imaging"``, ``"clinical input"`` or ``"not given"``.
    evidence : dict
        The measurements behind it, with units in the key names.
    rule : str
        The rule applied, with any cut-off (settings say so).
    """

    name: str
    points: int | None
    finding: str
    confidence: str
    source: str = "imaging"
    evidence: dict = field(default_factory=dict)
    rule: str = ""
    points_range: tuple[int, int] = (0, 0)

    def __post_init__(self):
        if self.name not in ELEMENT_MAX:
            raise ValueError(f"unknown SINS element {self.name!r}")
        top = ELEMENT_MAX[self.name]
        if self.points is None:
            lo, hi = self.points_range if self.points_range != (0, 0) else (0, top)
        else:
            if not 0 <= self.points <= top:
                raise ValueError(f"SINS {self.name} points must lie in [0, {top}], got {self.points}")
            lo = hi = int(self.points)
        if not 0 <= lo <= hi <= top:
            raise ValueError(f"SINS {self.name} points range must lie in [0, {top}], got {(lo, hi)}")
        self.points_range = (int(lo), int(hi))

    def as_dict(self) -> dict:
        out = asdict(self)
        out["points_range"] = list(self.points_range)
        return out


def undecided(name: str, reason: str, *, source: str = "not given", evidence: dict | None = None,
              points_range: tuple[int, int] | None = None) -> SinsElement:
    """An element imaging cannot decide: every point value stays possible (or ``points_range``)."""
    return SinsElement(name, None, reason, "not assessable", source=source, evidence=evidence or {},
                       points_range=points_range or (0, ELEMENT_MAX[name]))


def band_of(total: int) -> str:
    """SINS band of a total (0-18)."""
    for lo, hi, band in BANDS:
        if lo <= total <= hi:
            return band
    raise ValueError(f"SINS total must lie in [0, 18], got {total}")


@dataclass
class SinsScore:
    """SINS elements with their total (or range of totals) and band(s)."""

    elements: list[SinsElement]
    not_applicable: str | None = None
    """Why SINS does not apply (no vertebra involved: SINS scores neoplastic disease of the column)."""

    def __post_init__(self):
        names = [e.name for e in self.elements]
        if sorted(names) != sorted(ELEMENT_MAX):
            raise ValueError(f"SINS needs each element once ({', '.join(ELEMENT_MAX)}), got {names}")

    @property
    def complete(self) -> bool:
        return all(e.points is not None for e in self.elements)

    @property
    def total_range(self) -> tuple[int, int]:
        return (sum(e.points_range[0] for e in self.elements), sum(e.points_range[1] for e in self.elements))

    @property
    def total(self) -> int | None:
        return self.total_range[0] if self.complete else None

    @property
    def imaging_subtotal(self) -> int:
        """Points of the decided elements (without pain when pain was not given)."""
        return sum(e.points for e in self.elements if e.points is not None)

    @property
    def bands_possible(self) -> list[str]:
        lo, hi = self.total_range
        return [band for b_lo, b_hi, band in BANDS if b_lo <= hi and lo <= b_hi]

    def element(self, name: str) -> SinsElement:
        return next(e for e in self.elements if e.name == name)

    def as_dict(self) -> dict:
        lo, hi = self.total_range
        bands = self.bands_possible
        return {
            "applicable": self.not_applicable is None,
            "reason": self.not_applicable or "",
            "elements": {e.name: e.as_dict() for e in self.elements},
            "complete": self.complete,
            "total": self.total,
            "imaging_subtotal": self.imaging_subtotal,
            "total_range": [lo, hi],
            "band": bands[0] if len(bands) == 1 else None,
            "bands_possible": bands,
            "surgical_consultation": (True if lo >= SURGICAL_CONSULTATION_FROM else
                                      False if hi < SURGICAL_CONSULTATION_FROM else None),
            "undecided": [e.name for e in self.elements if e.points is None],
            "source": SOURCE,
        }


# -- element rules (categories -> points) --------------------------------------------------------
_LEVEL = re.compile(r"^(C|T|L|S)(\d{1,2})$")
_ORDER = {"C": 0, "T": 7, "L": 19, "S": 24}


def level_number(name: str) -> int | None:
    """Position of a level in the column (C1 = 1 ... C7 = 7, T1 = 8 ... L5 = 24, S1 = 25 ...);
    ``None`` for unnamed levels (``V3``) or names outside C1-S5 (and C0/occiput = 0)."""
    if name.upper() in ("C0", "OCCIPUT"):
        return 0
    m = _LEVEL.match(name.upper())
    if not m:
        return None
    region, n = m.group(1), int(m.group(2))
    limits = {"C": 7, "T": 12, "L": 5, "S": 5}
    if not 1 <= n <= limits[region]:
        return None
    return _ORDER[region] + n


def spine_region(name: str) -> str | None:
    """SINS location category of one named level, or ``None`` when the name is not a level.

    Junctional: occiput-C2, C7-T2, T11-L1, L5-S1; mobile: C3-C6, L2-L4; semi-rigid: T3-T10;
    rigid: S2-S5.
    """
    n = level_number(name)
    if n is None:
        return None
    c7, t2, t11, l1, l5, s1 = 7, 9, 18, 20, 24, 25
    if n <= 2 or c7 <= n <= t2 or t11 <= n <= l1 or l5 <= n <= s1:
        return "junctional"
    if 3 <= n <= 6 or 21 <= n <= 23:
        return "mobile"
    if 10 <= n <= 17:
        return "semi-rigid"
    return "rigid"


def location_element(levels: list[str], *, reliable: bool) -> SinsElement:
    """Location from the levels the lesion spans: the most unstable (highest-scoring) one.

    Unnamed levels leave location undecided; levels counted from an assumed anchor (last rib,
    sacrum) lower the confidence, since a level off by one can change the category.
    """
    regions = {lv: spine_region(lv) for lv in levels}
    named = {lv: r for lv, r in regions.items() if r is not None}
    rule = ("highest-scoring location among the levels spanned (junctional 3, mobile 2, semi-rigid 1, "
            "rigid 0)")
    if not named:
        return undecided("location", "the levels spanned are not named (no level anchor)" if levels else
                         "no vertebral level found for the lesion", source="imaging",
                         evidence={"levels_spanned": levels})
    worst = max(named.items(), key=lambda kv: LOCATION_POINTS[kv[1]])
    conf = "high" if reliable else "moderate"
    return SinsElement("location", LOCATION_POINTS[worst[1]], worst[1], conf,
                       evidence={"levels_spanned": levels, "level_scored": worst[0],
                                 "levels_named_reliably": reliable},
                       rule=rule + ("" if reliable else "; levels counted from an assumed anchor: confirm"))


def pain_element(pain: str | None) -> SinsElement:
    """Pain is clinical: from ``--pain none|occasional|mechanical``; undecided when not given."""
    if pain is None:
        return undecided("pain", "pain is clinical and was not given (--pain none|occasional|mechanical)")
    if pain not in PAIN_POINTS:
        raise ValueError(f"pain must be one of {', '.join(PAIN_POINTS)}, got {pain!r}")
    return SinsElement("pain", PAIN_POINTS[pain], pain, "high", source="clinical input",
                       rule="mechanical 3; occasional, not mechanical 1; none 0")
