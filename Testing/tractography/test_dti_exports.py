"""Streamline exports: TRX, TCK and VTP round trips in RAS (< 1e-4 mm), the TRX header of the
DWI grid, per-streamline data, and a VTP that 3D Slicer's own model reader loads as RAS."""

from __future__ import annotations

import numpy as np
import pytest

from DTITractographyLib.analysis import analyze
from DTITractographyLib.mrml_tract_files import read_vtp, streamlines_to_polydata, write_tract_files
from DTITractographyLib.streamline_io import direction_colors, read_tck, read_trx
from DTITractographyLib.synthetic import make_synthetic_cord

TOL_MM = 1e-4


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    case = make_synthetic_cord("crossing")
    result = analyze(case.dwi, case.cord, case.tumor)
    folder = tmp_path_factory.mktemp("tracts")
    return result, write_tract_files(result, folder)


def _max_error(a, b) -> float:
    assert len(a) == len(b)
    assert all(len(x) == len(y) for x, y in zip(a, b, strict=True))
    return float(np.abs(np.concatenate(a) - np.concatenate(b)).max())


def test_tck_round_trip_is_exact_in_ras(written):
    result, files = written
    assert _max_error(read_tck(files["tck"]), result.streamlines) < TOL_MM
    header = files["tck"].read_bytes()[:200]
    assert header.startswith(b"mrtrix tracks") and b"Float32LE" in header


def test_trx_round_trip_keeps_points_header_and_relationship_flags(written):
    result, files = written
    sl, header, dps = read_trx(files["trx"])
    assert _max_error(sl, result.streamlines) < TOL_MM
    assert np.allclose(header["VOXEL_TO_RASMM"], result.tensors.affine, atol=TOL_MM)
    assert [int(x) for x in header["DIMENSIONS"]] == list(result.tensors.fa.shape)
    flags = result.per_streamline()
    assert set(flags) <= set(dps)
    assert np.array_equal(dps["entering"].ravel() > 0, flags["entering"] > 0)
    assert np.count_nonzero(dps["entering"]) > 0


def test_vtp_round_trip_is_tagged_ras(written):
    result, files = written
    sl, space = read_vtp(files["vtp"])
    assert space == "RAS"
    assert _max_error(sl, result.streamlines) < TOL_MM


def test_slicer_model_reader_loads_the_vtp_in_ras(written, core):
    """Slicer reads a VTP without SPACE as LPS; ours must come back unflipped."""
    import slicer
    from vtk.util import numpy_support

    result, files = written
    scene = core.scene
    storage = scene.AddNewNodeByClass("vtkMRMLModelStorageNode")
    storage.SetFileName(str(files["vtp"]))
    model = scene.AddNewNodeByClass("vtkMRMLModelNode", "loaded")
    model.SetAndObserveStorageNodeID(storage.GetID())
    assert storage.ReadData(model)
    assert storage.GetCoordinateSystem() == slicer.vtkMRMLStorageNode.CoordinateSystemRAS
    pts = numpy_support.vtk_to_numpy(model.GetPolyData().GetPoints().GetData())
    assert np.abs(pts - np.concatenate(result.streamlines)).max() < TOL_MM


def test_untagged_vtp_would_be_flipped_by_slicer(tmp_path, core):
    """The control: the same polylines without the SPACE tag are read as LPS (x, y negated)."""
    import vtk
    from vtk.util import numpy_support

    line = [np.array([[10.0, 20.0, 30.0], [11.0, 21.0, 33.0]], np.float32)]
    writer = vtk.vtkXMLPolyDataWriter()
    writer.SetFileName(str(tmp_path / "plain.vtp"))
    writer.SetInputData(streamlines_to_polydata(line, space=None))
    assert writer.Write()
    storage = core.scene.AddNewNodeByClass("vtkMRMLModelStorageNode")
    storage.SetFileName(str(tmp_path / "plain.vtp"))
    model = core.scene.AddNewNodeByClass("vtkMRMLModelNode")
    assert storage.ReadData(model)
    pts = numpy_support.vtk_to_numpy(model.GetPolyData().GetPoints().GetData())
    assert np.allclose(pts[0], [-10.0, -20.0, 30.0])


def test_direction_colors_encode_the_ras_axis():
    s = np.array([[0, 0, 0], [0, 0, 1.0], [0, 0, 2.0]])
    assert np.array_equal(direction_colors(s)[1], [0, 0, 255])
    s = np.array([[0, 0, 0], [-1.0, 0, 0], [-2.0, 0, 0]])
    assert np.array_equal(direction_colors(s)[0], [255, 0, 0])
