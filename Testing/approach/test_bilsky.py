"""Bilsky epidural compression grade on analytic cross-sections (oblique grid, tilted spine)."""

import numpy as np
import pytest
from spine_masks import compression_case

from SpinePlannerLib.approach.bilsky import bilsky_grade, grade_category
from SpinePlannerLib.approach.params import BilskyParams


@pytest.mark.parametrize(("front_a", "no_csf", "expected"), [
    (9.5, False, "1a"),   # epidural, 1.5 mm clear of the sac
    (5.2, False, "1b"),   # indents the sac, 1.2 mm clear of the cord
    (4.3, False, "1c"),   # touches the cord surface (0.3 mm), cord intact
    (2.0, False, "2"),    # flattens the cord, CSF behind and beside it
    (2.0, True, "3"),     # flattens the cord, sac shrunk onto it
])
def test_each_grade_is_read_from_the_worst_cross_section(front_a, no_csf, expected):
    m = compression_case(front_a, no_csf=no_csf)
    res = bilsky_grade(m["tumor"], m["sac"], m["cord"], m["axis"])
    assert res.applicable
    assert res.grade == expected, res.as_dict()


def test_cross_section_numbers_back_the_grade():
    m = compression_case(2.0)
    d = bilsky_grade(m["tumor"], m["sac"], m["cord"], m["axis"]).as_dict(BilskyParams())
    w = d["worst_section"]
    # analytic: the tumor cuts the 5 x 4 mm cord ellipse at a = 2 mm: 19.6 % of its area lost
    assert w["cord_area_ratio"] == pytest.approx(0.804, abs=0.04)
    assert w["cord_compressed"] and w["cord_abutted"]
    assert w["csf_visible_fraction"] > 0.5
    assert d["reference_section"]["cord_mm2"] == pytest.approx(np.pi * 20, rel=0.05)
    assert d["category"] == "high" and "settings" in d


def test_intradural_tumor_is_not_graded():
    m = compression_case(None)
    res = bilsky_grade(m["cord"], m["sac"], m["cord"], m["axis"])  # a "tumor" inside the cord
    assert not res.applicable and res.grade is None
    assert "intradural" in res.reason


def test_tumor_only_in_bone_is_grade_0():
    m = compression_case(12.0)  # tumor wholly in front of the canal ...
    res = bilsky_grade(m["tumor"], m["sac"], m["cord"], m["axis"], bone=m["tumor"])  # ... inside bone
    assert res.grade == "0" and res.applicable


def test_without_a_cord_no_grade_is_given():
    m = compression_case(4.0)
    res = bilsky_grade(m["tumor"], m["sac"], None, m["axis"])
    assert not res.applicable and "cord" in res.reason


def test_grade_1c_is_borderline():
    assert grade_category("1c") == "borderline"
    assert grade_category("1b") == "low" and grade_category("2") == "high"
