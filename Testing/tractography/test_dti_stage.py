"""The ``tractography`` planning stage: plan section valid against the schema, streamline
exports under the staging folder, scene nodes, parameter overrides, skips and bad input."""

from __future__ import annotations

import jsonschema
import numpy as np
import pytest

from DTITractographyLib.synthetic import make_synthetic_cord
from SpinePlannerLib.core.dwi_io import DiffusionData
from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.planning import tractography_stage as stage
from SpinePlannerLib.planning.context import PlanContext, StageSkipped
from SpinePlannerLib.planning.pipeline import CaseInputs, apply_result, load_case, new_plan, run_stages
from SpinePlannerLib.planning.plan_schema import plan_schema, validate_plan


def _context(kind: str, tmp_path, **params) -> PlanContext:
    case = make_synthetic_cord(kind)
    t2 = case.cord.with_array(np.where(case.cord.array > 0, 300.0, 100.0).astype(np.float32), name="t2")
    ctx = PlanContext(volumes={"t2": t2}, dwi=case.dwi)
    ctx.labels["cord"] = case.cord
    if case.tumor is not None:
        ctx.labels["tumor"] = case.tumor
    ctx.plan = new_plan(ctx)
    ctx.staging_dir = tmp_path
    ctx.params = params
    return ctx


def _run(ctx: PlanContext):
    """Run the stage and record its result in ``ctx`` (plan section, warnings, exports)."""
    result = stage.run(ctx, lambda f, m: None)
    apply_result(ctx, "tractography", result)
    return result


def test_stage_writes_a_schema_valid_section_exports_and_scene_nodes(tmp_path, core):
    from SpinePlannerLib.mrml.scene import populate_scene

    ctx = _context("displacing", tmp_path)
    result = _run(ctx)
    section = ctx.plan["tractography"]
    assert section == result.section and result.analysis.setzer.setzer_type == 1
    validate_plan(ctx.plan)
    assert section["setzer_type"] == 1 and section["reliable"] is True
    assert section["n_streamlines"] > 100
    exports = ctx.exports
    assert set(exports) == {"tracts_trx", "tracts_tck", "tracts_vtp", "fa_map"}
    for rel in exports.values():
        assert (tmp_path / rel).is_file() and rel.startswith("tracts/")
    assert "cleavage plane likely" in section["resectability"]
    assert not any("DTI" in w for w in ctx.plan["warnings"])  # a reliable verdict is not a warning
    nodes = populate_scene(core, ctx)
    assert nodes["tracts"].GetPolyData().GetNumberOfLines() == section["n_streamlines"]
    assert "dti_tensor" in nodes and "dti_fa" in nodes


def test_stage_reads_parameter_overrides(tmp_path):
    ctx = _context("crossing", tmp_path, tractography={"tracking": {"algorithm": "probabilistic"},
                                                       "setzer": {"entering_type2": 0.9}})
    _run(ctx)
    s = ctx.plan["tractography"]
    assert s["method"]["tracking"] == "probabilistic"
    assert s["parameters"]["setzer"]["entering_type2"] == 0.9
    assert s["setzer_type"] == 1  # the absurd threshold changed the verdict: overrides are used


def test_unknown_override_is_rejected(tmp_path):
    ctx = _context("straight", tmp_path, tractography={"tracking": {"gfa_stop": 0.1}})
    with pytest.raises(ValueError, match="gfa_stop"):
        stage.run(ctx, lambda f, m: None)


def test_without_dwi_the_stage_is_skipped(tmp_path):
    ctx = _context("straight", tmp_path)
    ctx.dwi = None
    with pytest.raises(StageSkipped, match="no diffusion"):
        stage.run(ctx, lambda f, m: None)


def test_without_cord_the_stage_is_skipped_but_reports_the_acquisition(tmp_path):
    ctx = _context("straight", tmp_path)
    del ctx.labels["cord"]
    with pytest.raises(StageSkipped, match="no cord") as skipped:
        stage.run(ctx, lambda f, m: None)
    apply_result(ctx, "tractography", skipped.value.result, finished=False)
    assert "tractography" not in ctx.results  # a partial result gets no scene nodes
    s = ctx.plan["tractography"]
    assert s["setzer_type"] is None and s["n_streamlines"] == 0
    assert s["reliable"] is True and s["reasons"] == []  # the acquisition itself is fine
    assert "no cord segmentation" in s["resectability"]
    validate_plan(ctx.plan)


def test_five_directions_is_an_input_error(tmp_path):
    ctx = _context("straight", tmp_path)
    d = ctx.dwi
    keep = np.concatenate([np.flatnonzero(d.bvals == 0), np.flatnonzero(d.bvals > 0)[:5]])
    ctx.dwi = DiffusionData(d.volume.with_array(d.volume.array[..., keep]), d.bvals[keep], d.bvecs_ras[keep])
    with pytest.raises(InputError, match="5 distinct gradient"):
        stage.run(ctx, lambda f, m: None)


