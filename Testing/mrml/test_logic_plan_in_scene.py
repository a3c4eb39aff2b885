"""SpinePlannerLib.mrml.logic: plan a case that lives in a (headless) Slicer scene, results back into it.

This is the code path of the SpinePlanner module's Apply button, run on slicer-core with the
phantom: input nodes by role -> PlanContext -> stages -> the same scene.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import vtk

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.mrml import logic
from SpinePlannerLib.mrml.headless import create_core
from SpinePlannerLib.mrml.volumes import add_segmentation_from_masks, add_volume_node, volume_from_node
from SpinePlannerLib.planning.plan_schema import validate_plan


@pytest.fixture(scope="module")
def phantom():
    from SpinePlannerLib.phantom.case import generate_phantom

    return generate_phantom("intramedullary-displacing", seed=0)


def scene_with_phantom(phantom, **kwargs):
    core = create_core()
    return core, logic.add_phantom_to_scene(core.scene, phantom, core.logics, **kwargs)


def plan(core, inputs, **kwargs):
    return logic.plan_in_scene(core.scene, inputs, logics=core.logics, app_logic=core.app_logic, **kwargs)


def segment_names(seg_node) -> set[str]:
    s = seg_node.GetSegmentation()
    return {s.GetNthSegment(i).GetName() for i in range(s.GetNumberOfSegments())}


def table_rows(table) -> dict[tuple[str, str], str]:
    return {(table.GetCellText(r, 0), table.GetCellText(r, 1)): table.GetCellText(r, 2)
            for r in range(table.GetNumberOfRows())}


def test_given_segments_are_measured_into_the_same_scene(phantom):
    """Cord and tumor drawn by the user (segments without tags) are inputs: the tumor measurement
    lands in the plan and in a table node of the scene, the input nodes are reused, not copied."""
    core, inputs = scene_with_phantom(phantom, labels=("cord", "tumor"))
    volumes_before = {n.GetID() for n in core.scene.GetNodesByClass("vtkMRMLScalarVolumeNode")}
    result = plan(core, inputs, only=["tumor_measurement"])

    assert result.plan["stages"]["tumor_measurement"]["status"] == "done"
    truth = phantom.truth["tumor"]
    assert result.plan["tumor"]["volume_ml"] == pytest.approx(truth["volume_ml"], rel=0.10)
    assert result.plan["tumor"]["source"] == "given label map"
    assert result.segmentation is inputs.segmentation
    assert segment_names(result.segmentation) == {"cord", "tumor"}
    rows = table_rows(result.measurements)
    assert float(rows[("tumor", "volume_ml")]) == pytest.approx(result.plan["tumor"]["volume_ml"], rel=1e-3)
    assert rows[("stages", "tumor_measurement")] == "done"
    volumes_after = {n.GetID() for n in core.scene.GetNodesByClass("vtkMRMLScalarVolumeNode")}
    added = [core.scene.GetNodeByID(i).GetName() for i in volumes_after - volumes_before]
    assert added == ["dwi_b0"], f"input volumes were duplicated: {added}"
    assert result.nodes["t2"] is inputs.volumes["t2"]
    result.cleanup()


def test_rerun_replaces_its_results_instead_of_accumulating(phantom):
    core, inputs = scene_with_phantom(phantom, labels=("cord", "tumor"))
    first = plan(core, inputs, only=["tumor_measurement"])
    count = core.scene.GetNumberOfNodes()
    second = plan(core, inputs, only=["tumor_measurement"], measurements=first.measurements)
    assert core.scene.GetNumberOfNodes() == count
    assert second.measurements is first.measurements
    assert second.plan["tumor"]["volume_ml"] == first.plan["tumor"]["volume_ml"]


def _replace_segment(core, seg_node, name, mask, reference_node):
    """Stand-in for a Segment Editor edit: the segment's voxels replaced by ``mask``."""
    segmentation = seg_node.GetSegmentation()
    old_id = segmentation.GetSegmentIdBySegmentName(name)
    tags = {}
    for key in (logic.TAG_GENERATED, logic.TAG_MASK_HASH):
        value = vtk.reference("")
        if segmentation.GetSegment(old_id).GetTag(key, value):
            tags[key] = str(value)
    segmentation.RemoveSegment(old_id)
    tmp = add_segmentation_from_masks(core.scene, core.logics, reference_node, {name: mask}, closed_surface=False)
    new_id = tmp.GetSegmentation().GetNthSegmentID(0)
    segmentation.CopySegmentFromSegmentation(tmp.GetSegmentation(), new_id)
    core.scene.RemoveNode(tmp)
    segment = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName(name))
    for key, value in tags.items():
        segment.SetTag(key, value)


