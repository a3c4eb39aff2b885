"""Reading and writing images (NIfTI, NRRD, DICOM series) as RAS :class:`Volume` objects.

* NIfTI is read with nibabel (its sform/qform logic is the reference) and written with the
  volume's RAS affine as both sform and qform.
* NRRD and DICOM go through SimpleITK, whose geometry is LPS; the conversion flips the whole
  direction matrix and origin with ``diag(-1, -1, 1)``.

Every read validates the file and raises :class:`InputError` naming the input on problems.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.volume import Volume, affine_to_lps_geometry, lps_geometry_to_affine

NIFTI_SUFFIXES = (".nii", ".nii.gz")
NRRD_SUFFIXES = (".nrrd", ".nhdr")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for s in (".nii.gz", ".seg.nrrd"):
        if name.endswith(s):
            return s
    return path.suffix.lower()


def _check_finite(arr: np.ndarray, name: str) -> None:
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        n_bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise InputError(name, f"contains {n_bad} NaN/infinite voxel(s); fix or mask them before planning")


# -- SimpleITK <-> Volume --------------------------------------------------------------------
def volume_from_sitk(image: sitk.Image, name: str = "") -> Volume:
    """SimpleITK image (LPS) to a RAS :class:`Volume`; vector pixels become a 4th axis."""
    arr = sitk.GetArrayFromImage(image)  # [k, j, i] (+ components)
    if image.GetNumberOfComponentsPerPixel() > 1:
        arr = np.transpose(arr, (2, 1, 0, 3))
    else:
        arr = np.transpose(arr, (2, 1, 0))
    affine = lps_geometry_to_affine(image.GetOrigin(), image.GetSpacing(), image.GetDirection())
    return Volume(np.ascontiguousarray(arr), affine, name)


def volume_to_sitk(volume: Volume) -> sitk.Image:
    """RAS :class:`Volume` (3D) to a SimpleITK image with LPS geometry."""
    if volume.array.ndim != 3:
        raise ValueError("volume_to_sitk expects a 3D volume")
    arr = volume.array
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(arr, (2, 1, 0))))
    origin, spacing, direction = affine_to_lps_geometry(volume.affine)
    image.SetOrigin(tuple(float(v) for v in origin))
    image.SetSpacing(tuple(float(v) for v in spacing))
    image.SetDirection(tuple(float(v) for v in direction.ravel()))
    return image


# -- NIfTI -------------------------------------------------------------------------------------
def volume_from_nifti_image(img, name: str = "") -> Volume:
    """nibabel image to :class:`Volume` (its best affine is already RAS)."""
    arr = np.asanyarray(img.dataobj)
    if img.get_data_dtype().kind == "f" or arr.dtype.kind == "f":
        arr = arr.astype(np.float32, copy=False)
    return Volume(arr, img.affine.copy(), name)


def volume_to_nifti_image(volume: Volume):
    """:class:`Volume` to a nibabel Nifti1Image with sform = qform = the RAS affine (code 1, scanner)."""
    arr = volume.array.astype(np.uint8) if volume.array.dtype == bool else volume.array
    img = nib.Nifti1Image(arr, volume.affine)
    img.set_sform(volume.affine, code=1)
    img.set_qform(volume.affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    return img


# -- reading -----------------------------------------------------------------------------------
def read_dicom_series(folder: Path, name: str) -> Volume:
    """Read the largest DICOM series in ``folder`` (CT in HU thanks to rescale slope/intercept)."""
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise InputError(name, f"no DICOM series found in folder {folder}")
    best = max(series, key=lambda s: len(reader.GetGDCMSeriesFileNames(str(folder), s)))
    files = reader.GetGDCMSeriesFileNames(str(folder), best)
    reader.SetFileNames(files)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(name, f"DICOM series in {folder} could not be read ({str(exc).splitlines()[0]})") from None
    vol = volume_from_sitk(image, name)
    vol.meta["dicom_files"] = len(files)
    return vol


def read_volume(path, name: str | None = None, *, allow_4d: bool = False) -> Volume:
    """Read a NIfTI/NRRD file or a DICOM series folder as a RAS :class:`Volume`.

    Parameters
    ----------
    path : str or Path
        ``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.mha``/``.mhd``, or a folder of DICOM files.
    name : str
        The input's name for error messages (e.g. the role ``t2``); defaults to the path.
    allow_4d : bool
        Accept 4D images (diffusion); otherwise a 4D image is an error.

    Raises
    ------
    InputError
        Missing file, unreadable or non-image file, NaN voxels, wrong dimensionality.
    """
    p = Path(path)
    label = name or str(p)
    if not p.exists():
        raise InputError(label, f"file not found: {p}")
    if p.is_dir():
        vol = read_dicom_series(p, label)
    else:
        suffix = _suffix(p)
        try:
            if suffix in NIFTI_SUFFIXES:
                vol = volume_from_nifti_image(nib.load(str(p)), label)
            elif suffix == ".dcm":
                vol = read_dicom_series(p.parent, label)
            else:
                vol = volume_from_sitk(sitk.ReadImage(str(p)), label)
        except InputError:
            raise
        except Exception as exc:  # nibabel/SimpleITK raise many types for non-images
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(label, f"not a readable image ({p.name}: {first[:160]})") from None
    arr = vol.array
    while arr.ndim > 3 and arr.shape[-1] == 1 and not allow_4d:
        arr = arr[..., 0]
    if arr.ndim == 4 and not allow_4d:
        raise InputError(label, f"expected a 3D image, got 4D with {arr.shape[3]} volumes")
    if arr.ndim < 3:
        arr = arr.reshape(arr.shape + (1,) * (3 - arr.ndim))
    if min(arr.shape[:3]) < 1 or arr.size == 0:
        raise InputError(label, "image is empty")
    _check_finite(arr, label)
    vol.array = arr
    vol.name = name or p.name
    vol.meta.setdefault("path", str(p))
    return vol


# -- writing (atomic) --------------------------------------------------------------------------
def default_file_mode() -> int:
    """Permission bits an ordinary ``open(..., "w")`` would give under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_path(final: Path):
    """A temporary path in the same folder; ``os.replace`` it onto ``final`` when complete."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part" + "".join(final.suffixes), dir=final.parent)
    os.close(fd)
    os.chmod(tmp, default_file_mode())
    return Path(tmp)


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder (never half-written)."""
    path = Path(path)
    tmp = atomic_path(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_volume(volume: Volume, path) -> Path:
    """Write a 3D/4D volume to NIfTI (``.nii``/``.nii.gz``) or NRRD atomically; returns the path."""
    path = Path(path)
    tmp = atomic_path(path)
    try:
        if _suffix(path) in NIFTI_SUFFIXES:
            nib.save(volume_to_nifti_image(volume), str(tmp))
        else:
            sitk.WriteImage(volume_to_sitk(volume), str(tmp), True)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
