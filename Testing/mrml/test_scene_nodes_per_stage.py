"""The scene of a plan holds, for every stage, the nodes its typed result stands for: built from
the results in one pass (no builders stored on the context), each node attributed to its stage,
and the same set of nodes in the written scene.mrb (end to end on a phantom with every input)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow  # every stage on a full-size phantom (about 30 s)

INPUT_NODES = {("vtkMRMLScalarVolumeNode", r) for r in ("t1", "t2", "ct", "sct", "angio", "dwi_b0")}
"""Nodes of the inputs (not of a stage) for the ``intramedullary-displacing`` phantom."""

EXPECTED = {
    "segmentation": {
        ("vtkMRMLMarkupsCurveNode", "cord centerline"),
        ("vtkMRMLColorTableNode", "vertebral levels"),
        ("vtkMRMLModelNode", "cord"), ("vtkMRMLModelNode", "csf"), ("vtkMRMLModelNode", "tumor"),
    },
    "tractography": {
        ("vtkMRMLScalarVolumeNode", "DTI FA"), ("vtkMRMLScalarVolumeNode", "DTI MD"),
        ("vtkMRMLScalarVolumeNode", "DTI AD"), ("vtkMRMLScalarVolumeNode", "DTI RD"),
        ("vtkMRMLDiffusionTensorVolumeNode", "DTI tensor"), ("vtkMRMLModelNode", "Cord tracts"),
    },
    "synthetic_ct_check": {
        ("vtkMRMLScalarVolumeNode", "CT minus synthetic CT (HU)"),
        ("vtkMRMLColorTableNode", "SpinePlan diverging blue-white-red"),
        ("vtkMRMLTableNode", "Synthetic CT check"),
    },
    "vessels": {
        ("vtkMRMLModelNode", "Vessels"), ("vtkMRMLModelNode", "Tumor feeders"),
        ("vtkMRMLModelNode", "Adamkiewicz candidate"), ("vtkMRMLModelNode", "Anterior spinal artery"),
        ("vtkMRMLMarkupsFiducialNode", "Feeder entry points"), ("vtkMRMLMarkupsFiducialNode", "Adamkiewicz junction"),
    },
    "approach": {
        ("vtkMRMLMarkupsLineNode", "Planned trajectory"),
        ("vtkMRMLMarkupsFiducialNode", "Trajectory entry and target"),
    },
}
"""(class, name) of the data nodes each stage's result adds (display/storage nodes left out)."""

POPULATED = {("vtkMRMLSegmentationNode", "SpinePlan segmentation"), ("vtkMRMLLabelMapVolumeNode", "vertebrae")}
"""Nodes of the label maps (all stages' ``labels``), added before the stage results."""


NOT_DATA = ("vtkMRMLDisplayNode", "vtkMRMLStorageNode", "vtkMRMLSubjectHierarchyNode",
            "vtkMRMLDiffusionTensorDisplayPropertiesNode")
"""Node classes that only serve other nodes (display, storage, hierarchy, tensor glyph settings)."""


def _data_nodes(scene, ids=None) -> set[tuple[str, str]]:
    out = set()
    for i in range(scene.GetNumberOfNodes()):
        node = scene.GetNthNode(i)
        if ids is not None and node.GetID() not in ids:
            continue
        if any(node.IsA(c) for c in NOT_DATA):
            continue
        out.add((node.GetClassName(), node.GetName()))
    return out


@pytest.fixture(scope="module")
def planned(phantom_dir):
    from SpinePlannerLib.planning.demo import phantom_case_inputs
    from SpinePlannerLib.planning.pipeline import load_case, new_plan, run_stages

    case = phantom_dir("intramedullary-displacing")
    ctx = load_case(phantom_case_inputs(case, json.loads((case / "truth.json").read_text())))
    ctx.plan = new_plan(ctx)
    run_stages(ctx)
    return ctx


def test_every_stage_is_done_and_leaves_a_typed_result(planned):
    from SpinePlannerLib.planning.registry import stage_names

    assert {n: r["status"] for n, r in planned.plan["stages"].items()} == dict.fromkeys(stage_names(), "done")
    assert list(planned.results) == stage_names()
    for name, result in planned.results.items():
        for section, values in result.to_plan().items():  # the plan is made of the results' sections
            assert all(planned.plan[section][k] == v for k, v in values.items()), (name, section)
    assert not hasattr(planned, "scene_builders") and not hasattr(planned, "extra")


def test_scene_nodes_per_stage_come_from_the_results_in_one_pass(planned, core):
    from SpinePlannerLib.mrml.scene import Provenance, populate_scene

    provenance = Provenance()
    before = {core.scene.GetNthNode(i).GetID() for i in range(core.scene.GetNumberOfNodes())}
    nodes = populate_scene(core, planned, provenance=provenance)
    for stage, expected in EXPECTED.items():
        ids = {i for i, s in provenance.nodes.items() if s == stage}
        assert _data_nodes(core.scene, ids) == expected, stage
    # stages without a scene function of their own add nothing; segments all come from the label maps
    assert set(provenance.nodes.values()) == set(EXPECTED)
    assert provenance.segments == {}
    every = _data_nodes(core.scene, {core.scene.GetNthNode(i).GetID() for i in range(core.scene.GetNumberOfNodes())}
                        - before)
    assert every == INPUT_NODES | POPULATED | set().union(*EXPECTED.values())
    assert nodes["tracts"].GetPolyData().GetNumberOfLines() == planned.plan["tractography"]["n_streamlines"]
    assert nodes["feeder_entries"].GetNumberOfControlPoints() == len(planned.plan["vessels"]["feeders"])


def test_written_scene_bundle_holds_the_same_nodes(planned, tmp_path):
    from SpinePlannerLib.mrml.headless import load_scene_from_mrb
    from SpinePlannerLib.mrml.scene import build_scene

    build_scene(planned, tmp_path / "scene.mrb")
    scene = load_scene_from_mrb(tmp_path / "scene.mrb").scene
    assert _data_nodes(scene) >= INPUT_NODES | POPULATED | set().union(*EXPECTED.values())
