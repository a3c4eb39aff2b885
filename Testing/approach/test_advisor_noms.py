"""Approach advisor and NOMS rules: each rule changes the advice when its input changes."""

import pytest

from SpinePlannerLib.approach.advisor import ApproachInputs, advise
from SpinePlannerLib.approach.noms import noms_summary, radiosensitivity


def topics(inp: ApproachInputs) -> dict:
    return {s["topic"]: s for s in advise(inp)["suggestions"]}


POS = {"available": True, "lateral_mm": 0.0, "dorsal_mm": 0.0, "cord_radius_mm": 5.0, "sector": "central",
       "side": "midline", "dentate": "lateral", "depth_from_dorsal_surface_mm": 1.0, "max_lateral_extent_mm": 6.0}


@pytest.mark.parametrize(("sector", "side", "words"), [
    ("dorsal-midline", "midline", "posterior median sulcus"),
    ("central", "midline", "posterior median sulcus"),
    ("dorsolateral", "left", "posterolateral sulcus (dorsal root entry zone), left"),
    ("ventral", "midline", "anterior median fissure"),
])
def test_myelotomy_corridor_follows_the_axial_position(sector, side, words):
    s = topics(ApproachInputs("intramedullary", position={**POS, "sector": sector, "side": side}))
    assert words in s["myelotomy corridor"]["suggestion"]


@pytest.mark.parametrize(("setzer", "words"), [(1, "plane likely"), (2, "uncertain"), (3, "biopsy")])
def test_resectability_follows_the_setzer_type(setzer, words):
    assert words in topics(ApproachInputs("intramedullary", position=POS, setzer_type=setzer))["resectability"]["suggestion"]


def test_without_dwi_the_resectability_says_why():
    s = topics(ApproachInputs("intramedullary", position=POS))["resectability"]
    assert s["suggestion"] == "no tract-based verdict" and s["limited_by"] == ["no DWI given"]


@pytest.mark.parametrize(("cls", "words"), [("dense", "laminectomy or laminoplasty"), ("partial", "bone-cutting"),
                                            ("faint", "hemilaminectomy"), ("none", "hemilaminectomy")])
def test_idem_exposure_follows_hardness(cls, words):
    s = topics(ApproachInputs("intradural_extramedullary", position=POS, calcification_class=cls, has_ct=True))
    assert words in s["hardness and exposure"]["suggestion"]


def test_idem_without_ct_lacks_hardness_and_says_so():
    adv = advise(ApproachInputs("intradural_extramedullary", position=POS))
    assert "no CT: hardness (calcification) unknown" in adv["limited_by"]


def test_cervical_idem_reaching_the_transverse_foramen_warns_of_the_vertebral_artery():
    far = {**POS, "max_lateral_extent_mm": 24.0}
    assert "vertebral artery" in topics(ApproachInputs("intradural_extramedullary", levels_spanned=["C4"], position=far))
    assert "vertebral artery" not in topics(ApproachInputs("intradural_extramedullary", levels_spanned=["T4"], position=far))
    assert "foraminal extension" in topics(ApproachInputs("intradural_extramedullary", position=far))


@pytest.mark.parametrize(("rng", "words"), [([3, 6], "decompression alone"), ([7, 9], "with fixation"),
                                            ([5, 8], "undecided")])
def test_extradural_stability_follows_the_sins_range(rng, words):
    s = topics(ApproachInputs("extradural", sins={"total_range": rng, "undecided": []}))
    assert words in s["stability"]["suggestion"]
    assert ("instrumentation" in topics(ApproachInputs("extradural", sins={"total_range": rng}))) == (rng[0] >= 7)


@pytest.mark.parametrize(("grade", "words"), [("3", "separation surgery"), ("2", "separation surgery"),
                                              ("1c", "either way"), ("1a", "low-grade")])
def test_extradural_decompression_follows_the_bilsky_grade(grade, words):
    assert words in topics(ApproachInputs("extradural", bilsky={"grade": grade}))["decompression"]["suggestion"]


def test_embolisation_needs_angiography_and_warns_about_adamkiewicz():
    assert "vascularity not assessed" in topics(ApproachInputs("extradural"))["embolisation"]["suggestion"]
    s = topics(ApproachInputs("extradural", hypervascular=True, embolization_risk=True, adamkiewicz_level="T11",
                              adamkiewicz_side="left", has_angio=True))["embolisation"]["suggestion"]
    assert "Adamkiewicz" in s and "T11 left" in s


def test_unknown_compartment_gives_no_advice():
    assert advise(ApproachInputs("unknown"))["suggestions"] == []


@pytest.mark.parametrize(("histology", "expected"), [("Renal cell carcinoma", "radioresistant"), ("melanoma", "radioresistant"),
                                                     ("multiple myeloma", "radiosensitive"), ("breast", "radiosensitive"),
                                                     ("non-small-cell lung", "radioresistant"), ("glioma", None), (None, None)])
def test_radiosensitivity_lists(histology, expected):
    assert radiosensitivity(histology) == expected


@pytest.mark.parametrize(("hist", "grade", "sins", "branch"), [
    ("lymphoma", "3", (3, 5), "conventional external-beam radiotherapy"),
    ("renal cell", "1a", (3, 5), "stereotactic radiosurgery"),
    ("renal cell", "3", (3, 5), "separation surgery, then stereotactic radiosurgery"),
    ("lymphoma", "1a", (9, 12), "surgical stabilisation"),
])
def test_noms_branches(hist, grade, sins, branch):
    out = noms_summary(bilsky_grade=grade, myelopathy=False, histology=hist, sins_total_range=sins)
    assert any(branch in b for b in out["framework_branches"]), out["framework_branches"]


def test_noms_lists_what_is_missing():
    out = noms_summary(bilsky_grade=None, myelopathy=None, histology=None, sins_total_range=(5, 8))
    assert out["framework_branches"] == [] and len(out["missing"]) == 4