def test_real_sparse_dwi_planned_through_the_pipeline_is_unreliable(shared_data):
    sct = shared_data / "sct"
    ctx = load_case(CaseInputs(images={"t2": str(sct / "t2.nii.gz")}, dwi=str(sct / "dmri.nii.gz"),
                               bval=str(sct / "bvals.txt"), bvec=str(sct / "bvecs.txt"),
                               cord_seg=str(sct / "t2_seg-manual.nii.gz")))
    ctx.plan = new_plan(ctx)
    run_stages(ctx, only=["tractography"])
    assert ctx.plan["stages"]["tractography"]["status"] == "done"
    s = ctx.plan["tractography"]
    assert s["reliable"] is False and s["setzer_type"] is None
    assert any("insufficient for tractography" in w for w in ctx.plan["warnings"])
    validate_plan(ctx.plan)


def _with_levels(ctx: PlanContext, names: dict[int, str]) -> PlanContext:
    """``ctx`` as the segmentation stage leaves it when it named the vertebral levels ``names``."""
    from SpinePlannerLib.segmentation.stage import SegmentationResult
    from SpinePlannerLib.segmentation.vertebrae_ct import VertebraeResult

    ctx.results["segmentation"] = SegmentationResult(vertebrae=VertebraeResult(bool(names), "", names=names))
    return ctx


@pytest.mark.parametrize(("names", "expected"), [
    ({2: "C4", 1: "C3"}, {1: "C3", 2: "C4"}),
    ({5: "T1"}, {5: "T1"}),
    ({}, None),
    (None, None),
])
def test_level_names_are_read_from_the_segmentation_result(names, expected):
    ctx = PlanContext() if names is None else _with_levels(PlanContext(), names)
    assert stage.level_names(ctx) == expected


def test_per_level_counts_use_the_vertebral_label_map(tmp_path):
    ctx = _context("infiltrative", tmp_path)
    cord = ctx.labels["cord"]
    axis = make_synthetic_cord("straight").axis_ras
    centre = make_synthetic_cord("straight").centre_ras
    ijk = np.argwhere(np.ones(cord.shape3, bool))
    t = (cord.ijk_to_ras(ijk) - centre) @ axis
    levels = np.zeros(cord.shape3, np.uint8)
    levels[tuple(ijk[(t >= -20) & (t < 0)].T)] = 1
    levels[tuple(ijk[(t >= 0) & (t < 20)].T)] = 2
    ctx.labels["vertebrae"] = cord.with_array(levels)
    _with_levels(ctx, {1: "C5", 2: "C6"})  # the segmentation result's index -> name
    _run(ctx)
    per_level = {row["level"]: row for row in ctx.plan["tractography"]["per_level"]}
    assert set(per_level) == {"C5", "C6"}
    # the tumor straddles both levels (centred at t = 0): streamlines end on it in each
    assert per_level["C5"]["n_terminating_in_tumor"] > 10 and per_level["C6"]["n_terminating_in_tumor"] > 10
    jsonschema.validate(ctx.plan["tractography"], plan_schema()["properties"]["tractography"])


def test_phantom_case_planned_with_given_segmentations(request):
    pytest.importorskip("SpinePlannerLib.phantom.case")
    case = request.getfixturevalue("phantom_dir")("intramedullary-displacing")
    ctx = load_case(CaseInputs(images={"t2": str(case / "t2.nii.gz")}, dwi=str(case / "dwi.nii.gz"),
                               bval=str(case / "dwi.bval"), bvec=str(case / "dwi.bvec"),
                               cord_seg=str(case / "labels" / "cord.nii.gz"),
                               tumor_seg=str(case / "labels" / "tumor.nii.gz")))
    assert np.linalg.det(ctx.dwi.volume.affine[:3, :3]) < 0
    assert not np.allclose(ctx.dwi.volume.affine, ctx.reference.affine, atol=1e-3)
    ctx.plan = new_plan(ctx)
    run_stages(ctx, only=["tractography"])
    assert ctx.plan["stages"]["tractography"]["status"] == "done", ctx.plan["stages"]
    s = ctx.plan["tractography"]
    assert s["setzer_type"] == 1 and s["reliable"] is True
    assert s["inputs"] == {"cord": "given label map", "tumor": "given label map"}
    validate_plan(ctx.plan)


def test_extramedullary_tumor_gets_the_relationship_but_no_setzer_type(tmp_path):
    from SpinePlannerLib.measurement.stage import MeasurementResult

    ctx = _context("displacing", tmp_path)
    ctx.results["tumor_measurement"] = MeasurementResult(compartment="intradural_extramedullary")
    _run(ctx)
    s = ctx.plan["tractography"]
    assert s["compartment"] == "intradural_extramedullary"
    assert s["setzer_type"] is None and s["pattern"] == "indeterminate"
    assert "Setzer types describe intramedullary tumors" in s["resectability"]
    assert s["fraction_entering_tumor"] is not None  # the measurements are still reported


def test_compartment_is_classified_from_the_masks_when_not_measured(tmp_path):
    ctx = _context("crossing", tmp_path)
    _run(ctx)
    assert ctx.plan["tractography"]["compartment"] == "intramedullary"
