"""`spineplan plan` outputs: plan.json valid against its schema, labels on the reference grid,
scene.mrb that reloads in a fresh headless core with every node, skipped stages explained."""

from __future__ import annotations

import json

import numpy as np
import pytest
from testimages import ball_mask, blob_volume, oblique_affine

from SpinePlannerLib.cli.main import main
from SpinePlannerLib.core.imageio import read_volume, write_volume
from SpinePlannerLib.mrml.headless import load_scene_from_mrb
from SpinePlannerLib.planning.plan_schema import validate_plan


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    d = tmp_path_factory.mktemp("plan")
    t2_aff = oblique_affine(order="PSR", spacing=(0.9, 0.9, 1.8))
    t2 = blob_volume(t2_aff, shape=(40, 36, 24), radius_mm=5.0)
    write_volume(t2, d / "t2.nii.gz")
    center = t2.ijk_to_ras((np.array(t2.shape3) - 1) / 2)
    # the tumor label is given on a different (LAS, finer) grid: it must be carried through world space
    seg_aff = oblique_affine(order="LAS", spacing=(0.5, 0.5, 0.5), angles_deg=(3, 4, 5), origin=(0, 0, 0))
    seg_aff[:3, 3] += center - (seg_aff[:3, :3] @ np.array([30.0, 30.0, 30.0]))
    write_volume(ball_mask(seg_aff, (61, 61, 61), center, 5.0), d / "tumor_other_grid.nii.gz")
    out = d / "out"
    assert main(["--quiet", "plan", "--t2", str(d / "t2.nii.gz"), "--tumor-seg", str(d / "tumor_other_grid.nii.gz"),
                 "--out", str(out)]) == 0
    return d, out, t2, center


def test_plan_json_follows_the_schema_and_has_the_envelope(planned):
    _, out, _, _ = planned
    plan = json.loads((out / "plan.json").read_text())
    validate_plan(plan)
    assert plan["schema_version"] == 1
    for key in ("inputs", "stages", "warnings", "tumor", "cord"):
        assert key in plan
    assert plan["inputs"]["t2"].endswith("t2.nii.gz")
    for record in plan["stages"].values():
        assert record["status"] in ("done", "skipped", "failed")
        if record["status"] != "done":
            assert record["reason"]


def test_stage_without_inputs_is_skipped_with_reason(planned):
    _, out, _, _ = planned
    plan = json.loads((out / "plan.json").read_text())
    assert plan["stages"]["tractography"]["status"] == "skipped"
    assert "DWI" in plan["stages"]["tractography"]["reason"] or "dwi" in plan["stages"]["tractography"]["reason"]


def test_tumor_measured_from_label_given_on_another_grid(planned):
    _, out, _, center = planned
    plan = json.loads((out / "plan.json").read_text())
    tumor = plan["tumor"]
    true_ml = 4 / 3 * np.pi * 5.0**3 / 1000
    assert tumor["volume_ml"] == pytest.approx(true_ml, rel=0.12)
    assert np.linalg.norm(np.array(tumor["centroid_ras"]) - center) < 0.5  # mm
    assert tumor["max_axial_diameter_mm"] == pytest.approx(10.0, abs=1.9)  # one 0.9-1.8 mm voxel
    assert tumor["craniocaudal_extent_mm"] == pytest.approx(10.0, abs=1.9)


def test_labels_are_written_on_the_reference_grid(planned):
    d, out, t2, _ = planned
    tumor = read_volume(out / "labels" / "tumor.nii.gz")
    assert tumor.shape3 == t2.shape3
    assert np.allclose(tumor.affine, t2.affine, atol=1e-4)
    assert set(np.unique(tumor.array)) == {0, 1}


def test_scene_bundle_reloads_with_every_node(planned):
    _, out, _, _ = planned
    core = load_scene_from_mrb(out / "scene.mrb")
    scene = core.scene
    t2 = scene.GetFirstNodeByName("t2")
    assert t2 is not None and t2.GetImageData().GetDimensions() == (40, 36, 24)
    seg = scene.GetFirstNodeByClass("vtkMRMLSegmentationNode")
    assert seg is not None
    names = [seg.GetSegmentation().GetNthSegment(i).GetName() for i in range(seg.GetSegmentation().GetNumberOfSegments())]
    assert "tumor" in names


def test_output_files_are_readable_by_others(planned):
    _, out, _, _ = planned
    for p in [out / "plan.json", out / "scene.mrb", *(out / "labels").iterdir()]:
        assert p.stat().st_mode & 0o044, p  # group/other read like any ordinary file
