"""SINS: exact totals and bands, and each element measured on an analytic spine with known truth."""

import pytest
from spine_column import build

from SpinePlannerLib.approach.sins import (
    ELEMENT_MAX,
    SinsElement,
    SinsScore,
    band_of,
    location_element,
    pain_element,
    spine_region,
    undecided,
)
from SpinePlannerLib.approach.sins_imaging import sins_from_imaging


def score(points: dict) -> SinsScore:
    return SinsScore([SinsElement(n, points[n], "given", "high") for n in ELEMENT_MAX])


@pytest.mark.parametrize(("total", "band"), [(0, "stable"), (6, "stable"), (7, "indeterminate"),
                                              (12, "indeterminate"), (13, "unstable"), (18, "unstable")])
def test_band_boundaries_are_exact(total, band):
    assert band_of(total) == band


def test_all_zero_is_0_stable_and_all_maximal_is_18_unstable():
    zero = score(dict.fromkeys(ELEMENT_MAX, 0)).as_dict()
    assert zero["total"] == 0 and zero["band"] == "stable" and zero["surgical_consultation"] is False
    top = score(ELEMENT_MAX).as_dict()
    assert top["total"] == 18 and top["band"] == "unstable" and top["surgical_consultation"] is True


def test_totals_6_and_7_fall_either_side_of_the_consultation_line():
    six = score({"location": 1, "pain": 1, "bone_lesion": 2, "alignment": 0, "collapse": 2, "posterolateral": 0})
    seven = score({"location": 1, "pain": 1, "bone_lesion": 2, "alignment": 0, "collapse": 2, "posterolateral": 1})
    assert (six.total, six.as_dict()["band"]) == (6, "stable")
    assert (seven.total, seven.as_dict()["band"], seven.as_dict()["surgical_consultation"]) == (7, "indeterminate", True)


def test_without_pain_the_total_is_a_range_with_its_possible_bands():
    els = [SinsElement("location", 3, "junctional", "high"), pain_element(None),
           SinsElement("bone_lesion", 2, "lytic", "high"), SinsElement("alignment", 0, "normal", "high"),
           SinsElement("collapse", 2, "< 50 % collapse", "high"), SinsElement("posterolateral", 0, "none", "high")]
    d = SinsScore(els).as_dict()
    assert d["total"] is None and d["imaging_subtotal"] == 7 and d["total_range"] == [7, 10]
    assert d["bands_possible"] == ["indeterminate"] and d["band"] == "indeterminate"
    els[-1] = SinsElement("posterolateral", 3, "bilateral", "high")
    d = SinsScore(els).as_dict()
    assert d["total_range"] == [10, 13] and d["bands_possible"] == ["indeterminate", "unstable"] and d["band"] is None
    assert d["undecided"] == ["pain"]


@pytest.mark.parametrize(("level", "region"), [("C1", "junctional"), ("C2", "junctional"), ("C3", "mobile"),
                                                ("C6", "mobile"), ("C7", "junctional"), ("T2", "junctional"),
                                                ("T3", "semi-rigid"), ("T10", "semi-rigid"), ("T11", "junctional"),
                                                ("L1", "junctional"), ("L2", "mobile"), ("L4", "mobile"),
                                                ("L5", "junctional"), ("S1", "junctional"), ("S2", "rigid"),
                                                ("S5", "rigid"), ("V3", None), ("T13", None)])
def test_location_categories_follow_the_sins_table(level, region):
    assert spine_region(level) == region


def test_location_scores_the_most_unstable_level_spanned_and_flags_assumed_names():
    el = location_element(["T10", "T11"], reliable=False)
    assert (el.points, el.finding, el.evidence["level_scored"], el.confidence) == (3, "junctional", "T11", "moderate")
    assert location_element(["V2"], reliable=False).points is None


def test_undecided_elements_keep_their_full_range():
    assert undecided("alignment", "x").points_range == (0, 4)
    with pytest.raises(ValueError):
        SinsElement("pain", 4, "x", "high")


def elements(case, **kw):
    s = sins_from_imaging(levels_spanned=["T10"], levels_reliable=True, vertebrae=case["vertebrae"],
                          vertebra_names=case["names"], tumor=case["tumor"], axis=case["axis"],
                          ct=case.get("ct"), canal_centres=case["canal_centres"], **kw)
    return s, {e.name: e for e in s.elements}


def test_small_lytic_body_lesion_scores_only_location_and_lesion():
    s, el = elements(build())
    assert (el["bone_lesion"].points, el["bone_lesion"].finding) == (2, "lytic")
    assert (el["collapse"].points, el["alignment"].points, el["posterolateral"].points) == (0, 0, 0)
    assert el["location"].points == 1
    d = s.as_dict()
    assert d["total_range"] == [3, 6] and d["bands_possible"] == ["stable"]


@pytest.mark.parametrize(("kind", "finding", "points"), [("blastic", "blastic", 0), ("mixed", "mixed", 1)])
def test_bone_lesion_density_classes(kind, finding, points):
    _, el = elements(build(tumor=kind))
    assert (el["bone_lesion"].finding, el["bone_lesion"].points) == (finding, points)


def test_without_ct_bone_lesion_is_undecided_and_widens_the_range():
    case = build()
    case.pop("ct")
    s, el = elements(case, pain="none")
    assert el["bone_lesion"].points is None and el["bone_lesion"].points_range == (0, 2)
    assert s.as_dict()["total_range"] == [1, 3]


@pytest.mark.parametrize(("scale", "finding", "points"), [(0.4, ">= 50 % collapse", 3), (0.7, "< 50 % collapse", 2),
                                                          (1.0, "none", 0)])
def test_collapse_from_body_height_against_the_neighbours(scale, finding, points):
    _, el = elements(build(height_scale=scale))
    assert (el["collapse"].finding, el["collapse"].points) == (finding, points), el["collapse"].evidence
    if scale < 1:
        assert el["collapse"].evidence["height_loss_fraction"] == pytest.approx(1 - scale, abs=0.08)


def test_body_mostly_replaced_without_collapse_scores_1():
    _, el = elements(build(tumor_radius=16.0))
    assert el["collapse"].finding == "no collapse, > 50 % of the body involved", el["collapse"].evidence
    assert el["collapse"].points == 1


@pytest.mark.parametrize(("pedicles", "finding", "points"), [(("left",), "unilateral", 1), (("right",), "unilateral", 1),
                                                             (("left", "right"), "bilateral", 3)])
def test_posterolateral_involvement_per_side(pedicles, finding, points):
    _, el = elements(build(pedicles=pedicles))
    assert (el["posterolateral"].finding, el["posterolateral"].points) == (finding, points)
    assert set(el["posterolateral"].evidence["sides_involved"]) == set(pedicles)


def test_translated_body_is_subluxation():
    _, el = elements(build(shift_a=6.0))
    assert (el["alignment"].finding, el["alignment"].points) == ("subluxation/translation", 4), el["alignment"].evidence


@pytest.mark.parametrize(("kyphosis", "finding"), [(20.0, "de novo deformity"), (4.0, "normal")])
def test_segmental_kyphosis_beyond_the_neighbours_is_a_deformity(kyphosis, finding):
    _, el = elements(build(kyphosis_deg=kyphosis))
    ev = el["alignment"].evidence
    assert el["alignment"].finding == finding, ev
    assert ev["kyphosis_across_lesion_deg"] == pytest.approx(kyphosis, abs=2.0)
