"""Streamline files: TRX and TCK, in RAS millimetres (L1; the VTP file and VTK poly data, which
need VTK, are in :mod:`DTITractographyLib.mrml_tract_files`).

* **TRX** (trx-python): positions in RAS mm (the format's definition), header
  ``VOXEL_TO_RASMM``/``DIMENSIONS`` of the DWI grid; per-streamline data (``dps``) carries the
  tract-tumor relationship flags.
* **TCK** (MRtrix, via ``nibabel.streamlines``): points in scanner RAS mm.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from SpinePlannerLib.core.imageio import atomic_path


def as_list(streamlines) -> list[np.ndarray]:
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


def finish_atomic(tmp: Path, path: Path) -> Path:
    os.replace(tmp, path)
    return path


def write_tck(path, streamlines) -> Path:
    """Write streamlines as an MRtrix ``.tck`` (points in RAS mm, float32) atomically."""
    from nibabel.streamlines import Tractogram
    from nibabel.streamlines.tck import TckFile

    path = Path(path)
    tractogram = Tractogram(as_list(streamlines), affine_to_rasmm=np.eye(4))
    tmp = atomic_path(path)
    try:
        TckFile(tractogram).save(str(tmp))
        return finish_atomic(tmp, path)
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
    sl = as_list(streamlines)
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
        return finish_atomic(tmp, path)
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
