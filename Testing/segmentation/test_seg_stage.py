"""The segmentation stage end to end: the extradural phantom with T2 + CT (tumor on CT, levels
by the last rib, bone), user label maps kept, honest failures, plan schema and the Slicer scene."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage
from segcases import plan_phantom

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.imageio import read_volume
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.planning.context import PlanContext
from SpinePlannerLib.planning.pipeline import CaseInputs, apply_result, load_case, new_plan, run_stages
from SpinePlannerLib.planning.plan_schema import validate_plan
from SpinePlannerLib.segmentation.common import dice
from SpinePlannerLib.segmentation.stage import SegmentationResult
from SpinePlannerLib.segmentation.stage import run as stage_run


@pytest.fixture(scope="module")
def lytic(phantom_dir):
    case = phantom_dir("extradural-lytic")
    ctx, truth = plan_phantom(case, roles=("t2", "ct"))
    labels = {n: read_volume(case / "labels" / f"{n}.nii.gz") for n in ("cord", "csf", "tumor", "bone", "vertebrae")}
    return case, ctx, truth, labels


def _json(plan: dict) -> dict:
    return json.loads(json.dumps(plan, default=lambda o: o.tolist() if hasattr(o, "tolist") else o.item()))


def test_extradural_phantom_cord_tumor_and_bone(lytic):
    _, ctx, truth, labels = lytic
    seg = ctx.plan["segmentation"]
    assert seg["tumor"]["image"] == "ct" and seg["tumor"]["seed_in_thecal_sac"] is False
    assert dice(ctx.labels["cord"].array, labels["cord"].array) >= 0.85
    assert dice(ctx.labels["tumor"].array, labels["tumor"].array) >= 0.85
    assert dice(ctx.labels["bone"].array, labels["bone"].array) >= 0.8
    assert ctx.plan["tumor"]["compartment"] == "extradural"


def test_extradural_phantom_levels(lytic):
    _, ctx, truth, labels = lytic
    vert = ctx.plan["vertebrae"]
    assert vert["levels"] == truth["levels"]  # {"1": "T9", ..., "5": "L1"}
    for idx in range(1, 6):
        assert dice(ctx.labels["vertebrae"].array == idx, labels["vertebrae"].array == idx) >= 0.8
    tumor = ctx.plan["tumor"]
    assert tumor["levels_spanned"] == truth["tumor"]["levels_spanned"]
    assert tumor["levels_method"] == "last rib" and tumor["levels_reliable"] is False
    # the cord's position is given per level
    assert all("cord_centre_ras" in v for v in vert["vertebrae"] if v.get("body_s_range_mm"))


def test_later_stages_read_the_typed_results_not_the_plan(lytic):
    _, ctx, truth, _ = lytic
    seg, measured = ctx.results["segmentation"], ctx.results["tumor_measurement"]
    assert isinstance(seg, SegmentationResult)
    assert seg.level_names == {int(k): v for k, v in truth["levels"].items()}
    assert seg.vertebrae.found and seg.vertebrae.vertebrae is not None
    assert seg.cord_centerline_ras.shape[1] == 3 and len(seg.cord_centerline_ras) >= 10
    assert seg.labels["tumor"] is ctx.labels["tumor"] and seg.tumor_source == "segmentation from seed"
    assert measured.compartment == "extradural" == ctx.plan["tumor"]["compartment"]
    assert np.isclose(np.linalg.norm(measured.cord_axis_ras), 1.0)
    assert measured.levels_spanned == ctx.plan["tumor"]["levels_spanned"]
    # the plan sections are the results' own sections
    assert ctx.plan["vertebrae"] == seg.to_plan()["vertebrae"]
    assert ctx.plan["segmentation"] == seg.to_plan()["segmentation"]


def test_plan_sections_follow_the_schema(lytic):
    _, ctx, _, _ = lytic
    plan = _json(ctx.plan)
    validate_plan(plan)
    cord = plan["segmentation"]["cord"]
    assert cord["found"] and len(cord["centerline_ras"]) >= 10
    assert plan["segmentation"]["edema"]["segmented"] is False  # said, not silently missing


def test_scene_has_centerline_models_terminology_and_level_names(lytic, core):
    from SpinePlannerLib.mrml.scene import populate_scene

    _, ctx, _, _ = lytic
    nodes = populate_scene(core, ctx)
    curve = nodes["cord_centerline"]
    assert curve.GetNumberOfControlPoints() >= 10
    assert curve.GetCurveLengthWorld() > 80.0  # mm: the phantom's cord runs through T9-L1
    segmentation = nodes["segmentation"].GetSegmentation()
    tumor = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("tumor"))
    assert "Neoplasm" in tumor.GetTerminology()
    assert core.scene.GetNumberOfNodesByClass("vtkMRMLModelNode") >= 3  # cord, csf, tumor surfaces
    colors = nodes["vertebral_levels_colors"]
    assert colors.GetColorName(4) == "T12"


def test_given_labels_are_never_overwritten(phantom_dir):
    case = phantom_dir("extradural-lytic")
    truth = json.loads((case / "truth.json").read_text())
    inputs = CaseInputs(images={"t2": str(case / "t2.nii.gz")}, cord_seg=str(case / "labels" / "cord.nii.gz"),
                        tumor_seg=str(case / "labels" / "tumor.nii.gz"))
    ctx = load_case(inputs)
    ctx.plan = new_plan(ctx)
    given = {k: ctx.labels[k].array.copy() for k in ("cord", "tumor")}
    plan_before = json.dumps(ctx.plan, sort_keys=True)
    result = stage_run(ctx, lambda f, m: None)
    # the stage is pure: the context is read, never written; the result carries everything
    assert json.dumps(ctx.plan, sort_keys=True) == plan_before
    assert set(ctx.labels) == {"cord", "tumor"} and not ctx.results
    assert "cord" not in result.labels and "tumor" not in result.labels and "csf" in result.labels
    assert result.to_plan()["segmentation"]["outputs"] == sorted({"cord", "tumor", *result.labels})
    apply_result(ctx, "segmentation", result)
    ctx.plan["stages"]["segmentation"] = {"status": "done"}
    assert ctx.results["segmentation"] is result
    for k in ("cord", "tumor"):
        assert np.array_equal(ctx.labels[k].array, given[k])
    assert ctx.plan["segmentation"]["cord"]["source"] == "given label map"
    assert ctx.plan["segmentation"]["tumor"]["source"] == "given label map"
    assert "csf" in ctx.labels  # the thecal sac is still segmented around the given cord
    assert truth["tumor"]["compartment"] == "extradural"


def test_seed_in_air_is_an_input_error(shared_data):
    t2_path = shared_data / "sct" / "t2.nii.gz"
    t2 = read_volume(t2_path)
    # the real T2 has air in front of the neck: the darkest 7-voxel neighbourhood
    air = np.unravel_index(np.argmin(ndimage.uniform_filter(t2.array.astype(float), size=7)), t2.shape3)
    ctx = load_case(CaseInputs(images={"t2": str(t2_path)}, tumor_seed_ras=tuple(t2.ijk_to_ras(air))))
    ctx.plan = new_plan(ctx)
    with pytest.raises(InputError, match="--tumor-seed: the point lies in background"):
        run_stages(ctx, only=["segmentation"])


def test_cord_not_found_is_said_with_the_reason():
    rng = np.random.default_rng(1)
    noise = Volume(rng.normal(300.0, 40.0, (48, 48, 40)).astype(np.float32), np.diag([0.9, 0.9, 1.2, 1.0]), "t2")
    ctx = PlanContext(volumes={"t2": noise})
    ctx.plan = {"warnings": [], "stages": {}}
    run_stages(ctx, only=["segmentation"])
    cord = ctx.plan["segmentation"]["cord"]
    assert cord["found"] is False and cord["reason"]
    assert "cord" not in ctx.labels and "csf" not in ctx.labels
    assert any(w.startswith("cord not found") for w in ctx.plan["warnings"])
    assert ctx.plan["vertebrae"]["found"] is False and "no CT" in ctx.plan["vertebrae"]["reason"]


def test_bad_segmentation_parameters_are_an_input_error(phantom_dir):
    ctx = PlanContext(volumes={"t2": Volume(np.zeros((8, 8, 8), np.float32), np.eye(4))},
                      params={"segmentation": {"tumor": {"max_radius_mm": -3}}})
    ctx.plan = {"warnings": [], "stages": {}}
    with pytest.raises(InputError, match="max_radius_mm"):
        run_stages(ctx, only=["segmentation"])


def test_monai_engine_replaces_the_cord_when_chosen(phantom_dir):
    """Selectable per structure: cord by the project's MONAI network, tumor by the seed."""
    pytest.importorskip("torch")
    pytest.importorskip("monai")
    from SpinePlannerLib.segmentation.monai.engine import PHANTOM_MODEL

    if not PHANTOM_MODEL.is_file():
        pytest.skip(f"no trained phantom model at {PHANTOM_MODEL}")
    case = phantom_dir("idem-soft")
    ctx, _ = plan_phantom(case, roles=("t2",), params={"segmentation": {"cord_engine": "monai"}})
    seg = ctx.plan["segmentation"]
    assert seg["monai"]["ran"] is True, seg["monai"]
    assert seg["engines"] == {"cord": "monai", "tumor": "classical"}
    assert "cord" in seg["monai"]["replaced"] and seg["tumor"]["source"] == "seed"
    validate_plan(_json(ctx.plan))
