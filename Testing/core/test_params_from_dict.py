"""One parser for every parameter dataclass: nested dicts in, the dataclass out, and back."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from DTITractographyLib.params import TractographyParams
from SpinePlannerLib.core.params import from_dict, to_dict, to_flat_dict
from SpinePlannerLib.planning.params_file import SECTIONS, section_class, validate_stage_params
from SpinePlannerLib.segmentation.params import SegmentationParams
from SpinePlannerLib.vessels.params import VesselParams
from SyntheticCTCheckLib.params import CheckParams


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Inner:
    size_mm: float = 1.0
    window: tuple[float, float] = (1.0, 2.0)
    point: Optional[tuple[float, float, float]] = None  # noqa: UP045 - the typing form must work too
    mode: Literal["a", "b"] = "a"
    colour: Colour = Colour.RED
    count: int = 3
    on: bool = True

    def __post_init__(self):
        if self.size_mm <= 0:
            raise ValueError(f"size_mm must be > 0, got {self.size_mm}")


@dataclass
class Outer:
    name: str | None = None
    inner: Inner = field(default_factory=Inner)
    seeds: list = field(default_factory=list)


def test_nested_overrides_are_converted_to_the_field_types():
    p = from_dict(Outer, {"name": "x", "inner": {"window": [3, 4], "point": [1, 2, 3], "mode": "b", "colour": "blue",
                                                 "count": 5.0}, "seeds": [[1, 2, 3]]})
    assert p == Outer(name="x", inner=Inner(window=(3, 4), point=(1, 2, 3), mode="b", colour=Colour.BLUE, count=5),
                      seeds=[[1, 2, 3]])
    assert isinstance(p.inner.count, int)
    assert from_dict(Outer, {"inner.size_mm": 2.5, "inner": {"on": False}}).inner == Inner(size_mm=2.5, on=False)
    assert from_dict(Outer, None) == Outer() and from_dict(Outer, p) is p


@pytest.mark.parametrize(("data", "words"), [
    ({"inner": {"nope": 1}}, "where.inner: unknown parameter(s) ['nope']"),
    ({"nope": 1}, "where: unknown parameter(s) ['nope']"),
    ({"inner": {"size_mm": -1.0}}, "where.inner: size_mm must be > 0"),
    ({"inner": {"size_mm": "big"}}, "where.inner.size_mm: expected a number"),
    ({"inner": {"on": 1}}, "where.inner.on: expected true or false"),
    ({"inner": {"count": 2.5}}, "where.inner.count: expected an integer"),
    ({"inner": {"mode": "c"}}, "where.inner.mode: must be one of ['a', 'b']"),
    ({"inner": {"colour": "green"}}, "where.inner.colour: must be one of ['red', 'blue']"),
    ({"inner": {"window": 3}}, "where.inner.window: expected a list"),
    ({"inner": 3}, "where.inner: expected a mapping"),
    ({"name": 3}, "where.name: expected a string"),
])
def test_bad_overrides_name_the_dotted_setting(data, words):
    with pytest.raises(ValueError) as err:
        from_dict(Outer, data, where="where")
    assert words in str(err.value)


@pytest.mark.parametrize("section", list(SECTIONS))
def test_every_section_round_trips_through_json(section):
    cls = section_class(section)
    defaults = cls()
    back = from_dict(cls, json.loads(json.dumps(to_dict(defaults))), where=section)
    assert back == defaults
    assert from_dict(cls, to_flat_dict(defaults)) == defaults


def test_the_modules_short_forms_still_parse():
    seg = from_dict(SegmentationParams, {"anchor": {"level": "t12", "ras": [1, 2, 3]}, "cord": {"cord_area_mm2": [10, 200]}})
    assert seg.vertebrae.anchor_level == "T12" and seg.vertebrae.anchor_ras == (1.0, 2.0, 3.0)
    assert seg.cord.cord_area_mm2 == (10, 200)
    sct = from_dict(CheckParams, {"calcified_hu": 150, "registration.trust_headers": True})
    assert sct.lesion.calcified_hu == 150 and sct.registration.trust_headers is True
    with pytest.raises(ValueError, match="ambiguous"):
        from_dict(CheckParams, {"shell_outer_mm": 5.0})
    tract = from_dict(TractographyParams, {"fit": {"method": "restore"}})
    assert tract.fit.method == "RT"


def test_gui_dataclasses_are_recorded_as_plain_dicts():
    """The Slicer shell passes dataclasses; ctx.params (and plan.json) hold the same as a file would."""
    out = validate_stage_params({"vessels": VesselParams(feeder_margin_mm=4.0), "tractography": {"setzer": {}}})
    assert out["vessels"] == to_dict(VesselParams(feeder_margin_mm=4.0)) and out["tractography"] == {"setzer": {}}
    json.dumps(out)
