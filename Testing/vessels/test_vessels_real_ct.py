"""Honest limits on real data: the non-contrast 3 mm abdominal CT of ../shared/data shows no
vessels that matter (aorta about 42 HU, voxels 3 mm) and the vessel stage must say so."""

from __future__ import annotations

from SpinePlannerLib.core.imageio import read_volume
from SpinePlannerLib.planning.context import PlanContext
from SpinePlannerLib.vessels.analysis import NOT_DETECTABLE, analyze_vessels


def test_non_contrast_3mm_ct_is_reported_not_detectable(shared_data):
    ct = read_volume(shared_data / "totalsegmentator" / "example_ct.nii.gz", "--angio")
    plan = analyze_vessels(ct).to_plan()
    assert plan["detectable"] is False
    assert plan["reason"].startswith(NOT_DETECTABLE)
    assert "too coarse" in plan["reason"] and "3.00 mm" in plan["reason"]
    assert plan["n_branches"] == 0 and plan["feeders"] == []


def test_stage_on_the_non_contrast_ct_warns_and_adds_no_nodes(shared_data, core):
    from SpinePlannerLib.mrml.vessels import add_vessel_result
    from SpinePlannerLib.vessels.stage import run

    ctx = PlanContext()
    ctx.volumes["angio"] = read_volume(shared_data / "totalsegmentator" / "example_ct.nii.gz", "--angio")
    result = run(ctx, lambda f, m: None)
    assert result.to_plan()["vessels"]["detectable"] is False
    assert any(w.startswith(NOT_DETECTABLE) for w in result.warnings)
    nodes: dict = {}
    add_vessel_result(core, result, nodes)
    assert nodes == {} and result.labels == {}