def test_generated_segments_are_recognised_edited_or_not(phantom):
    """The edit detection itself (no stage needed): tagged unedited segments are recomputed,
    tagged edited ones are inputs, untagged ones are always inputs; replace_edits drops edits."""
    core, inputs = scene_with_phantom(phantom, labels=("cord", "tumor"), tumor_seed=False)
    ref_node = inputs.volumes["t2"]
    ref = volume_from_node(ref_node)
    seg = inputs.segmentation
    masks = {name: phantom.labels[name].with_array((phantom.labels[name].array > 0).astype(np.uint8))
             for name in ("cord", "tumor")}
    for name in ("cord", "tumor"):  # as plan_in_scene tags what it generated
        segment = seg.GetSegmentation().GetSegment(seg.GetSegmentation().GetSegmentIdBySegmentName(name))
        segment.SetTag(logic.TAG_GENERATED, "1")
        segment.SetTag(logic.TAG_MASK_HASH, logic.mask_hash(masks[name].array))
    labels, edited = logic.labels_from_segmentation(seg, ref, ref_node, core.logics)
    assert labels == {} and edited == []

    grown = masks["tumor"].array.copy()
    grown[np.argwhere(grown)[0][0] - 1] |= grown[np.argwhere(grown)[0][0]]  # one slice thicker
    _replace_segment(core, seg, "tumor", ref.with_array(grown), ref_node)
    labels, edited = logic.labels_from_segmentation(seg, ref, ref_node, core.logics)
    assert edited == ["tumor"] and set(labels) == {"tumor"}
    assert np.array_equal(labels["tumor"].array > 0, grown > 0)
    labels, edited = logic.labels_from_segmentation(seg, ref, ref_node, core.logics, replace_edits=True)
    assert labels == {} and edited == []

    user = add_segmentation_from_masks(core.scene, core.logics, ref_node, {"Tumor": masks["tumor"]},
                                       closed_surface=False)
    labels, edited = logic.labels_from_segmentation(user, ref, ref_node, core.logics, replace_edits=True)
    assert set(labels) == {"tumor"} and edited == []


def test_dwi_node_round_trip_keeps_geometry_and_gradients(phantom):
    core = create_core()
    node = logic.add_dwi_node(core.scene, phantom.dwi, name="dwi")
    back = logic.dwi_from_node(node)
    assert np.abs(back.volume.affine - phantom.dwi.volume.affine).max() < 1e-9
    assert np.array_equal(back.volume.array, phantom.dwi.volume.array.astype(np.float32))
    assert np.abs(back.bvecs_ras - phantom.dwi.bvecs_ras).max() < 1e-9
    assert np.array_equal(back.bvals, phantom.dwi.bvals)
    assert np.linalg.det(phantom.dwi.volume.affine[:3, :3]) < 0  # the phantom's DWI is a left-handed grid


def test_linear_parent_transform_is_applied_to_volumes_and_gradients(phantom):
    core = create_core()
    rotation = vtk.vtkTransform()
    rotation.RotateZ(30.0)
    rotation.Translate(5.0, -3.0, 2.0)
    transform = core.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    transform.SetMatrixTransformToParent(rotation.GetMatrix())
    m = np.array([[rotation.GetMatrix().GetElement(r, c) for c in range(4)] for r in range(4)])

    t2 = add_volume_node(core.scene, phantom.volumes["t2"], name="t2")
    t2.SetAndObserveTransformNodeID(transform.GetID())
    vol = logic.volume_from_scene_node(t2, "t2")
    assert np.abs(vol.affine - m @ phantom.volumes["t2"].affine).max() < 1e-9

    dwi = logic.add_dwi_node(core.scene, phantom.dwi)
    dwi.SetAndObserveTransformNodeID(transform.GetID())
    back = logic.dwi_from_node(dwi)
    assert np.abs(back.bvecs_ras - phantom.dwi.bvecs_ras @ m[:3, :3].T).max() < 1e-9


