"""`spineplan export --deidentify`: no byte of anything written holds the input's patient
identifiers, study/series/instance UIDs or the plan's folder path; the objects still agree."""

from __future__ import annotations

import pydicom
from conftest import IDENTIFIERS

from SpinePlannerLib.cli.main import main


def test_deidentified_export_holds_no_input_identifier(dicom_plan, tmp_path):
    plan, series, _ = dicom_plan
    out = tmp_path / "export"
    assert main(["--quiet", "export", str(plan), "--format", "all", "--deidentify", "--out", str(out)]) == 0
    src = [pydicom.dcmread(p) for p in sorted(series.iterdir())]
    needles = {v for v in IDENTIFIERS.values()}
    needles |= set(IDENTIFIERS["PatientName"].split("^"))  # each name component on its own
    needles |= {str(src[0].StudyInstanceUID), str(src[0].SeriesInstanceUID), str(src[0].FrameOfReferenceUID)}
    needles |= {str(d.SOPInstanceUID) for d in src}
    needles |= {str(plan), str(series), "Phantom^Test"}
    needles = {n.encode() for n in needles} | {n.lower().encode() for n in needles if not n[0].isdigit()}
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 100
    for p in files:
        data = p.read_bytes()
        found = [n for n in needles if n in data]
        assert not found, (p.name, found)
    seg = pydicom.dcmread(out / "dicom" / "seg.dcm")
    ref = pydicom.dcmread(next((out / "dicom" / "reference").iterdir()))
    assert seg.PatientIdentityRemoved == "YES"
    assert seg.StudyInstanceUID == ref.StudyInstanceUID and seg.FrameOfReferenceUID == ref.FrameOfReferenceUID
    referenced = {str(i.ReferencedSOPInstanceUID) for s in seg.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence}
    exported = {str(pydicom.dcmread(p).SOPInstanceUID) for p in (out / "dicom" / "reference").iterdir()}
    assert referenced == exported
