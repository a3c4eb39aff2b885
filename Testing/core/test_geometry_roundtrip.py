"""Round trips of every coordinate conversion on oblique, anisotropic, non-RAS-ordered grids.

Tolerance: < 1e-4 mm for positions (CLINICAL.md §1: software error must be far below the
0.72 mm AR registration error), exact voxel values.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from testimages import assert_same_world_image, ball_mask, blob_volume, corner_positions, oblique_affine

from SpinePlannerLib.core.geometry import mask_centroid_ras, resample_like, resample_mask_like
from SpinePlannerLib.core.imageio import read_volume, volume_from_sitk, volume_to_sitk, write_volume
from SpinePlannerLib.core.volume import LPS_TO_RAS, Volume, affine_to_lps_geometry, lps_geometry_to_affine
from SpinePlannerLib.mrml.volumes import add_volume_node, volume_from_node

TOL_MM = 1e-4
ORDERS = ["PSR", "LAS", "RAS", "IPL"]


@pytest.fixture(params=ORDERS)
def oblique(request):
    return blob_volume(oblique_affine(order=request.param), name=f"oblique-{request.param}")


def assert_same_geometry(a: Volume, b: Volume):
    assert a.shape3 == b.shape3
    assert np.max(np.abs(corner_positions(a) - corner_positions(b))) < TOL_MM


def test_lps_geometry_round_trip_is_exact(oblique):
    origin, spacing, direction = affine_to_lps_geometry(oblique.affine)
    back = lps_geometry_to_affine(origin, spacing, direction)
    assert np.max(np.abs(back - oblique.affine)) < 1e-9
    # The flip acts on the whole direction matrix and origin: LPS x and y are negated RAS x and y
    ras_point = oblique.ijk_to_ras([1, 2, 3])
    lps_point = (np.linalg.inv(LPS_TO_RAS) @ np.append(ras_point, 1))[:3]
    assert np.allclose(lps_point, [-ras_point[0], -ras_point[1], ras_point[2]])


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd"])
def test_file_round_trip_preserves_geometry_and_values(oblique, tmp_path, suffix):
    path = write_volume(oblique, tmp_path / f"v{suffix}")
    back = read_volume(path)
    assert_same_geometry(oblique, back)
    assert np.array_equal(back.array, oblique.array)


def test_sitk_round_trip_and_independent_physical_points(oblique):
    image = volume_to_sitk(oblique)
    # SimpleITK's own index->physical (LPS) must equal our ijk->RAS after the flip
    for ijk in ([0, 0, 0], [5, 3, 2], [23, 19, 13]):
        lps = np.array(image.TransformIndexToPhysicalPoint([int(v) for v in ijk]))
        ras = oblique.ijk_to_ras(ijk)
        assert np.max(np.abs(lps * [-1, -1, 1] - ras)) < TOL_MM
        assert image.GetPixel(*[int(v) for v in ijk]) == pytest.approx(float(oblique.array[tuple(ijk)]))
    back = volume_from_sitk(image)
    assert_same_geometry(oblique, back)
    assert np.array_equal(back.array, oblique.array)


def test_nifti_written_here_reads_identically_in_simpleitk(oblique, tmp_path):
    """An independent reader (ITK's NIfTI IO) agrees with nibabel's affine on our files."""
    path = write_volume(oblique, tmp_path / "v.nii.gz")
    image = sitk.ReadImage(str(path))
    assert_same_geometry(oblique, volume_from_sitk(image))


def test_mrml_volume_node_round_trip(core, oblique):
    node = add_volume_node(core.scene, oblique, name="oblique")
    back = volume_from_node(node)
    assert_same_geometry(oblique, back)
    assert np.array_equal(back.array, oblique.array)
    # the node's own IJK->RAS agrees point by point
    import vtk

    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    p = m.MultiplyPoint((4, 5, 6, 1))[:3]
    assert np.max(np.abs(np.array(p) - oblique.ijk_to_ras([4, 5, 6]))) < TOL_MM


def test_mrb_round_trip_keeps_geometry(core, oblique, tmp_path):
    from SpinePlannerLib.mrml.headless import load_scene_from_mrb

    add_volume_node(core.scene, oblique, name="oblique")
    path = tmp_path / "scene.mrb"
    assert core.scene.WriteToMRB(str(path))
    reloaded = load_scene_from_mrb(path)
    node = reloaded.scene.GetFirstNodeByName("oblique")
    back = volume_from_node(node)
    # Slicer's reader may store the voxels in another axis order (e.g. flipped to a positive
    # determinant); what must hold is the same value at the same RAS position.
    assert_same_world_image(oblique, back, tol_mm=TOL_MM)


def test_label_map_segmentation_round_trip(core):
    """mask -> segmentation node (binary labelmap) -> exported label map: same voxels, same place."""
    from SpinePlannerLib.mrml.volumes import add_segmentation_from_masks

    aff = oblique_affine(order="PSR")
    shape = (30, 26, 16)
    ref = Volume(np.zeros(shape, np.float32), aff, "ref")
    center = ref.ijk_to_ras([15, 12, 8])
    mask = ball_mask(aff, shape, center, 7.0)
    ref_node = add_volume_node(core.scene, ref, name="ref")
    seg = add_segmentation_from_masks(core.scene, core.logics, ref_node, {"tumor": mask}, closed_surface=True)
    lm = core.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "exported")
    assert core.logics["Segmentations"].ExportAllSegmentsToLabelmapNode(seg, lm, 2)  # 2 = reference geometry
    back = volume_from_node(lm)
    back_on_ref = resample_mask_like(back, ref)
    assert np.array_equal(back_on_ref.array > 0, mask.array > 0)
    # closed surface exists and encloses the centre
    poly = seg.GetClosedSurfaceInternalRepresentation(seg.GetSegmentation().GetNthSegmentID(0))
    assert poly is not None and poly.GetNumberOfPoints() > 100
    pts = np.array([poly.GetPoint(i) for i in range(poly.GetNumberOfPoints())])
    assert np.linalg.norm(pts.mean(axis=0) - center) < 0.5  # mm; surface centroid vs ball centre
    radii = np.linalg.norm(pts - center, axis=1)
    assert 5.5 < radii.mean() < 8.0  # mm; a 7 mm ball rasterised on 0.7-2.9 mm voxels


def test_label_resampled_between_oblique_grids_stays_in_place():
    """A ball given on a PSR grid lands at the same RAS position on a LAS reference grid."""
    src_aff = oblique_affine(order="PSR", spacing=(0.5, 0.6, 0.7), angles_deg=(30, 10, -15))
    ref_aff = oblique_affine(order="LAS", spacing=(0.8, 0.8, 1.5), angles_deg=(-5, 8, 3), origin=(0, 0, 0))
    center = np.array([4.0, -3.0, 8.0])
    src = ball_mask(src_aff, (60, 60, 60), center - [0, 0, 0], 6.0)
    src.affine[:3, 3] += center - src.ijk_to_ras(np.array([29.5, 29.5, 29.5]))
    src = ball_mask(src.affine, (60, 60, 60), center, 6.0)
    ref = Volume(np.zeros((30, 30, 20), np.float32), ref_aff)
    ref.affine[:3, 3] += center - ref.ijk_to_ras([14.5, 14.5, 9.5])
    out = resample_mask_like(src, ref)
    assert np.linalg.norm(mask_centroid_ras(out) - center) < 0.3  # mm (voxels 0.8-1.5 mm)
    expected = ball_mask(ref.affine, ref.shape3, center, 6.0)
    dice = 2 * np.sum(out.array & expected.array) / (out.array.sum() + expected.array.sum())
    assert dice > 0.95


def test_resample_like_same_grid_is_identity(oblique):
    assert np.array_equal(resample_like(oblique, oblique).array, oblique.array)


def test_model_storage_round_trip_in_lps_file(core, tmp_path):
    """Models exported for navigation are written in LPS by Slicer: reading back restores RAS."""
    import vtk

    sphere = vtk.vtkSphereSource()
    sphere.SetCenter(12.3, -45.6, 78.9)
    sphere.SetRadius(5.0)
    sphere.Update()
    model = core.scene.AddNewNodeByClass("vtkMRMLModelNode", "m")
    model.SetAndObservePolyData(sphere.GetOutput())
    storage = core.scene.AddNewNodeByClass("vtkMRMLModelStorageNode")
    storage.SetCoordinateSystem(1)  # LPS
    storage.SetFileName(str(tmp_path / "m.vtk"))
    assert storage.WriteData(model)
    text = (tmp_path / "m.vtk").read_bytes()[:400]
    assert b"SPACE=LPS" in text
    back = core.scene.AddNewNodeByClass("vtkMRMLModelNode", "back")
    reader = core.scene.AddNewNodeByClass("vtkMRMLModelStorageNode")
    reader.SetFileName(str(tmp_path / "m.vtk"))
    assert reader.ReadData(back)
    a = np.array([sphere.GetOutput().GetPoint(i) for i in range(sphere.GetOutput().GetNumberOfPoints())])
    b = np.array([back.GetPolyData().GetPoint(i) for i in range(back.GetPolyData().GetNumberOfPoints())])
    assert np.max(np.abs(a - b)) < TOL_MM


def test_mask_cropped_to_its_extent_resamples_like_the_uncropped_mask():
    """Slicer exports segments cropped to their extent: the crop must not change the mask."""
    aff = oblique_affine(order="PSR", spacing=(1.0, 1.1, 1.7))
    center = Volume(np.zeros((40, 40, 30)), aff).ijk_to_ras([20, 20, 15])
    full = ball_mask(aff, (40, 40, 30), center, 7.0)
    idx = np.argwhere(full.array)
    lo, hi = idx.min(axis=0), idx.max(axis=0) + 1
    crop = Volume(full.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].copy(), aff.copy())
    crop.affine[:3, 3] = full.ijk_to_ras(lo)
    ref_aff = np.diag([0.6, 0.6, 0.6, 1.0])
    ref_aff[:3, 3] = center - 0.6 * 25
    ref = Volume(np.zeros((50, 50, 50)), ref_aff)
    assert np.array_equal(resample_mask_like(crop, ref).array, resample_mask_like(full, ref).array)
