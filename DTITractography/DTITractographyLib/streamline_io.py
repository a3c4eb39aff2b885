"""Streamline files: TRX, TCK and VTP, all in RAS millimetres (L1; VTK imported lazily).

* **TRX** (trx-python): positions in RAS mm (the format's definition), header
  ``VOXEL_TO_RASMM``/``DIMENSIONS`` of the DWI grid; per-streamline data (``dps``) carries the
  tract-tumor relationship flags.
* **TCK** (MRtrix, via ``nibabel.streamlines``): points in scanner RAS mm.
* **VTP** (VTK XML poly data): one polyline per streamline, points in RAS mm, and the field-data
  string array ``SPACE = "RAS"`` that 3D Slicer reads as the file's coordinate system (a VTP
  without it is read as LPS). Point arrays: ``direction_rgb`` (|tangent| as RGB 0..255) and
  optionally ``FA``; cell arrays: the per-streamline data.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from SpinePlannerLib.core.imageio import atomic_path


def _as_list(streamlines) -> list[np.ndarray]:
    return [np.asarray(s, np.float32).reshape(-1, 3) for s in streamlines]


def direction_colors(streamline: np.ndarray) -> np.ndarray:
    """Per-point RGB (uint8) from the absolute local tangent in RAS (R red, A green, S blue)."""
    s = np.asarray(streamline, float)
    if len(s) < 2:
        return np.full((len(s), 3), 255, np.uint8)
    tangent = np.gradient(s, axis=0)
    n = np.linalg.norm(tangent, axis=1, keepdims=True)
    tangent = np.abs(tangent) / np.maximum(n, 1e-12)
    return np.clip(np.round(tangent * 255.0), 0, 255).astype(np.uint8)


def streamlines_to_polydata(streamlines, *, point_data: dict[str, list] | None = None,
                            cell_data: dict[str, np.ndarray] | None = None, space: str | None = "RAS"):
    """vtkPolyData with one polyline per streamline (points as given, RAS mm).

    ``point_data``: name -> list of per-point arrays (one per streamline); ``cell_data``:
    name -> array of one value per streamline. ``direction_rgb`` is always added and made the
    active scalars. ``space`` adds the Slicer ``SPACE`` field-data tag.
    """
    import vtk
    from vtk.util import numpy_support

    sl = _as_list(streamlines)
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
    from vtk.util import numpy_support

    pts = numpy_support.vtk_to_numpy(poly.GetPoints().GetData()) if poly.GetPoints() else np.zeros((0, 3))
    lines = poly.GetLines()
    offsets = numpy_support.vtk_to_numpy(lines.GetOffsetsArray())
    conn = numpy_support.vtk_to_numpy(lines.GetConnectivityArray())
    return [pts[conn[a:b]].astype(float) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def _finish(tmp: Path, path: Path) -> Path:
    os.replace(tmp, path)
    return path


def write_vtp(path, streamlines, *, point_data=None, cell_data=None) -> Path:
    """Write streamlines (RAS mm) as a VTK XML poly data file tagged ``SPACE=RAS`` (atomic)."""
    import vtk

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
        return _finish(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_vtp(path) -> tuple[list[np.ndarray], str | None]:
    """Read a VTP written by :func:`write_vtp`: (streamlines, SPACE tag or None)."""
    import vtk

    reader = vtk.vtkXMLPolyDataReader()
    reader.SetFileName(str(path))
    reader.Update()
    poly = reader.GetOutput()
    tag = poly.GetFieldData().GetAbstractArray("SPACE")
    return polydata_to_streamlines(poly), (tag.GetValue(0) if tag is not None else None)


def write_tck(path, streamlines) -> Path:
    """Write streamlines as an MRtrix ``.tck`` (points in RAS mm, float32) atomically."""
    from nibabel.streamlines import Tractogram
    from nibabel.streamlines.tck import TckFile

    path = Path(path)
    tractogram = Tractogram(_as_list(streamlines), affine_to_rasmm=np.eye(4))
    tmp = atomic_path(path)
    try:
        TckFile(tractogram).save(str(tmp))
        return _finish(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_tck(path) -> list[np.ndarray]:
    """Read a ``.tck`` file: list of (n, 3) arrays in RAS mm."""
    import nibabel as nib

    return [np.asarray(s, float) for s in nib.streamlines.load(str(path)).streamlines]


def write_trx(path, streamlines, reference_affine, reference_shape, *, dps: dict[str, np.ndarray] | None = None,
              dpv: dict[str, list] | None = None) -> Path:
    """Write a ``.trx`` (positions in RAS mm) whose header references the DWI grid.

    ``dps``: name -> one value per streamline; ``dpv``: name -> list of per-point arrays.
    """
    import nibabel as nib
    from nibabel.streamlines import Tractogram
    from trx.trx_file_memmap import TrxFile
    from trx.trx_file_memmap import save as trx_save

    path = Path(path)
    sl = _as_list(streamlines)
    data_per_point = {k: [np.asarray(a, np.float32).reshape(-1, 1) for a in v] for k, v in (dpv or {}).items()}
    data_per_streamline = {k: np.asarray(v, np.float32).reshape(len(sl), -1) for k, v in (dps or {}).items()}
    tractogram = Tractogram(sl, data_per_streamline=data_per_streamline, data_per_point=data_per_point,
                            affine_to_rasmm=np.eye(4))
    header = nib.Nifti1Header()
    header.set_data_shape(tuple(int(s) for s in reference_shape[:3]))
    header.set_sform(np.asarray(reference_affine, float), code=1)
    header.set_qform(np.asarray(reference_affine, float), code=1)
    trx = TrxFile.from_tractogram(tractogram, reference=header)
    tmp = atomic_path(path)
    try:
        tmp.unlink()
        trx_save(trx, str(tmp))
        return _finish(tmp, path)
    finally:
        trx.close()
        if tmp.exists():
            tmp.unlink()


def read_trx(path) -> tuple[list[np.ndarray], dict, dict[str, np.ndarray]]:
    """Read a ``.trx``: (streamlines in RAS mm, header, data per streamline)."""
    from trx.trx_file_memmap import load as trx_load

    trx = trx_load(str(path))
    try:
        sl = [np.asarray(s, float).copy() for s in trx.streamlines]
        header = {k: (np.asarray(v).copy() if isinstance(v, np.ndarray) else v) for k, v in trx.header.items()}
        dps = {k: np.asarray(v).copy() for k, v in trx.data_per_streamline.items()}
    finally:
        trx.close()
    return sl, header, dps
