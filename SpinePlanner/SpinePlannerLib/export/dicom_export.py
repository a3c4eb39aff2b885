"""Write the DICOM objects of a plan: reference series (when the input was not DICOM, or when
de-identifying), SEG, RTSTRUCT, tract density series and the report as Encapsulated PDF.

Layout under ``out``: ``reference/IMG####.dcm``, ``seg.dcm``, ``rtstruct.dcm``,
``tract_density/IMG####.dcm``, ``report.dcm``. Returns a list of records (path, SOP class,
SOP instance UID, what) for the manifest and for ``spineplan send``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np

from SpinePlannerLib.export.dicom_series import (
    ReferenceSeries,
    derived_reference,
    image_series,
    new_study_header,
    patient_study_header,
    read_reference_series,
    save_dataset,
)
from SpinePlannerLib.export.plan_folder import PlanFolder
from SpinePlannerLib.export.report_pdf import report_document
from SpinePlannerLib.export.rtstruct import build_rtstruct
from SpinePlannerLib.export.seg import build_seg
from SpinePlannerLib.export.structures import tract_structure
from SpinePlannerLib.export.tract_density import read_streamlines, tract_density


def reference_series(pf: PlanFolder, *, deidentify: bool) -> ReferenceSeries:
    """The input series when the reference was DICOM (and identities are kept), else a new
    derived series in a new study (pseudonymous patient; random when de-identifying)."""
    if pf.reference_is_dicom and not deidentify:
        return read_reference_series(pf.reference_path, pf.reference, files=pf.reference_dicom_files)
    seed = uuid.uuid4().hex if deidentify else f"{pf.plan.get('created_utc')}|{pf.reference_path}"
    header = new_study_header(seed=seed, deidentified=deidentify)
    source = "a DICOM series, headers rebuilt (de-identified)" if pf.reference_is_dicom else "a NIfTI/NRRD file"
    return derived_reference(pf.reference, header, role=pf.reference_role, source=source)


def _record(path: Path, ds, what: str) -> dict:
    return {"path": str(path), "sop_class_uid": str(ds.SOPClassUID), "sop_instance_uid": str(ds.SOPInstanceUID),
            "what": what}


def export_dicom(pf: PlanFolder, out: Path, *, deidentify: bool = False, progress=lambda f, m: None) -> list[dict]:
    """Write every DICOM object of the plan under ``out``; returns their records."""
    out = Path(out)
    records: list[dict] = []
    progress(0.0, "DICOM: reference series")
    ref = reference_series(pf, deidentify=deidentify)
    if not ref.reused:
        for k, ds in enumerate(ref.datasets):
            p = save_dataset(ds, out / "reference" / f"IMG{k + 1:04d}.dcm")
            records.append(_record(p, ds, "reference image"))
    structures = list(pf.masks)
    streamlines = read_streamlines(pf.folder / "tracts")
    density = tract_density(streamlines, pf.reference) if streamlines else None
    if density is not None and density.any():
        structures.append((tract_structure(), density > 0))
    progress(0.3, "DICOM: segmentation (SEG)")
    seg = build_seg(ref, structures)
    records.append(_record(save_dataset(seg, out / "seg.dcm"), seg, "SEG"))
    progress(0.55, "DICOM: structure set (RTSTRUCT)")
    rt = build_rtstruct(ref, structures, pf.reference.affine)
    records.append(_record(save_dataset(rt, out / "rtstruct.dcm"), rt, "RTSTRUCT"))
    if density is not None and density.any():
        progress(0.8, "DICOM: tract density series")
        header = patient_study_header(ref.first)
        series = image_series(pf.reference.with_array(density.astype(np.float32)), header,
                              frame_uid=ref.frame_of_reference_uid, modality="MR", series_number=102,
                              series_description="tract density (streamlines per voxel)",
                              derivation="number of cord-tract streamlines crossing each voxel of the reference grid")
        for k, ds in enumerate(series):
            p = save_dataset(ds, out / "tract_density" / f"IMG{k + 1:04d}.dcm")
            records.append(_record(p, ds, "tract density"))
    progress(0.9, "DICOM: report")
    doc = report_document(pf.folder, pf.plan, ref.first, deidentify=deidentify)
    records.append(_record(save_dataset(doc, out / "report.dcm"), doc, "report (encapsulated PDF)"))
    return records
