"""Slicer logic on a headless scene: DWI node <-> DiffusionData, masks from label maps and
segments, result nodes (FA/MD/AD/RD, tensor, direction-colored tract model in RAS) that
survive a .mrb round trip."""

from __future__ import annotations

import numpy as np
import pytest
from vtk.util import numpy_support

from DTITractographyLib.logic import add_dwi_node, diffusion_data_from_node, run_tractography
from DTITractographyLib.mrml_tracts import add_tract_model
from DTITractographyLib.params import TrackingParams, TractographyParams
from DTITractographyLib.synthetic import make_synthetic_cord
from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.mrml.headless import load_scene_from_mrb
from SpinePlannerLib.mrml.volumes import add_segmentation_from_masks, add_volume_node


@pytest.fixture(scope="module")
def case():
    return make_synthetic_cord("crossing")


def test_dwi_node_round_trip_keeps_voxels_geometry_and_ras_gradients(core, case):
    node = add_dwi_node(core, case.dwi)
    back = diffusion_data_from_node(node)
    assert np.array_equal(back.volume.array, case.dwi.volume.array)
    assert np.allclose(back.volume.affine, case.dwi.volume.affine, atol=1e-9)
    assert np.allclose(back.bvals, case.dwi.bvals)
    assert np.allclose(back.bvecs_ras, case.dwi.bvecs_ras, atol=1e-9)


def test_measurement_frame_rotates_node_gradients_into_ras(core, case):
    from SpinePlannerLib.mrml.volumes import numpy_to_vtk_matrix

    node = add_dwi_node(core, case.dwi)
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    mf = np.eye(4)
    mf[:3, :3] = rot
    node.SetMeasurementFrameMatrix(numpy_to_vtk_matrix(mf))
    grads = numpy_support.vtk_to_numpy(node.GetDiffusionGradients()).reshape(-1, 3).copy()
    assert np.allclose(diffusion_data_from_node(node).bvecs_ras, grads @ rot.T, atol=1e-9)


def test_run_tractography_from_nodes_adds_maps_tensor_and_tract_model(core, case, tmp_path):
    dwi_node = add_dwi_node(core, case.dwi)
    cord_node = add_volume_node(core.scene, case.cord, name="cord", labelmap=True)
    ref = add_volume_node(core.scene, case.cord, name="reference")
    seg = add_segmentation_from_masks(core.scene, core.logics, ref, {"tumor": case.tumor}, name="seg",
                                      closed_surface=False)
    calls = []
    run = run_tractography(core, dwi_node, cord_node, (seg, "tumor"), TractographyParams(tracking=TrackingParams(seeds_per_voxel=1)),
                           lambda f, m: calls.append(f), output_dir=tmp_path)
    assert run.section["setzer_type"] == 2
    assert calls and calls[-1] == 1.0 and all(0 <= f <= 1 for f in calls)
    assert calls == sorted(calls)
    for key in ("dti_fa", "dti_md", "dti_ad", "dti_rd", "dti_tensor", "tracts"):
        assert key in run.nodes
    model = run.nodes["tracts"]
    poly = model.GetPolyData()
    assert poly.GetNumberOfLines() == len(run.result.streamlines)
    pts = numpy_support.vtk_to_numpy(poly.GetPoints().GetData())
    assert np.abs(pts - np.concatenate(run.result.streamlines)).max() < 1e-4
    display = model.GetDisplayNode()
    assert display.GetActiveScalarName() == "direction_rgb"
    assert display.GetScalarRangeFlag() == display.UseDirectMapping
    fa = run.nodes["dti_fa"]
    assert fa.GetImageData().GetScalarRange()[1] <= 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cord_tracts.tck", "cord_tracts.trx", "cord_tracts.vtp"]

    path = tmp_path / "scene.mrb"
    assert core.scene.WriteToMRB(str(path))
    back = load_scene_from_mrb(path)
    model2 = back.scene.GetFirstNodeByName(model.GetName())
    pts2 = numpy_support.vtk_to_numpy(model2.GetPolyData().GetPoints().GetData())
    assert np.abs(pts2 - pts).max() < 1e-4
    tensor2 = back.scene.GetFirstNodeByName(run.nodes["dti_tensor"].GetName())
    t_back = numpy_support.vtk_to_numpy(tensor2.GetImageData().GetPointData().GetTensors())
    t_orig = numpy_support.vtk_to_numpy(run.nodes["dti_tensor"].GetImageData().GetPointData().GetTensors())
    assert np.abs(t_back - t_orig).max() < 1e-9


def test_fa_coloring_and_fiber_bundle_fallback(core):
    s = [np.array([[0, 0, 0], [0, 0, 1.0], [0, 0, 2.0]], np.float32)]
    node = add_tract_model(core.scene, s, point_fa=[np.array([0.2, 0.5, 0.8], np.float32)], color_by="fa")
    assert node.GetClassName() == "vtkMRMLModelNode"  # SlicerDMRI is not in slicer-core
    assert node.GetDisplayNode().GetActiveScalarName() == "FA"
    with pytest.raises(ValueError, match="point_fa"):
        add_tract_model(core.scene, s, color_by="fa")


def test_missing_cord_is_an_input_error(core, case):
    with pytest.raises(InputError, match="cord"):
        run_tractography(core, case.dwi, None)


def test_tube_rendering_surrounds_the_polyline(core):
    from DTITractographyLib.mrml_tracts import TUBE_RADIUS_MM

    s = [np.array([[0, 0, z] for z in np.arange(0.0, 10.5, 0.5)], np.float32)]
    node = add_tract_model(core.scene, s, tubes=True, use_fiber_bundle=False)
    pts = numpy_support.vtk_to_numpy(node.GetPolyData().GetPoints().GetData())
    radial = np.linalg.norm(pts[:, :2], axis=1)
    assert node.GetPolyData().GetNumberOfPolys() + node.GetPolyData().GetNumberOfStrips() > 0
    assert np.allclose(radial[radial > 1e-6], TUBE_RADIUS_MM, atol=1e-4)
