"""The ``vessels`` planning stage, its exports and its MRML nodes (headless Slicer core)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from SpinePlannerLib.planning.context import PlanContext, StageSkipped
from SpinePlannerLib.planning.plan_schema import plan_schema, validate_plan
from SpinePlannerLib.vessels.analysis import NOT_DETECTABLE, ROLE_FEEDER, analyze_vessels
from SpinePlannerLib.vessels.synthetic import oblique_grid, synthetic_cta


@pytest.fixture(scope="module")
def case():
    return synthetic_cta(*oblique_grid(spacing=(0.65, 0.65, 0.8)), seed=11)


def validate_vessels(plan: dict) -> None:
    """The vessels section against its schema, and the whole plan against the whole schema."""
    import jsonschema

    schema = plan_schema()
    jsonschema.validate(plan["vessels"], {**schema["properties"]["vessels"], "$defs": schema["$defs"]})
    validate_plan(plan)


def plan_context(case, tmp_path) -> PlanContext:
    """A context as the segmentation stage leaves it: label maps, and a segmentation result
    naming the vertebral levels of ``case.vertebrae``."""
    from SpinePlannerLib.planning.pipeline import new_plan
    from SpinePlannerLib.segmentation.stage import SegmentationResult
    from SpinePlannerLib.segmentation.vertebrae_ct import VertebraeResult

    ctx = PlanContext(inputs={"angio": "synthetic"})
    ctx.volumes["angio"] = case.angio
    ctx.labels["tumor"] = case.tumor
    ctx.labels["cord"] = case.cord
    ctx.labels["vertebrae"] = case.vertebrae
    ctx.plan = new_plan(ctx)
    names = {int(k): v for k, v in case.levels.items()}
    ctx.results["segmentation"] = SegmentationResult(vertebrae=VertebraeResult(True, "", names=names))
    ctx.staging_dir = tmp_path
    return ctx


def run_stage(ctx: PlanContext) -> None:
    from SpinePlannerLib.planning.pipeline import run_stages

    run_stages(ctx, only=["vessels"])
    assert ctx.plan["stages"]["vessels"]["status"] == "done", ctx.plan["stages"]


@pytest.fixture(scope="module")
def staged(case, tmp_path_factory):
    ctx = plan_context(case, tmp_path_factory.mktemp("vessels-stage"))
    run_stage(ctx)
    return ctx


def test_level_names_come_from_the_segmentation_result(staged, case):
    from SpinePlannerLib.vessels.stage import level_names

    assert level_names(staged) == {str(k): v for k, v in case.levels.items()}
    assert level_names(PlanContext()) is None
    levels = {f["level"] for f in staged.plan["vessels"]["feeders"]}
    assert levels and levels <= set(case.levels.values())  # feeders are named by the given levels


def test_stage_is_skipped_without_angiography(tmp_path):
    from SpinePlannerLib.vessels.stage import run

    with pytest.raises(StageSkipped, match="angio"):
        run(PlanContext(), lambda f, m: None)


def test_stage_writes_schema_valid_vessels_section(staged, case):
    section = staged.plan["vessels"]
    assert set(section) >= {"detectable", "reason", "n_branches", "feeders", "adamkiewicz_candidate", "warnings"}
    assert section["detectable"] is True and section["n_branches"] > 5
    assert len(section["feeders"]) == len(case.truth["feeders"])
    for f in section["feeders"]:
        assert set(f) >= {"entry_ras", "diameter_mm", "length_mm", "level", "side", "parent"}
    validate_vessels(staged.plan)


def test_stage_adds_role_label_map_on_the_reference_grid(staged, case):
    lab = staged.labels["vessels"]
    assert lab.same_grid(staged.reference)
    assert set(np.unique(lab.array)) <= {0, 1, 2, 3, 4, 5}
    assert np.any(lab.array == ROLE_FEEDER)
    # feeder voxels lie on the true feeders (within one voxel)
    from scipy import ndimage

    truth = ndimage.binary_dilation(case.vessels.array == 2, iterations=1)
    on = np.count_nonzero(truth & (lab.array == ROLE_FEEDER)) / np.count_nonzero(lab.array == ROLE_FEEDER)
    assert on > 0.6


def test_feeder_markups_file_round_trips_entry_points(staged):
    exports = staged.exports
    doc = json.loads((staged.staging_dir / exports["feeder_entries"]).read_text())
    points = doc["markups"][0]["controlPoints"]
    assert doc["markups"][0]["coordinateSystem"] == "RAS"
    feeders = staged.plan["vessels"]["feeders"]
    assert len(points) == len(feeders)
    for p, f in zip(points, feeders, strict=True):
        assert np.max(np.abs(np.subtract(p["position"], f["entry_ras"]))) < 0.01  # mm (plan rounds to 0.01)


def test_centerline_export_holds_every_branch_in_ras(staged):
    doc = json.loads((staged.staging_dir / staged.exports["vessel_centerlines"]).read_text())
    result = staged.results["vessels"].analysis
    assert doc["coordinate_system"] == "RAS" and len(doc["branches"]) == result.n_branches
    b0 = result.graph.branches[0]
    assert np.max(np.abs(np.asarray(doc["branches"][0]["points_ras"]) - b0.points)) < 1e-3
    assert (staged.staging_dir / staged.exports["vessel_roles"]).exists()


def test_scene_adds_models_by_role_and_feeder_markups_from_the_result(staged, core):
    from SpinePlannerLib.mrml.scene import add_result_nodes

    nodes: dict = {}
    add_result_nodes(core, staged, nodes)
    feeders = nodes["vessels_tumor_feeders"]
    assert feeders.GetPolyData().GetNumberOfPoints() > 0
    assert np.allclose(feeders.GetDisplayNode().GetColor(), (1.0, 0.85, 0.0))
    assert feeders.GetDisplayNode().GetVisibility2D()
    assert "vessels_anterior_spinal_artery" in nodes
    mk = nodes["feeder_entries"]
    assert mk.GetNumberOfControlPoints() == len(staged.plan["vessels"]["feeders"])
    p = [0.0, 0.0, 0.0]
    mk.GetNthControlPointPosition(0, p)
    assert np.allclose(p, staged.plan["vessels"]["feeders"][0]["entry_ras"], atol=0.01)


def test_run_vessels_on_mrml_nodes_matches_the_library(case, core):
    from SpinePlannerLib.mrml.vessels import run_vessels
    from SpinePlannerLib.mrml.volumes import add_volume_node

    angio_node = add_volume_node(core.scene, case.angio, name="angio")
    tumor_node = add_volume_node(core.scene, case.tumor, name="tumor", labelmap=True)
    cord_node = add_volume_node(core.scene, case.cord, name="cord", labelmap=True)
    result, nodes = run_vessels(core, angio_node, tumor_node, {"feeder_margin_mm": 3.0}, cord=cord_node)
    direct = analyze_vessels(case.angio, tumor=case.tumor, cord=case.cord)
    a = [f.entry_ras for f in result.feeders]
    b = [f.entry_ras for f in direct.feeders]
    assert len(a) == len(b) > 0
    assert np.max(np.abs(np.array(a) - np.array(b))) < 1e-3
    assert "feeder_entries" in nodes


def test_run_vessels_accepts_a_segmentation_node_as_tumor(case, core):
    from SpinePlannerLib.mrml.vessels import run_vessels
    from SpinePlannerLib.mrml.volumes import add_segmentation_from_masks, add_volume_node

    angio_node = add_volume_node(core.scene, case.angio, name="angio")
    seg = add_segmentation_from_masks(core.scene, core.logics, angio_node, {"tumor": case.tumor}, closed_surface=False)
    result, _ = run_vessels(core, angio_node, seg, None, cord=case.cord, add_nodes=False)
    assert len(result.feeders) == len(case.truth["feeders"])


def test_non_contrast_image_gives_not_detectable_plan_and_warning(case, tmp_path, core):
    from SpinePlannerLib.mrml.scene import add_result_nodes

    plain = synthetic_cta(*oblique_grid(spacing=(0.65, 0.65, 0.8)), seed=12, contrast=False)
    ctx = plan_context(plain, tmp_path)
    run_stage(ctx)
    section = ctx.plan["vessels"]
    assert section["detectable"] is False and section["reason"].startswith(NOT_DETECTABLE)
    assert section["feeders"] == [] and section["adamkiewicz_candidate"]["present"] is False
    assert any(w.startswith(NOT_DETECTABLE) for w in ctx.plan["warnings"])
    nodes: dict = {}
    add_result_nodes(core, ctx, nodes)
    assert nodes == {} and "vessels" not in ctx.labels and ctx.exports == {}
    validate_vessels(ctx.plan)


def test_invalid_parameter_override_is_an_input_error(case, tmp_path):
    from SpinePlannerLib.core.errors import InputError
    from SpinePlannerLib.vessels.stage import run

    ctx = plan_context(case, tmp_path)
    ctx.params["vessels"] = {"feeder_margin_mm": -1.0}
    with pytest.raises(InputError, match="feeder_margin_mm"):
        run(ctx, lambda f, m: None)
