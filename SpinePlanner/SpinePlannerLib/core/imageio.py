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

MAX_VOXELS = 2e9
"""Largest image read (voxels, all volumes of a 4D image together): 8 GB as float32."""


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
    check_voxel_geometry(lps_geometry_to_affine(image.GetOrigin(), image.GetSpacing(), image.GetDirection()),
                         name or "image")
    arr = sitk.GetArrayFromImage(image)  # [k, j, i] (+ components)
    components = image.GetNumberOfComponentsPerPixel()
    if components > 1:
        arr = np.transpose(arr, (2, 1, 0, 3))
    else:
        arr = np.transpose(arr, (2, 1, 0))
    affine = lps_geometry_to_affine(image.GetOrigin(), image.GetSpacing(), image.GetDirection())
    vol = Volume(np.ascontiguousarray(arr), affine, name)
    if components > 1:
        vol.meta["components"] = components
    return vol


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
    """nibabel image to :class:`Volume` (its best affine is already RAS).

    A file whose qform and sform codes are both 0 has no orientation: nibabel's fallback affine
    (voxel sizes only) is used and ``meta["orientation_unknown"]`` is set.
    """
    label = name or "image"
    check_pixel_type(img.get_data_dtype(), label)
    n_voxels = float(np.prod(img.shape, dtype=float))
    if n_voxels > MAX_VOXELS:
        raise InputError(label, f"header claims {img.shape} = {n_voxels:.3g} voxels; at most {MAX_VOXELS:.0e} are read")
    affine = np.asarray(img.affine, float)
    check_voxel_geometry(affine, label)
    arr = np.asanyarray(img.dataobj)
    if img.get_data_dtype().kind == "f" or arr.dtype.kind == "f":
        arr = arr.astype(np.float32, copy=False)
    vol = Volume(arr, affine.copy(), name)
    header = img.header
    if hasattr(header, "get_sform") and int(header.get_sform(coded=True)[1] or 0) == 0 \
            and int(header.get_qform(coded=True)[1] or 0) == 0:
        vol.meta["orientation_unknown"] = True
    return vol


def check_raw_nifti_voxel_sizes(path: Path, name: str) -> None:
    """Refuse zero/NaN voxel sizes as stored (nibabel silently replaces zero ``pixdim`` by 1).

    Only where the geometry comes from ``pixdim`` (sform code 0); an sform is checked later.
    """
    try:
        with nib.openers.ImageOpener(str(path)) as fh:
            header = nib.Nifti1Header.from_fileobj(fh, check=False)
    except Exception:  # noqa: BLE001 - not NIfTI-1 (NIfTI-2, damaged): nibabel's reader reports it
        return
    if int(header["sform_code"]) != 0:
        return
    sizes = np.asarray(header["pixdim"][1:4], float)
    if not np.all(np.isfinite(sizes)) or np.any(sizes <= 0):
        raise InputError(name, f"voxel sizes (pixdim) {sizes.tolist()} mm are zero, negative or NaN in the header; "
                               "the geometry is unknown")


def check_pixel_type(dtype, name: str) -> None:
    """Refuse voxel types that are not one grey value per voxel (colour, complex), with the reason."""
    dtype = np.dtype(dtype)
    if dtype.names:
        raise InputError(name, f"is a colour (RGB) image ({dtype.names}); planning needs a grayscale image, "
                               "convert it to one channel first")
    if dtype.kind == "c":
        raise InputError(name, "has complex-valued voxels; give the magnitude image")
    if dtype.kind not in "biuf":
        raise InputError(name, f"has voxels of type {dtype}, not numbers")


def check_voxel_geometry(affine: np.ndarray, name: str) -> None:
    """Voxel sizes must be finite and within [1e-3, 1e3] mm, the axes not degenerate."""
    m = np.asarray(affine, float)[:3, :4]
    if not np.all(np.isfinite(m)):
        raise InputError(name, "voxel sizes or position are NaN/infinite in the header; the geometry is unknown")
    sizes = np.linalg.norm(m[:, :3], axis=0)
    if np.any(sizes < 1e-3) or np.any(sizes > 1e3):
        raise InputError(name, f"voxel sizes {np.round(sizes, 4).tolist()} mm are zero or implausible "
                               "(allowed 0.001..1000 mm); fix the header (pixdim / spacing)")
    if abs(np.linalg.det(m[:, :3] / sizes)) < 1e-3:
        raise InputError(name, "voxel axes are parallel (degenerate direction matrix); fix the header")


def normalise_pixel_array(arr: np.ndarray, name: str) -> np.ndarray:
    """Voxel arrays every stage can use: bool -> uint8, int8 -> int16, float16 -> float32."""
    check_pixel_type(arr.dtype, name)
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if arr.dtype == np.int8:
        return arr.astype(np.int16)
    if arr.dtype == np.float16:
        return arr.astype(np.float32)
    return arr


def volume_to_nifti_image(volume: Volume):
    """:class:`Volume` to a nibabel Nifti1Image with sform = qform = the RAS affine (code 1, scanner)."""
    arr = volume.array.astype(np.uint8) if volume.array.dtype == bool else volume.array
    img = nib.Nifti1Image(arr, volume.affine)
    img.set_sform(volume.affine, code=1)
    img.set_qform(volume.affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    return img


# -- reading -----------------------------------------------------------------------------------
def read_dicom_series(folder: Path, name: str, series_uid: str | None = None) -> Volume:
    """Read the DICOM series in ``folder`` (CT in HU thanks to rescale slope/intercept), checked
    and with the geometry from the slice positions (:mod:`SpinePlannerLib.core.dicom_series`)."""
    from SpinePlannerLib.core.dicom_series import read_checked_series

    return read_checked_series(Path(folder), series_uid, name)


def read_volume(path, name: str | None = None, *, allow_4d: bool = False) -> Volume:
    """Read a NIfTI/NRRD file or a DICOM series folder as a RAS :class:`Volume`.

    Parameters
    ----------
    path : str or Path
        ``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.mha``/``.mhd``, or a folder of DICOM files
        (``DIR::SERIES_UID`` picks one series of a folder holding several).
    name : str
        The input's name for error messages (e.g. the role ``t2``); defaults to the path.
    allow_4d : bool
        Accept 4D images (diffusion); otherwise a 4D image is an error.

    Raises
    ------
    InputError
        Missing file, unreadable or non-image file, NaN voxels, wrong dimensionality.
    """
    from SpinePlannerLib.core.dicom_series import split_series

    text, series_uid = split_series(path)
    p = Path(text)
    label = name or str(p)
    if not p.exists():
        raise InputError(label, f"file not found: {p}")
    if series_uid is not None and not p.is_dir():
        raise InputError(label, f"{p} is not a folder; ::SERIES_UID picks a series of a DICOM folder")
    if p.is_dir():
        vol = read_dicom_series(p, label, series_uid)
    else:
        suffix = _suffix(p)
        try:
            if suffix in NIFTI_SUFFIXES:
                check_raw_nifti_voxel_sizes(p, label)
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
    arr = normalise_pixel_array(vol.array, label)
    if arr.ndim == 4 and not allow_4d and arr.shape[-1] in (3, 4) and vol.meta.get("components"):
        raise InputError(label, f"has {arr.shape[-1]} components per voxel (a colour or vector image); "
                                "planning needs a grayscale image")
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
