"""Write a Volume as a minimal, valid DICOM MR series (test helper; geometry from the RAS affine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from SpinePlannerLib.core.volume import Volume, affine_to_lps_geometry

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def write_mr_series(volume: Volume, folder: Path, *, shuffle_names: bool = True, series_uid: str | None = None,
                    description: str = "", skip_slices=(), duplicate_slices=(), rotate_slices=(),
                    prefix: str = "IMG", patient: dict | None = None, modality: str = "MR") -> list[Path]:
    """One file per k-slice; slice order on disk deliberately scrambled when ``shuffle_names``.

    Damage for tests: ``skip_slices`` are not written (a gap), ``duplicate_slices`` are written twice
    (same position), ``rotate_slices`` get an orientation turned by 90 degrees in-plane,
    ``series_uid=""`` writes an empty SeriesInstanceUID.

    ``patient`` overrides or adds header keywords (e.g. ``PatientName``, ``PatientBirthDate``,
    ``InstitutionName``): identifiers a de-identification test then searches the outputs for.
    ``modality="CT"`` writes CT Image Storage (values as given, e.g. HU, through rescale).
    """
    sop_class = CT_IMAGE_STORAGE if modality == "CT" else MR_IMAGE_STORAGE
    folder.mkdir(parents=True, exist_ok=True)
    origin, spacing, direction = affine_to_lps_geometry(volume.affine)
    study, series, frame = generate_uid(), generate_uid() if series_uid is None else series_uid, generate_uid()
    arr = np.asarray(volume.array)
    lo, hi = float(arr.min()), float(arr.max())
    slope = (hi - lo) / 4000.0 if hi > lo else 1.0
    order = np.random.default_rng(1).permutation(arr.shape[2]) if shuffle_names else np.arange(arr.shape[2])
    order = [k for k in order if k not in skip_slices] + list(duplicate_slices)
    paths = []
    for n, k in enumerate(order):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        sop = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop
        ds.Modality = modality
        ds.PatientName, ds.PatientID = "Phantom^Test", "TEST0001"
        for keyword, value in (patient or {}).items():
            setattr(ds, keyword, value)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.SeriesNumber, ds.InstanceNumber = 1, int(k) + 1
        ds.SeriesDescription = description
        pos = origin + direction[:, 2] * spacing[2] * k
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
        row, col = (direction[:, 1], -direction[:, 0]) if k in rotate_slices else (direction[:, 0], direction[:, 1])
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*row, *col)]
        ds.PixelSpacing = [f"{spacing[1]:.6f}", f"{spacing[0]:.6f}"]  # row spacing (j), column spacing (i)
        ds.SliceThickness = f"{spacing[2]:.6f}"
        ds.Rows, ds.Columns = arr.shape[1], arr.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}", f"{lo:.10g}"
        stored = np.round((arr[:, :, k] - lo) / slope).astype(np.uint16)
        ds.PixelData = np.ascontiguousarray(stored.T).tobytes()  # rows = j, columns = i
        path = folder / f"{prefix}{n:04d}"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
