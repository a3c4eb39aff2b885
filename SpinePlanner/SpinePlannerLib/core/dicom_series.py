"""DICOM series checked before use, with the geometry computed from the slice positions.

A folder given as an image input must hold exactly one series, or the user picks one with
``DIR::SERIES_UID``. Before any pixel is read, the chosen series must have:

* one orientation (ImageOrientationPatient equal on every slice, within 1e-4),
* one image size and pixel spacing,
* slice positions (ImagePositionPatient projected on the slice normal, LPS mm) without
  duplicates, evenly spaced (no missing slice: every step within 1 % + 0.01 mm of the median),
  and on one line along the normal (no in-plane shift: gantry tilt is refused).

The volume's geometry is then built from these positions (origin = first slice, k axis = the
normal, k spacing = the median step), never from SliceThickness or SpacingBetweenSlices.
Anything else is an :class:`InputError` naming the input (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.volume import Volume, lps_geometry_to_affine

SERIES_SEPARATOR = "::"
"""``--ct DIR::SERIES_UID`` picks one series of a folder holding several."""

ORIENTATION_TOL = 1e-4
"""Largest difference between two slices' direction cosines that counts as the same orientation."""

SPACING_REL_TOL, SPACING_ABS_TOL_MM = 0.01, 0.01
"""A step between slices differing from the median by more than 1 % + 0.01 mm is a gap or irregularity."""

_TAGS = ["SeriesInstanceUID", "SeriesDescription", "SeriesNumber", "Modality", "ImageOrientationPatient",
         "ImagePositionPatient", "PixelSpacing", "Rows", "Columns", "NumberOfFrames", "SamplesPerPixel"]


def split_series(text) -> tuple[str, str | None]:
    """``DIR::SERIES_UID`` -> (``DIR``, ``UID``); a plain path -> (path, None)."""
    path, sep, uid = str(text).partition(SERIES_SEPARATOR)
    return path, (uid.strip() or None) if sep else None


@dataclass
class Series:
    """One DICOM series of a folder: its files and the header values the checks use."""

    uid: str
    description: str = ""
    files: list = field(default_factory=list)
    headers: list = field(default_factory=list)

    @property
    def orientation(self) -> str:
        """``axial``, ``coronal``, ``sagittal`` or ``oblique`` from the first slice's normal, or ``unknown``."""
        iop = self.headers[0].get("ImageOrientationPatient") if self.headers else None
        if iop is None or len(iop) != 6:
            return "unknown"
        n = np.abs(np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:], float)))
        if n.max() < 0.95:
            return "oblique"
        return ("sagittal", "coronal", "axial")[int(np.argmax(n))]

    def summary(self) -> str:
        return (f"{self.uid or '(no series UID)'} ({self.description or 'no description'}, "
                f"{len(self.files)} slices, {self.orientation})")


def scan_folder(folder: Path) -> dict[str, Series]:
    """Series UID -> :class:`Series` for every DICOM image file in ``folder`` (not recursive).
    Files that are not DICOM (or hold no image) are ignored."""
    series: dict[str, Series] = {}
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_TAGS)
        except (InvalidDicomError, OSError, ValueError, TypeError, AttributeError, EOFError):
            continue
        if "Rows" not in ds:
            continue
        uid = str(ds.get("SeriesInstanceUID", "") or "")
        s = series.setdefault(uid, Series(uid, str(ds.get("SeriesDescription", "") or "")))
        s.files.append(path)
        s.headers.append({k: ds.get(k) for k in _TAGS if k in ds})
    return series


def select_series(folder: Path, uid: str | None, name: str) -> Series:
    """The one series of ``folder`` (or the one with ``uid``); otherwise an InputError listing them."""
    found = scan_folder(folder)
    if not found:
        raise InputError(name, f"no DICOM image files found in folder {folder}")
    if uid is not None:
        if uid not in found:
            raise InputError(name, f"series {uid} is not in {folder}; it holds: "
                                   + "; ".join(s.summary() for s in found.values()))
        return found[uid]
    if len(found) > 1:
        raise InputError(name, f"folder holds {len(found)} DICOM series; pick one as {name} "
                               f"{folder}{SERIES_SEPARATOR}SERIES_UID: " + "; ".join(s.summary() for s in found.values()))
    return next(iter(found.values()))


def _vector(header: dict, key: str, n: int, name: str, path: Path) -> np.ndarray:
    value = header.get(key)
    try:
        arr = np.asarray([float(v) for v in value], float)
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise InputError(name, f"slice {path.name} has no valid {key}; the series geometry is unknown")
    return arr


