"""The reference image as DICOM: the input's own series (reused, not rewritten) or a derived
CT/MR series written from the reference volume, so SEG/RTSTRUCT have source images to overlay.

Frames: voxel ``[i, j, k]`` is pixel (row ``j``, column ``i``) of slice ``k``; the slice geometry
is the reference affine in LPS (``diag(-1, -1, 1)`` applied to direction and origin).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.volume import LPS_TO_RAS, Volume, affine_to_lps_geometry

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
NOT_FOR_DIAGNOSIS = "DERIVED - NOT FOR DIAGNOSIS"
MANUFACTURER = "spineplan"
SOFTWARE = "spineplan export 0.1"

PATIENT_STUDY_KEYWORDS = (
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "PatientAge",
    "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName",
    "StudyDescription",
)
"""Patient and General Study attributes every exported object copies from the reference."""

TYPE2_PATIENT_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                       "StudyID", "AccessionNumber", "ReferringPhysicianName")
"""Type 2 attributes (present, possibly empty) of the Patient and General Study modules."""


@dataclass
class ReferenceSeries:
    """DICOM datasets of the reference image, ``datasets[k]`` = slice ``k`` of the reference grid.

    ``reused`` is True when these are the input's own files (already in the PACS: not written
    again); False when the export writes them (derived series).
    """

    datasets: list
    reused: bool

    @property
    def first(self) -> Dataset:
        return self.datasets[0]

    @property
    def frame_of_reference_uid(self) -> str:
        return str(self.first.FrameOfReferenceUID)


def now_date_time() -> tuple[str, str]:
    now = _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S")


def patient_study_header(source: Dataset) -> Dataset:
    """A dataset holding only the Patient and General Study attributes of ``source``."""
    ds = Dataset()
    for kw in PATIENT_STUDY_KEYWORDS:
        if kw in source:
            setattr(ds, kw, source.data_element(kw).value)
    for kw in TYPE2_PATIENT_STUDY:
        if kw not in ds:
            setattr(ds, kw, "")
    return ds


def new_study_header(*, seed: str, deidentified: bool) -> Dataset:
    """Patient and study of a derived export (NIfTI/NRRD input, or ``--deidentify``).

    The patient is a pseudonym (``SPINEPLAN^DERIVED``, ID from a hash of ``seed``; no link to a
    real person is stored), the study is new and says it is derived, not for diagnosis.
    """
    date, time = now_date_time()
    ds = Dataset()
    ds.PatientName = "SPINEPLAN^DERIVED"
    ds.PatientID = "SP-" + hashlib.sha256(seed.encode()).hexdigest()[:12].upper()
    ds.PatientBirthDate, ds.PatientSex = "", ""
    ds.StudyInstanceUID = generate_uid()
    ds.StudyDate, ds.StudyTime = date, time
    ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "SPINEPLAN", "", ""
    ds.StudyDescription = f"spineplan export, {NOT_FOR_DIAGNOSIS}"
    if deidentified:
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "spineplan: new study, pseudonym, headers rebuilt"
    return ds


def read_reference_series(folder: Path, volume: Volume, *, files=None) -> ReferenceSeries:
    """The input DICOM series behind ``volume`` (read from ``folder``, or from ``files`` when
    given), ordered by slice ``k``.

    Each file is matched to its slice through its ImagePositionPatient (LPS -> RAS -> ijk); the
    series is the one whose slice count and in-plane size match the volume.
    """
    by_series: dict = {}
    for p in sorted(Path(f) for f in files) if files else sorted(Path(folder).rglob("*")):
        if not p.is_file():
            continue
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - not a DICOM file: ignored, as the series reader does
            continue
        if "ImagePositionPatient" in ds and "SeriesInstanceUID" in ds:
            by_series.setdefault(str(ds.SeriesInstanceUID), []).append((p, ds))
    ni, nj, nk = volume.shape3
    for items in sorted(by_series.values(), key=len, reverse=True):
        if len(items) != nk or int(items[0][1].Rows) != nj or int(items[0][1].Columns) != ni:
            continue
        slots: list = [None] * nk
        for p, ds in items:
            ras = (LPS_TO_RAS[:3, :3] @ np.asarray(ds.ImagePositionPatient, float))
            ijk = volume.ras_to_ijk(ras)
            k = int(round(ijk[2]))
            if 0 <= k < nk and np.all(np.abs(ijk - [0, 0, k]) < 0.05) and slots[k] is None:
                ds.filename = str(p)
                slots[k] = pydicom.dcmread(p)
        if all(s is not None for s in slots):
            for ds in slots:  # in memory only: type 2 patient/study attributes the input left out
                for kw in TYPE2_PATIENT_STUDY:
                    if kw not in ds:
                        setattr(ds, kw, "")
            return ReferenceSeries(slots, reused=True)
    raise InputError(str(folder), "no DICOM series in this folder matches the plan's reference grid")


def _pixel_module(ds: Dataset, plane: np.ndarray, lo: float, slope: float) -> None:
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = int(plane.shape[1]), int(plane.shape[0])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    if not (lo == 0 and slope == 1 and ds.Modality == "MR"):  # MR: no identity Modality LUT
        ds.RescaleIntercept, ds.RescaleSlope = f"{lo:.10g}", f"{slope:.10g}"
    stored = np.clip(np.round((plane - lo) / slope), 0, 65535).astype(np.uint16)
    ds.PixelData = np.ascontiguousarray(stored.T).tobytes()


def _modality_module(ds: Dataset, modality: str) -> None:
    if modality == "CT":
        ds.KVP, ds.AcquisitionNumber = "", ""
        ds.RescaleType = "HU"
    else:
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "RM", "NONE", ""
        ds.MRAcquisitionType, ds.EchoTime, ds.EchoTrainLength = "3D", "", ""
        ds.RepetitionTime = ""
        ds.ImagedNucleus = "1H"


def image_series(volume: Volume, header: Dataset, *, frame_uid: str, modality: str, series_number: int,
                 series_description: str, derivation: str) -> list[Dataset]:
    """A derived CT or MR series of ``volume`` (one dataset per slice ``k``, LPS geometry).

    Voxel values are stored as 16-bit with rescale slope/intercept (the values as read: HU for
    CT). ``header`` supplies the Patient and General Study attributes.
    """
    if modality not in ("CT", "MR"):
        raise ValueError(f"modality must be CT or MR, got {modality!r}")
    arr = np.asarray(volume.array, float)
    lo, hi = float(arr.min()), float(arr.max())
    slope = (hi - lo) / 65000.0 if hi > lo else 1.0
    if np.all(arr == np.round(arr)) and hi - min(lo, 0.0) < 65000:  # integers (HU, counts): exact
        lo, slope = min(np.floor(lo), 0.0) if modality == "MR" else np.floor(lo), 1.0
    origin, spacing, direction = affine_to_lps_geometry(volume.affine)
    series_uid, date_time = generate_uid(), now_date_time()
    out = []
    for k in range(arr.shape[2]):
        ds = Dataset()
        ds.update(header)
        sop_class = CT_IMAGE_STORAGE if modality == "CT" else MR_IMAGE_STORAGE
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
        ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = modality, series_uid, series_number
        ds.SeriesDescription = f"{series_description} ({NOT_FOR_DIAGNOSIS})"[:64]
        ds.SeriesDate, ds.SeriesTime = date_time
        ds.ContentDate, ds.ContentTime = date_time
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_uid, ""
        ds.Manufacturer, ds.SoftwareVersions = MANUFACTURER, SOFTWARE
        ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
        ds.BodyPartExamined, ds.PatientPosition = "SPINE", ""
        ds.DerivationDescription = derivation[:1024]
        ds.ImageComments = NOT_FOR_DIAGNOSIS
        ds.InstanceNumber, ds.PatientOrientation = k + 1, ""
        pos = origin + direction[:, 2] * spacing[2] * k
        ds.ImagePositionPatient = [float(f"{v:.6f}") for v in pos]
        ds.ImageOrientationPatient = [float(f"{v:.8f}") for v in (*direction[:, 0], *direction[:, 1])]
        ds.PixelSpacing = [float(f"{spacing[1]:.6f}"), float(f"{spacing[0]:.6f}")]  # row (j), column (i)
        ds.SliceThickness = float(f"{spacing[2]:.6f}")
        _pixel_module(ds, arr[:, :, k], lo, slope)
        _modality_module(ds, modality)
        out.append(ds)
    return out


def derived_reference(volume: Volume, header: Dataset, *, role: str, source: str) -> ReferenceSeries:
    """The reference image written as a new derived series in a new frame of reference."""
    modality = "CT" if role in ("ct", "sct") else "MR"
    series = image_series(volume, header, frame_uid=generate_uid(), modality=modality, series_number=1,
                          series_description=f"{role.upper()} reference",
                          derivation=f"reference image ({role}) of the plan, from {source}")
    return ReferenceSeries(series, reused=False)


def save_dataset(ds: Dataset, path: Path) -> Path:
    """Write ``ds`` as a DICOM Part 10 file (explicit VR little endian unless already set)."""
    if not getattr(ds, "file_meta", None):
        ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
