"""Tract files with VTK: streamlines <-> vtkPolyData, the VTP file, and every tract export (L2).

* **VTP** (VTK XML poly data): one polyline per streamline, points in RAS mm, and the field-data
  string array ``SPACE = "RAS"`` that 3D Slicer reads as the file's coordinate system (a VTP
  without it is read as LPS). Point arrays: ``direction_rgb`` (|tangent| as RGB 0..255) and
  optionally ``FA``; cell arrays: the per-streamline data.
* TRX and TCK (no VTK) are written by :mod:`DTITractographyLib.streamline_io`.

VTK lives on the MRML side of the layering rule (``Testing/slicer_static/test_layering.py``), so
these functions are here, not in the algorithm modules.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import vtk
from vtk.util import numpy_support

from SpinePlannerLib.core.imageio import atomic_path

from .analysis import TractographyResult
from .streamline_io import as_list, direction_colors, finish_atomic, write_tck, write_trx


def streamlines_to_polydata(streamlines, *, point_data: dict[str, list] | None = None,
                            cell_data: dict[str, np.ndarray] | None = None, space: str | None = "RAS"):
    """vtkPolyData with one polyline per streamline (points as given, RAS mm).

    ``point_data``: name -> list of per-point arrays (one per streamline); ``cell_data``:
    name -> array of one value per streamline. ``direction_rgb`` is always added and made the
    active scalars. ``space`` adds the Slicer ``SPACE`` field-data tag.
    """
    sl = as_list(streamlines)
    lengths = np.array([len(s) for s in sl], np.int64)
    pts = np.concatenate(sl) if sl else np.zeros((0, 3), np.float32)
    poly = vtk.vtkPolyData()
    points = vtk.vtkPoints()
    points.SetData(numpy_support.numpy_to_vtk(np.ascontiguousarray(pts, np.float32), deep=True))
    poly.SetPoints(points)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    conn = np.arange(len(pts), dtype=np.int64)
    cells = vtk.vtkCellArray()
    cells.SetData(numpy_support.numpy_to_vtkIdTypeArray(offsets, deep=True),
                  numpy_support.numpy_to_vtkIdTypeArray(conn, deep=True))
    poly.SetLines(cells)
    rgb = np.concatenate([direction_colors(s) for s in sl]) if sl else np.zeros((0, 3), np.uint8)
    arr = numpy_support.numpy_to_vtk(rgb, deep=True, array_type=vtk.VTK_UNSIGNED_CHAR)
    arr.SetName("direction_rgb")
    poly.GetPointData().AddArray(arr)
    poly.GetPointData().SetActiveScalars("direction_rgb")
    for name, values in (point_data or {}).items():
        flat = np.concatenate([np.asarray(v, np.float32).ravel() for v in values]) if values else np.zeros(0, np.float32)
        if len(flat) != len(pts):
            raise ValueError(f"point data {name!r} has {len(flat)} values for {len(pts)} points")
        a = numpy_support.numpy_to_vtk(flat, deep=True)
        a.SetName(name)
        poly.GetPointData().AddArray(a)
    for name, values in (cell_data or {}).items():
        values = np.asarray(values, np.float32).ravel()
        if len(values) != len(sl):
            raise ValueError(f"cell data {name!r} has {len(values)} values for {len(sl)} streamlines")
        a = numpy_support.numpy_to_vtk(values, deep=True)
        a.SetName(name)
        poly.GetCellData().AddArray(a)
    if space:
        tag = vtk.vtkStringArray()
        tag.SetName("SPACE")
        tag.InsertNextValue(space)
        poly.GetFieldData().AddArray(tag)
    return poly


def polydata_to_streamlines(poly) -> list[np.ndarray]:
    """Polylines of a vtkPolyData as a list of (n, 3) float arrays."""
    pts = numpy_support.vtk_to_numpy(poly.GetPoints().GetData()) if poly.GetPoints() else np.zeros((0, 3))
    lines = poly.GetLines()
    offsets = numpy_support.vtk_to_numpy(lines.GetOffsetsArray())
    conn = numpy_support.vtk_to_numpy(lines.GetConnectivityArray())
    return [pts[conn[a:b]].astype(float) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def write_vtp(path, streamlines, *, point_data=None, cell_data=None) -> Path:
    """Write streamlines (RAS mm) as a VTK XML poly data file tagged ``SPACE=RAS`` (atomic)."""
    path = Path(path)
    poly = streamlines_to_polydata(streamlines, point_data=point_data, cell_data=cell_data, space="RAS")
    tmp = atomic_path(path)
    try:
        writer = vtk.vtkXMLPolyDataWriter()
        writer.SetFileName(str(tmp))
        writer.SetInputData(poly)
        writer.SetDataModeToBinary()
        writer.SetCompressorTypeToZLib()
        if not writer.Write():
            raise OSError(f"VTK could not write {path}")
        return finish_atomic(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_vtp(path) -> tuple[list[np.ndarray], str | None]:
    """Read a VTP written by :func:`write_vtp`: (streamlines, SPACE tag or None)."""
    reader = vtk.vtkXMLPolyDataReader()
    reader.SetFileName(str(path))
    reader.Update()
    poly = reader.GetOutput()
    tag = poly.GetFieldData().GetAbstractArray("SPACE")
    return polydata_to_streamlines(poly), (tag.GetValue(0) if tag is not None else None)


def write_tract_files(result: TractographyResult, folder, *, stem: str = "cord_tracts") -> dict:
    """Write the streamlines as ``<stem>.trx``, ``.tck`` and ``.vtp`` (RAS mm) into ``folder``.

    Returns ``{"trx": path, "tck": path, "vtp": path}``; nothing is written without streamlines.
    """
    folder = Path(folder)
    if not result.streamlines:
        return {}
    folder.mkdir(parents=True, exist_ok=True)
    dps = result.per_streamline()
    point_fa = result.point_fa()
    return {
        "trx": write_trx(folder / f"{stem}.trx", result.streamlines, result.tensors.affine, result.tensors.fa.shape,
                         dps=dps, dpv={"FA": point_fa}),
        "tck": write_tck(folder / f"{stem}.tck", result.streamlines),
        "vtp": write_vtp(folder / f"{stem}.vtp", result.streamlines, point_data={"FA": point_fa}, cell_data=dps),
    }
