"""RTSTRUCT with every structure as closed planar contours on the reference slices (pydicom).

The tumor is a GTV, the cord an organ at risk (``ORGAN``), the vessels next to the cord
``AVOIDANCE``. Contour points are LPS mm: ``(i, j, k)`` -> reference affine (RAS) -> diag(-1, -1, 1).
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from SpinePlannerLib.core.volume import LPS_TO_RAS
from SpinePlannerLib.export.colors import rgb_255
from SpinePlannerLib.export.contours import rasterize_contours, slice_contours
from SpinePlannerLib.export.dicom_series import (
    MANUFACTURER,
    SOFTWARE,
    ReferenceSeries,
    now_date_time,
    patient_study_header,
)
from SpinePlannerLib.export.structures import Structure

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
STUDY_COMPONENT_MANAGEMENT = "1.2.840.10008.3.1.2.3.1"


def _image_ref(ds: Dataset) -> Dataset:
    r = Dataset()
    r.ReferencedSOPClassUID, r.ReferencedSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    return r


def _frame_of_reference(reference: ReferenceSeries) -> Sequence:
    first = reference.first
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    series.ContourImageSequence = Sequence([_image_ref(ds) for ds in reference.datasets])
    study = Dataset()
    study.ReferencedSOPClassUID, study.ReferencedSOPInstanceUID = STUDY_COMPONENT_MANAGEMENT, first.StudyInstanceUID
    study.RTReferencedSeriesSequence = Sequence([series])
    frame = Dataset()
    frame.FrameOfReferenceUID = first.FrameOfReferenceUID
    frame.RTReferencedStudySequence = Sequence([study])
    return Sequence([frame])


def _contour_items(mask: np.ndarray, affine_lps: np.ndarray, reference: ReferenceSeries) -> list[Dataset]:
    items = []
    for k in np.flatnonzero(mask.any(axis=(0, 1))):
        for poly in slice_contours(mask[:, :, k]):
            ijk = np.column_stack([poly, np.full(len(poly), float(k))])
            lps = ijk @ affine_lps[:3, :3].T + affine_lps[:3, 3]
            c = Dataset()
            c.ContourImageSequence = Sequence([_image_ref(reference.datasets[k])])
            c.ContourGeometricType = "CLOSED_PLANAR"
            c.NumberOfContourPoints = len(lps)
            c.ContourData = [float(f"{v:.4f}") for v in lps.ravel()]
            items.append(c)
    return items


def build_rtstruct(reference: ReferenceSeries, structures: list[tuple[Structure, np.ndarray]],
                   affine_ras: np.ndarray, *, series_number: int = 101,
                   label: str = "SPINEPLAN") -> Dataset:
    """An RT Structure Set referencing every slice of ``reference``; one ROI per structure
    (boolean ``[i, j, k]`` masks on the grid of ``affine_ras``, the reference's ijk -> RAS)."""
    affine_lps = LPS_TO_RAS @ np.asarray(affine_ras, float)
    date, time = now_date_time()
    ds = Dataset()
    ds.update(patient_study_header(reference.first))
    ds.SOPClassUID, ds.SOPInstanceUID = RT_STRUCTURE_SET_STORAGE, generate_uid()
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "RTSTRUCT", generate_uid(), series_number
    ds.SeriesDescription, ds.OperatorsName = "spineplan structures (decision support)", ""
    ds.Manufacturer, ds.SoftwareVersions = MANUFACTURER, SOFTWARE
    ds.InstanceNumber = 1
    ds.StructureSetLabel, ds.StructureSetName = label[:16], "spineplan plan"
    ds.StructureSetDate, ds.StructureSetTime = date, time
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = reference.frame_of_reference_uid, ""
    ds.ReferencedFrameOfReferenceSequence = _frame_of_reference(reference)
    rois, contours, observations = [], [], []
    for n, (s, mask) in enumerate(structures, start=1):
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID = n, reference.frame_of_reference_uid
        roi.ROIName, roi.ROIDescription, roi.ROIGenerationAlgorithm = s.key[:64], s.label[:64], "AUTOMATIC"
        rois.append(roi)
        rc = Dataset()
        rc.ReferencedROINumber, rc.ROIDisplayColor = n, rgb_255(s.color)
        rc.ContourSequence = Sequence(_contour_items(mask, affine_lps, reference))
        contours.append(rc)
        ob = Dataset()
        ob.ObservationNumber, ob.ReferencedROINumber = n, n
        ob.ROIObservationLabel, ob.RTROIInterpretedType, ob.ROIInterpreter = s.key[:16], s.rt_role, ""
        observations.append(ob)
    ds.StructureSetROISequence = Sequence(rois)
    ds.ROIContourSequence = Sequence(contours)
    ds.RTROIObservationsSequence = Sequence(observations)
    return ds


def rtstruct_to_masks(ds: Dataset, affine_ras: np.ndarray, shape: tuple) -> dict[str, np.ndarray]:
    """Rasterise every ROI back onto the reference grid (even-odd fill per slice); a contour whose
    points are off a reference slice by more than half a voxel raises ``ValueError``."""
    inv = np.linalg.inv(LPS_TO_RAS @ np.asarray(affine_ras, float))
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.StructureSetROISequence}
    out = {}
    for rc in ds.ROIContourSequence:
        mask = np.zeros(shape, bool)
        polys_by_k: dict[int, list] = {}
        for c in getattr(rc, "ContourSequence", []):
            lps = np.asarray(c.ContourData, float).reshape(-1, 3)
            ijk = lps @ inv[:3, :3].T + inv[:3, 3]
            k = int(round(float(np.mean(ijk[:, 2]))))
            if np.any(np.abs(ijk[:, 2] - k) > 0.5):
                raise ValueError(f"contour of ROI {rc.ReferencedROINumber} is not on a reference slice")
            polys_by_k.setdefault(k, []).append(ijk[:, :2])
        for k, polys in polys_by_k.items():
            mask[:, :, k] = rasterize_contours(polys, shape[:2])
        out[names[int(rc.ReferencedROINumber)]] = mask
    return out