def test_bad_inputs_raise_input_errors_naming_the_input(phantom):
    core, inputs = scene_with_phantom(phantom)
    seed = inputs.tumor_seed
    seed.SetNthControlPointPosition(0, 500.0, 500.0, 500.0)
    with pytest.raises(InputError, match="tumor seed.*outside the t2 image"):
        plan(core, inputs)
    seed.RemoveAllControlPoints()
    with pytest.raises(InputError, match="tumor seed.*no point placed"):
        plan(core, inputs)
    with pytest.raises(InputError, match="no image selected"):
        plan(core, logic.SceneInputs())
    nan = add_volume_node(core.scene, phantom.volumes["t1"].with_array(
        np.where(phantom.volumes["t1"].array > 0.9, np.nan, phantom.volumes["t1"].array).astype(np.float32)), name="nan")
    with pytest.raises(InputError, match="t1.*NaN"):
        plan(core, logic.SceneInputs(volumes={"t1": nan}))
    count = core.scene.GetNumberOfNodes()
    with pytest.raises(InputError):
        plan(core, logic.SceneInputs(volumes={"t1": nan}))
    assert core.scene.GetNumberOfNodes() == count, "a refused plan must not add nodes"


def test_exported_plan_validates_and_has_labels_on_the_reference_grid(phantom, tmp_path):
    core, inputs = scene_with_phantom(phantom, labels=("cord", "tumor"))
    result = plan(core, inputs, only=["tumor_measurement"])
    path = logic.export_plan(result, tmp_path / "export")
    written = json.loads(path.read_text())
    validate_plan(written)
    assert written["outputs"]["labels"]["tumor"] == "labels/tumor.nii.gz"
    assert written["inputs"]["t2"].startswith("scene node 't2'")
    from SpinePlannerLib.core.imageio import read_volume

    tumor = read_volume(tmp_path / "export" / "labels" / "tumor.nii.gz")
    assert tumor.same_grid(phantom.volumes["t2"], tol_mm=1e-4)
    assert np.array_equal(tumor.array > 0, phantom.labels["tumor"].array > 0)
    with pytest.raises(InputError, match="export folder"):
        logic.export_plan(result, "")


def test_phantom_sample_loads_into_a_scene_with_its_seed(tmp_path):
    """What the Sample Data entry does: generate (checksummed) into a cache, load by role."""
    from SpinePlannerLib.phantom.sample import verify_manifest

    core = create_core()
    inputs = logic.load_phantom_sample(core.scene, core.logics, tmp_path, "idem-soft", seed=0)
    assert set(inputs.volumes) == {"t1", "t2", "ct", "sct", "angio"}
    assert inputs.dwi is not None and inputs.dwi.IsA("vtkMRMLDiffusionWeightedVolumeNode")
    assert inputs.tumor_seed.GetNumberOfControlPoints() == 1
    truth = json.loads((tmp_path / "idem-soft-seed0" / "truth.json").read_text())
    seed = [0.0, 0.0, 0.0]
    inputs.tumor_seed.GetNthControlPointPositionWorld(0, seed)
    assert np.allclose(seed, truth["tumor"]["centroid_ras"], atol=1e-6)
    assert verify_manifest(tmp_path / "idem-soft-seed0") == []
    assert inputs.volumes["t2"].GetName() == "idem-soft t2"


def test_stage_results_are_tagged_by_stage_and_replaced_on_rerun():
    """Every node a stage's result adds to the scene carries the stage's name; planning again replaces
    them (same node count) while the input segmentation keeps its identity."""
    from SpinePlannerLib.phantom.case import generate_phantom

    case = generate_phantom("idem-calcified", seed=0)
    core, inputs = scene_with_phantom(case, labels=("cord", "tumor"))
    stages = ["tumor_measurement", "synthetic_ct_check", "vessels"]
    first = plan(core, inputs, only=stages)
    done = [s for s in stages if first.plan["stages"][s]["status"] == "done"]
    assert "synthetic_ct_check" in done, first.plan["stages"]
    tags = [core.scene.GetNthNode(i).GetAttribute(logic.ATTR_CREATED_BY) for i in range(core.scene.GetNumberOfNodes())]
    for stage in set(done) - {"tumor_measurement"}:
        assert stage in tags, f"no node tagged {stage}"
    count = core.scene.GetNumberOfNodes()
    second = plan(core, inputs, only=stages, measurements=first.measurements)
    assert core.scene.GetNumberOfNodes() == count
    assert second.segmentation is inputs.segmentation
    difference = [core.scene.GetNthNode(i) for i in range(core.scene.GetNumberOfNodes())
                  if core.scene.GetNthNode(i).GetAttribute(logic.ATTR_CREATED_BY) == "synthetic_ct_check"
                  and core.scene.GetNthNode(i).IsA("vtkMRMLScalarVolumeNode")]
    assert len(difference) == 1, "the CT - sCT difference volume is in the scene once"
