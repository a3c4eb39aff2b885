"""Segmenting from the seed inside a scene, editing the result, planning again (the SpinePlanner
module's Segment / Edit in Segment Editor / re-run workflow, headless)."""

from __future__ import annotations

import numpy as np
import pytest
from test_logic_plan_in_scene import _replace_segment as replace_segment
from test_logic_plan_in_scene import plan, scene_with_phantom, segment_names, table_rows

from SpinePlannerLib.mrml import logic

SEGMENTATION_STAGES = ["segmentation", "tumor_measurement"]


@pytest.fixture(scope="module")
def segmented():
    """The phantom segmented once from its seed: (phantom, core, inputs, result)."""
    pytest.importorskip("SpinePlannerLib.segmentation.stage")
    from SpinePlannerLib.phantom.case import generate_phantom

    phantom = generate_phantom("intramedullary-displacing", seed=0)
    core, inputs = scene_with_phantom(phantom)
    return phantom, core, inputs, plan(core, inputs, only=SEGMENTATION_STAGES)


def test_segmentation_from_the_seed_appears_in_the_scene_with_measurements(segmented):
    phantom, core, _inputs, result = segmented
    assert result.plan["stages"]["segmentation"]["status"] == "done", result.plan["stages"]["segmentation"]
    seg = result.segmentation
    assert seg is not None and seg.GetScene() is core.scene
    assert {"cord", "tumor"} <= segment_names(seg)
    assert seg.GetAttribute(logic.ATTR_CREATED_BY) == "result-segmentation"
    truth = phantom.truth["tumor"]
    assert result.plan["tumor"]["volume_ml"] == pytest.approx(truth["volume_ml"], rel=0.35)
    rows = table_rows(result.measurements)
    assert rows[("tumor", "compartment")] == result.plan["tumor"]["compartment"]
    assert float(rows[("tumor", "volume_ml")]) == pytest.approx(result.plan["tumor"]["volume_ml"], rel=1e-3)
    tumor = seg.GetSegmentation().GetSegment(seg.GetSegmentation().GetSegmentIdBySegmentName("tumor"))
    stored = logic.segment_mask_on(seg, seg.GetSegmentation().GetSegmentIdBySegmentName("tumor"),
                                   result.ctx.reference, result.nodes["t2"], core.logics)
    assert logic._segment_tag(tumor, logic.TAG_MASK_HASH) == logic.mask_hash(stored.array)


def test_a_run_without_the_segmentation_stage_uses_the_existing_segments(segmented):
    """Measuring again (segmentation stage not run) takes the earlier results as they are."""
    _phantom, core, inputs, first = segmented
    again = plan(core, logic.SceneInputs(volumes=inputs.volumes, segmentation=first.segmentation),
                 only=["tumor_measurement"], measurements=first.measurements)
    assert again.plan["tumor"]["volume_ml"] == first.plan["tumor"]["volume_ml"]
    assert again.kept_edits == [] and again.segmentation is first.segmentation


def test_edited_tumor_segment_is_kept_on_rerun(segmented):
    phantom, core, inputs, first = segmented
    inputs.segmentation = first.segmentation
    ref = first.ctx.reference
    edited = np.zeros(ref.shape3, np.uint8)
    i, j, k = np.round(ref.ras_to_ijk(phantom.truth["tumor"]["centroid_ras"])).astype(int)
    edited[i - 1:i + 2, j - 1:j + 2, k - 1:k + 2] = 1
    replace_segment(core, first.segmentation, "tumor", ref.with_array(edited), inputs.volumes["t2"])

    kept = plan(core, inputs, only=SEGMENTATION_STAGES, measurements=first.measurements)
    assert kept.kept_edits == ["tumor"]
    assert kept.segmentation is first.segmentation
    assert int(np.count_nonzero(kept.ctx.labels["tumor"].array)) == 27
    assert kept.plan["tumor"]["volume_ml"] == pytest.approx(27 * ref.voxel_volume_ml, abs=0.0005)
    assert any("edited segment was kept" in w for w in kept.plan["warnings"])
    assert {"cord", "tumor"} <= segment_names(kept.segmentation)
    # the recomputed (unedited) cord keeps a valid hash: a further run would recompute it again
    labels, edited_now = logic.labels_from_segmentation(kept.segmentation, ref, inputs.volumes["t2"], core.logics)
    assert edited_now == ["tumor"] and set(labels) == {"tumor"}