def series_geometry(series: Series, name: str) -> tuple[list[Path], np.ndarray, np.ndarray, np.ndarray]:
    """Check the series and return (files sorted along the normal, origin, spacing, direction), LPS mm.

    ``direction`` is 3x3 with columns row direction, column direction, slice normal;
    ``spacing`` is (column spacing, row spacing, step between slices).
    """
    headers, files = series.headers, series.files
    iops = np.array([_vector(h, "ImageOrientationPatient", 6, name, f) for h, f in zip(headers, files, strict=True)])
    bad = np.any(np.abs(iops - iops[0]) > ORIENTATION_TOL, axis=1)
    if np.any(bad):
        raise InputError(name, f"{int(bad.sum())} of {len(files)} slices of series {series.uid or '(no UID)'} have "
                               f"another orientation (e.g. {files[int(np.argmax(bad))].name}); one orientation expected")
    sizes = {(int(h.get("Rows", 0)), int(h.get("Columns", 0))) for h in headers}
    spacings = {tuple(np.round(_vector(h, "PixelSpacing", 2, name, f), 5)) for h, f in zip(headers, files, strict=True)}
    if len(sizes) > 1 or len(spacings) > 1:
        raise InputError(name, f"slices of series {series.uid or '(no UID)'} differ in size or pixel spacing "
                               f"({sorted(sizes)}, {sorted(spacings)})")
    row, col = iops[0, :3], iops[0, 3:]
    normal = np.cross(row, col)
    if abs(np.linalg.norm(normal) - 1) > 1e-3 or abs(row @ col) > 1e-3:
        raise InputError(name, "ImageOrientationPatient is not two orthogonal unit vectors")
    pos = np.array([_vector(h, "ImagePositionPatient", 3, name, f) for h, f in zip(headers, files, strict=True)])
    order = np.argsort(pos @ normal, kind="stable")
    pos, files = pos[order], [files[i] for i in order]
    dist = pos @ normal
    pixel = np.array(next(iter(spacings)), float)  # (row spacing, column spacing)
    spacing_k = _check_steps(dist, name, series)
    if len(files) > 1:
        inplane = (pos - pos[0]) - np.outer(dist - dist[0], normal)
        if np.abs(inplane).max() > 0.1 * pixel.min() + 1e-3:
            raise InputError(name, f"slices of series {series.uid or '(no UID)'} are shifted in-plane along the stack "
                                   f"(up to {np.abs(inplane).max():.2f} mm: gantry tilt?); resample it first")
    direction = np.column_stack([row, col, normal])
    return files, pos[0], np.array([pixel[1], pixel[0], spacing_k]), direction


def _check_steps(dist: np.ndarray, name: str, series: Series) -> float:
    """Uniform step (mm) between sorted slice positions; duplicates and gaps are InputErrors."""
    if len(dist) < 2:
        return 1.0
    steps = np.diff(dist)
    dup = steps < 1e-3
    if np.any(dup):
        raise InputError(name, f"series {series.uid or '(no UID)'}: {int(dup.sum()) + 1} slices share a position "
                               f"(duplicate at {dist[1:][dup][0]:.2f} mm along the normal); one slice per position expected")
    median = float(np.median(steps))
    off = np.abs(steps - median) > SPACING_REL_TOL * median + SPACING_ABS_TOL_MM
    if np.any(off):
        i = int(np.argmax(off))
        missing = steps[i] / median - 1
        what = (f"about {round(missing)} missing slice(s)" if missing > 0.5 else "uneven slice spacing")
        raise InputError(name, f"series {series.uid or '(no UID)'}: {what} — step {steps[i]:.3f} mm at {dist[i]:.2f} mm "
                               f"where the others are {median:.3f} mm; the series is incomplete or irregular")
    return median


def read_checked_series(folder: Path, uid: str | None, name: str) -> Volume:
    """Read one checked series of ``folder`` as a RAS :class:`Volume` with geometry from the positions."""
    series = select_series(folder, uid, name)
    multi = any(int(h.get("NumberOfFrames", 1) or 1) > 1 for h in series.headers)
    if multi and len(series.files) == 1:
        image = _execute(series.files, name, folder)
        vol = _to_volume(image, np.asarray(image.GetOrigin()), np.asarray(image.GetSpacing()),
                         np.asarray(image.GetDirection()).reshape(3, 3), name)
    else:
        files, origin, spacing, direction = series_geometry(series, name)
        image = _execute(files, name, folder)
        vol = _to_volume(image, origin, spacing, direction, name)
    vol.meta.update(dicom_files=len(series.files), series_uid=series.uid, series_description=series.description)
    return vol


def _execute(files: list[Path], name: str, folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in files])
    try:
        return reader.Execute()
    except RuntimeError as exc:
        raise InputError(name, f"DICOM series in {folder} could not be read ({str(exc).strip().splitlines()[0][:160]})") from None


def _to_volume(image: sitk.Image, origin, spacing, direction, name: str) -> Volume:
    from SpinePlannerLib.core.imageio import volume_from_sitk

    vol = volume_from_sitk(image, name)
    vol.affine = lps_geometry_to_affine(origin, spacing, direction)
    return vol
