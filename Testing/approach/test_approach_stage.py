"""The approach stage on phantoms of each compartment: SINS/Bilsky/NOMS/advice/trajectory in the
plan (schema-valid), compartment-appropriate advice, trajectory markups in the scene."""

import json

import numpy as np
import pytest

from SpinePlannerLib.planning.demo import phantom_case_inputs
from SpinePlannerLib.planning.pipeline import run_plan
from SpinePlannerLib.planning.plan_schema import validate_plan

CLINICAL = {"extradural-lytic": {"pain": "mechanical", "myelopathy": False, "histology": "renal cell carcinoma"}}


@pytest.fixture(scope="module")
def planned(phantom_dir, tmp_path_factory):
    cache = {}

    def get(kind: str):
        if kind not in cache:
            case = phantom_dir(kind)
            truth = json.loads((case / "truth.json").read_text())
            inputs = phantom_case_inputs(case, truth)
            if kind in CLINICAL:
                inputs.params = {"clinical": CLINICAL[kind]}
            plan = run_plan(inputs, tmp_path_factory.mktemp(f"approach-{kind}") / "out", write_scene=False)
            cache[kind] = (plan, truth)
        return cache[kind]

    return get


def suggestions(plan) -> dict:
    return {s["topic"]: s for s in plan["approach"]["advice"]["suggestions"]}


def test_intramedullary_tumor_gets_a_midline_myelotomy_and_no_idem_hint(planned):
    plan, truth = planned("intramedullary-displacing")
    validate_plan(plan)
    assert plan["stages"]["approach"]["status"] == "done", plan["stages"]
    a = plan["approach"]
    assert a["compartment"] == "intramedullary"
    s = suggestions(plan)
    assert "posterior median sulcus" in s["myelotomy corridor"]["suggestion"]  # truth: central
    assert a["position"]["sector"] in ("central", "dorsal-midline") and truth["tumor"]["position"] == "central"
    assert "hardness and exposure" not in s and "stability" not in s
    assert s["resectability"]["numbers"]["setzer_type"] == 1
    assert a["bilsky"]["grade"] is None and not a["bilsky"]["applicable"]
    assert a["sins"]["applicable"] is False and a["noms"]["applicable"] is False
    assert not any("SINS" in w for w in plan["warnings"])
    tr = a["trajectory"]
    d = np.asarray(tr["direction_ras"])
    assert d @ np.asarray(a["position"]["anterior_ras"]) > 0.9  # entry behind, pointing forward to the tumor
    assert tr["entry_basis"] == "posterior bone surface" and 20 < tr["length_mm"] < 80


def test_calcified_idem_tumor_gets_the_hard_tumor_exposure_on_its_side(planned):
    plan, truth = planned("idem-calcified")
    a = plan["approach"]
    assert a["compartment"] == "intradural_extramedullary"
    s = suggestions(plan)
    assert "hard (calcified)" in s["hardness and exposure"]["suggestion"]
    assert a["position"]["side"] == truth["tumor"]["side"] == "left"
    assert "intra-operative ultrasound" in s["level confirmation"]["suggestion"]
    assert "myelotomy corridor" not in s


def test_lytic_metastasis_scores_sins_from_ct_and_flags_embolisation_risk(planned):
    plan, truth = planned("extradural-lytic")
    validate_plan(plan)
    a = plan["approach"]
    el = a["sins"]["elements"]
    assert (el["location"]["points"], el["location"]["evidence"]["level_scored"]) == (3, truth["tumor"]["levels_spanned"][0])
    assert (el["bone_lesion"]["finding"], el["bone_lesion"]["points"]) == ("lytic", 2)
    assert (el["pain"]["points"], el["pain"]["source"]) == (3, "clinical input")
    assert el["collapse"]["points"] in (0, 1)  # the phantom body is not collapsed
    assert el["alignment"]["finding"] == "normal", el["alignment"]["evidence"]
    assert el["posterolateral"]["points"] == 0
    lo, hi = a["sins"]["total_range"]
    assert lo >= 8 and a["sins"]["surgical_consultation"] is True
    assert a["bilsky"]["applicable"] and a["bilsky"]["grade"] is not None
    s = suggestions(plan)
    assert "fixation" in s["stability"]["suggestion"]
    assert "Adamkiewicz" in s["embolisation"]["suggestion"]
    assert a["noms"]["oncologic"]["radiosensitivity"] == "radioresistant"
    assert any("stabilisation" in b for b in a["noms"]["framework_branches"])
    assert any("SINS" in w for w in plan["warnings"])
