"""Scene content of the synthetic-CT check (L2): difference volume, flagged segment, CT transform."""

from __future__ import annotations

import numpy as np
import pytest
import vtk

from SpinePlannerLib.mrml.volumes import add_segmentation_from_masks, add_volume_node
from SyntheticCTCheckLib.logic import run_check_on_nodes
from SyntheticCTCheckLib.mrml_sct import FLAGGED_SEGMENT_NAME
from SyntheticCTCheckLib.synthetic_cases import make_case


@pytest.fixture(scope="module")
def case():
    return make_case(ct_lesion_hu=550.0, sct_lesion_hu=12.0)


def _rgb(color_node, index):
    rgba = [0.0] * 4
    color_node.GetColor(index, rgba)
    return np.array(rgba[:3])


def test_check_on_scene_nodes_adds_a_diverging_difference_volume_and_the_flagged_segment(core, case):
    scene = core.scene
    ct_node = add_volume_node(scene, case["ct"], name="CT")
    sct_node = add_volume_node(scene, case["sct"], name="sCT")
    roi_node = add_volume_node(scene, case["roi"], name="tumor", labelmap=True)
    result, nodes = run_check_on_nodes(scene, core.logics, sct_node=sct_node, roi_node=roi_node, ct_node=ct_node)
    assert result.section["disagreement"] is True

    display = nodes["sct_difference"].GetDisplayNode()
    assert display.GetLevel() == 0.0 and display.GetWindow() >= 400.0  # centred on 0 HU, symmetric
    color = display.GetColorNode()
    n = color.GetNumberOfColors()
    low, mid, high = _rgb(color, 0), _rgb(color, n // 2), _rgb(color, n - 1)
    assert low[2] > low[0] + 0.5 and high[0] > high[2] + 0.5  # blue ... red
    assert np.all(mid > 0.9)  # white at zero difference

    seg = nodes["sct_flagged"].GetSegmentation()
    assert seg.GetNthSegment(0).GetName() == FLAGGED_SEGMENT_NAME

    # the CT is carried onto the MRI frame by the registration transform (truth: inverse motion)
    transform = ct_node.GetParentTransformNode()
    assert transform is nodes["sct_ct_transform"]
    m = vtk.vtkMatrix4x4()
    transform.GetMatrixTransformToParent(m)
    got = np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])
    p = np.array([2.0, 0.0, 0.0, 1.0])
    assert np.linalg.norm(got @ p - np.linalg.inv(case["motion"]) @ p) < 0.4  # mm at the lesion
    assert nodes["sct_table"].GetTable().GetNumberOfRows() >= 12


def test_segmentation_node_roi_gives_the_same_result_as_a_label_map(core, case):
    scene = core.scene
    ct_node = add_volume_node(scene, case["ct"], name="CT")
    sct_node = add_volume_node(scene, case["sct"], name="sCT")
    seg_node = add_segmentation_from_masks(scene, core.logics, None, {"tumor": case["roi"]}, closed_surface=False)
    lm_node = add_volume_node(scene, case["roi"], name="tumor", labelmap=True)
    params = dict(sct_node=sct_node, ct_node=ct_node)
    from_seg, _ = run_check_on_nodes(scene, core.logics, roi_node=seg_node, **params)
    from_lm, _ = run_check_on_nodes(scene, core.logics, roi_node=lm_node, **params)
    assert from_seg.section["ct"]["mean_hu"] == pytest.approx(from_lm.section["ct"]["mean_hu"], abs=1.0)
    assert from_seg.section["roi"]["volume_ml"] == pytest.approx(from_lm.section["roi"]["volume_ml"], rel=1e-6)
    assert scene.GetFirstNodeByName("sct-check-roi-tmp") is None  # the temporary label map is removed
