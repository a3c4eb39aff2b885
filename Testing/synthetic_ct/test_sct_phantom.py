"""The synthetic-CT check on the project's phantom: the issue's done-criteria, and the planning stage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from SpinePlannerLib.core.imageio import read_volume
from SpinePlannerLib.planning.pipeline import CaseInputs, run_plan
from SyntheticCTCheckLib.check import check_synthetic_ct


def _check(case_dir):
    truth = json.loads((case_dir / "truth.json").read_text())
    r = check_synthetic_ct(
        read_volume(case_dir / "sct.nii.gz", "--sct"), read_volume(case_dir / "labels" / "tumor.nii.gz", "--tumor-seg"),
        ct=read_volume(case_dir / "ct.nii.gz", "--ct"), vertebrae=read_volume(case_dir / "labels" / "vertebrae.nii.gz"),
        cord_axis_ras=truth["cord"]["axis_ras"], compartment=truth["tumor"]["compartment"])
    return r.section, truth


def _codes(section):
    return {f["code"] for f in section["flags"]}


def test_calcified_phantom_ct_550_hu_13p8_by_16_mm_and_synthetic_ct_misses_it(phantom_dir):
    s, truth = _check(phantom_dir("idem-calcified"))
    assert s["ct"]["mean_hu"] == pytest.approx(550.0, abs=15.0)  # HU
    assert s["ct"]["lesion_axial_diameter_mm"] == pytest.approx(truth["tumor"]["max_axial_diameter_mm"], abs=1.0)
    assert s["ct"]["lesion_craniocaudal_mm"] == pytest.approx(truth["tumor"]["craniocaudal_extent_mm"], abs=1.0)
    assert truth["tumor"]["max_axial_diameter_mm"] == 13.8 and truth["tumor"]["craniocaudal_extent_mm"] == 16.0
    assert s["ct"]["calcification_class"] == truth["expected"]["calcification_class"] == "dense"
    assert s["sct"]["visible"] is False
    assert (s["sct"]["lesion_axial_diameter_mm"], s["sct"]["lesion_craniocaudal_mm"]) == (None, None)  # not seen: null
    assert s["sct"]["mean_hu"] == pytest.approx(12.0, abs=10.0)
    assert s["disagreement"] is True is truth["expected"]["sct_disagreement"]
    assert {"CALCIFICATION_MISSED_ON_SCT", "LESION_NOT_DEPICTED_ON_SCT"} <= _codes(s)
    assert s["approach_hint"].startswith("hard")
    # bone: synthetic CT close to CT (the failure is specific to the lesion)
    assert s["bone"]["mae_hu"] < 60.0 and abs(s["bone"]["bias_hu"]) < 40.0
    assert "BONE_AGREES_LESION_DISAGREES" in _codes(s)


def test_soft_phantom_shows_no_disagreement(phantom_dir):
    s, truth = _check(phantom_dir("idem-soft"))
    assert s["ct"]["mean_hu"] == pytest.approx(40.0, abs=15.0)
    assert s["disagreement"] is False is truth["expected"]["sct_disagreement"]
    assert s["ct"]["calcification_class"] == "none"
    assert s["approach_hint"].startswith("soft")


def test_113_hu_phantom_is_faint_or_partial_and_not_depicted_on_synthetic_ct(phantom_dir):
    s, _ = _check(phantom_dir("idem-faint"))
    assert s["ct"]["mean_hu"] == pytest.approx(113.0, abs=15.0)
    assert s["ct"]["calcification_class"] in ("faint", "partial")
    assert "LESION_NOT_DEPICTED_ON_SCT" in _codes(s)
    assert s["disagreement"] is True


def test_stage_writes_its_plan_section_labels_export_and_scene(phantom_dir, tmp_path):
    case = phantom_dir("idem-calcified")
    inputs = CaseInputs(images={r: str(case / f"{r}.nii.gz") for r in ("t2", "ct", "sct")},
                        tumor_seg=str(case / "labels" / "tumor.nii.gz"))
    plan = run_plan(inputs, tmp_path / "out")  # validates plan.json against the schema
    assert plan["stages"]["synthetic_ct_check"]["status"] == "done"
    s = plan["synthetic_ct_check"]
    assert s["disagreement"] is True and s["registration"]["method"] == "identical grid"
    assert s["roi"]["frame"] == "mri"
    diff = read_volume(tmp_path / "out" / plan["outputs"]["sct_difference"])
    flagged = read_volume(tmp_path / "out" / plan["outputs"]["labels"]["sct_disagreement"])
    assert np.any(flagged.array)
    centroid = np.asarray(json.loads((case / "truth.json").read_text())["tumor"]["centroid_ras"])
    assert diff.array[tuple(np.round(diff.ras_to_ijk(centroid)).astype(int))] > 400.0  # HU, CT - sCT
    assert any(w.startswith("synthetic CT: synthetic CT cannot replace CT") for w in plan["warnings"])

    from SpinePlannerLib.mrml.headless import load_scene_from_mrb

    scene = load_scene_from_mrb(tmp_path / "out" / "scene.mrb").scene
    node = scene.GetFirstNodeByName("CT minus synthetic CT (HU)")
    assert node is not None and node.GetDisplayNode().GetLevel() == 0.0
    assert scene.GetFirstNodeByName("Synthetic CT check") is not None


def test_stage_skips_without_a_synthetic_ct(phantom_dir, tmp_path):
    case = phantom_dir("idem-soft")
    inputs = CaseInputs(images={"t2": str(case / "t2.nii.gz"), "ct": str(case / "ct.nii.gz")},
                        tumor_seg=str(case / "labels" / "tumor.nii.gz"))
    plan = run_plan(inputs, tmp_path / "out", write_scene=False)
    assert plan["stages"]["synthetic_ct_check"] == {**plan["stages"]["synthetic_ct_check"], "status": "skipped",
                                                    "reason": "no synthetic CT (--sct)"}
    assert "synthetic_ct_check" not in plan


def test_cohort_mode_reproduces_the_published_table_on_a_phantom_cohort(phantom_dir, tmp_path):
    from SyntheticCTCheckLib.cohort import main_cohort

    cases = [("calcified", phantom_dir("idem-calcified")), ("faint", phantom_dir("idem-faint")),
             ("soft", phantom_dir("idem-soft"))]
    rows = ["case,ct,sct,roi,vertebrae"] + [
        f"{name},{d / 'ct.nii.gz'},{d / 'sct.nii.gz'},{d / 'labels' / 'tumor.nii.gz'},{d / 'labels' / 'vertebrae.nii.gz'}"
        for name, d in cases]
    (tmp_path / "cases.csv").write_text("\n".join(rows) + "\n")
    result = main_cohort(tmp_path / "cases.csv", tmp_path / "out")
    table = {r["measure"]: r for r in result["table"]}
    assert list(table) == ["tumor visible", "mean axial diameter (mm)", "mean sagittal diameter (mm)",
                           "mean HU in tumor ROI"]
    assert (table["tumor visible"]["real_ct"], table["tumor visible"]["synthetic_ct"]) == ("2/3", "0/3")
    assert table["mean axial diameter (mm)"]["synthetic_ct"] == "0.0 mm"
    assert table["mean axial diameter (mm)"]["real_ct_value"] == pytest.approx(2 * 13.8 / 3, abs=1.0)
    assert table["mean HU in tumor ROI"]["real_ct_value"] == pytest.approx((550 + 113 + 40) / 3, abs=15.0)
    hu = table["mean HU in tumor ROI"]
    from scipy import stats

    ct_hu = [c["ct_mean_hu"] for c in result["cases"]]
    sct_hu = [c["sct_mean_hu"] for c in result["cases"]]
    assert hu["p_paired_t_value"] == pytest.approx(stats.ttest_rel(ct_hu, sct_hu).pvalue, rel=1e-9)
    assert hu["p_wilcoxon_value"] == pytest.approx(0.25, abs=1e-9)  # n = 3, all CT > sCT: the smallest p
    for name in ("sct_cohort_cases.csv", "sct_cohort_summary.csv", "sct_cohort.json"):
        assert (tmp_path / "out" / name).is_file()


def test_stage_runs_in_the_demo(tmp_path):
    from SpinePlannerLib.planning.demo import run_demo

    plan = run_demo(tmp_path / "demo", kind="idem-calcified")
    if plan["stages"]["segmentation"]["status"] != "done":  # the demo's tumor ROI comes from segmentation
        pytest.skip(f"segmentation stage unavailable: {plan['stages']['segmentation']['reason']}")
    assert plan["stages"]["synthetic_ct_check"]["status"] == "done", plan["stages"]["synthetic_ct_check"]
    s = plan["synthetic_ct_check"]
    assert s["disagreement"] is True and s["sct"]["visible"] is False and s["ct"]["visible"] is True
