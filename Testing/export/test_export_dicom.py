"""`spineplan export --format dicom`: SEG and RTSTRUCT in the frame of the reference image,
the input's study when it was DICOM, a derived study when it was NIfTI; round trips against the
plan's label maps; the validator; tract density; the report page; bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pydicom
import pytest
from helpers_export import dciodvfy_errors, dice

from SpinePlannerLib.cli.main import main
from SpinePlannerLib.core.imageio import read_volume
from SpinePlannerLib.core.volume import LPS_TO_RAS
from SpinePlannerLib.export.plan_folder import load_plan_folder
from SpinePlannerLib.export.rtstruct import rtstruct_to_masks
from SpinePlannerLib.export.seg import seg_to_masks
from SpinePlannerLib.export.tract_density import read_streamlines

THICK = ("tumor", "cord", "csf", "bone")
"""Structures at least 3 mm thick on the phantom (plus every vertebra)."""


@pytest.fixture(scope="module")
def dicom_export(dicom_plan, tmp_path_factory):
    plan, series, _ = dicom_plan
    out = tmp_path_factory.mktemp("exp-dicom") / "export"
    assert main(["--quiet", "export", str(plan), "--format", "dicom", "--out", str(out)]) == 0
    return out, plan, series


@pytest.fixture(scope="module")
def nifti_export(nifti_plan, tmp_path_factory):
    out = tmp_path_factory.mktemp("exp-nifti") / "export"
    assert main(["--quiet", "export", str(nifti_plan), "--format", "dicom", "--out", str(out)]) == 0
    return out, nifti_plan


def _input_series(series_dir):
    return [pydicom.dcmread(p) for p in sorted(series_dir.iterdir())]


def test_dicom_input_export_joins_the_input_study_and_frame(dicom_export):
    out, _, series = dicom_export
    src = _input_series(series)
    sops = {str(d.SOPInstanceUID) for d in src}
    assert not (out / "dicom" / "reference").exists(), "the input series is in the PACS already: not rewritten"
    for name in ("seg.dcm", "rtstruct.dcm", "report.dcm"):
        ds = pydicom.dcmread(out / "dicom" / name)
        assert ds.StudyInstanceUID == src[0].StudyInstanceUID
        assert ds.PatientName == src[0].PatientName and ds.PatientID == src[0].PatientID
    seg = pydicom.dcmread(out / "dicom" / "seg.dcm")
    assert seg.FrameOfReferenceUID == src[0].FrameOfReferenceUID
    referenced = {str(i.ReferencedSOPInstanceUID) for s in seg.ReferencedSeriesSequence
                  for i in s.ReferencedInstanceSequence}
    assert referenced == sops
    rt = pydicom.dcmread(out / "dicom" / "rtstruct.dcm")
    assert rt.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID == src[0].FrameOfReferenceUID


def test_seg_frames_overlay_their_source_slices_and_round_trip(dicom_export):
    out, plan, series = dicom_export
    pf = load_plan_folder(plan)
    src = {str(d.SOPInstanceUID): d for d in _input_series(series)}
    import highdicom as hd

    seg = hd.seg.segread(out / "dicom" / "seg.dcm")
    for frame in seg.PerFrameFunctionalGroupsSequence:  # each frame lies on the slice it references
        ref_uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        pos = np.asarray(frame.PlanePositionSequence[0].ImagePositionPatient, float)
        assert np.allclose(pos, np.asarray(src[ref_uid].ImagePositionPatient, float), atol=1e-3)
    back = seg_to_masks(seg, pf.reference.affine, pf.reference.shape3)  # positions within half a voxel
    for s, mask in pf.masks:
        assert dice(back[s.key], mask) >= 0.98, s.key
    assert "tract_volume" in back and back["tract_volume"].any()
    labels = {str(d.SegmentLabel): d for d in seg.SegmentSequence}
    tumor = labels["tumor"]
    assert tumor.SegmentedPropertyTypeCodeSequence[0].CodeValue == "108369006"
    assert tumor.SegmentedPropertyCategoryCodeSequence[0].CodingSchemeDesignator == "SCT"
    assert "T10 vertebra" in labels and len(tumor.RecommendedDisplayCIELabValue) == 3


def _slice_positions(ds_list):
    return {str(d.SOPInstanceUID): np.asarray(d.ImagePositionPatient, float) for d in ds_list}


def test_rtstruct_round_trip_and_roles(dicom_export):
    out, plan, series = dicom_export
    pf = load_plan_folder(plan)
    rt = pydicom.dcmread(out / "dicom" / "rtstruct.dcm")
    back = rtstruct_to_masks(rt, pf.reference.affine, pf.reference.shape3)
    checked = 0
    for s, mask in pf.masks:
        if s.key in THICK or s.key.startswith("vertebra_"):
            assert dice(back[s.key], mask) >= 0.90, (s.key, dice(back[s.key], mask))
            checked += 1
    assert checked >= 6
    roles = {str(o.ROIObservationLabel): str(o.RTROIInterpretedType) for o in rt.RTROIObservationsSequence}
    assert roles["tumor"] == "GTV" and roles["cord"] == "ORGAN"
    # every contour lies in the plane of the slice it references (normal distance < half a voxel)
    src = {str(d.SOPInstanceUID): d for d in _input_series(series)}
    half = 0.5 * pf.reference.spacing[2]
    for rc in rt.ROIContourSequence:
        for c in rc.ContourSequence[:50]:
            d = src[str(c.ContourImageSequence[0].ReferencedSOPInstanceUID)]
            o = np.asarray(d.ImageOrientationPatient, float)
            normal = np.cross(o[:3], o[3:])
            pts = np.asarray(c.ContourData, float).reshape(-1, 3)
            assert np.all(np.abs((pts - np.asarray(d.ImagePositionPatient, float)) @ normal) < half)


def test_every_dicom_object_passes_the_validator(dicom_export, nifti_export):
    files = [dicom_export[0] / "dicom" / n for n in ("seg.dcm", "rtstruct.dcm", "report.dcm")]
    nd = nifti_export[0] / "dicom"
    files += [nd / "seg.dcm", nd / "rtstruct.dcm", nd / "reference" / "IMG0001.dcm", nd / "tract_density" / "IMG0001.dcm"]
    for f in files:
        assert dciodvfy_errors(f) == [], f


def test_nifti_input_gets_a_derived_study_with_the_reference_series(nifti_export):
    out, plan = nifti_export
    pf = load_plan_folder(plan)
    assert not pf.reference_is_dicom
    ref_files = sorted((out / "dicom" / "reference").iterdir())
    assert len(ref_files) == pf.reference.shape3[2]
    first = pydicom.dcmread(ref_files[0])
    assert "NOT FOR DIAGNOSIS" in first.SeriesDescription and first.ImageType[0] == "DERIVED"
    assert "NOT FOR DIAGNOSIS" in first.StudyDescription
    back = read_volume(out / "dicom" / "reference")  # grid and values survive the series
    assert back.shape3 == pf.reference.shape3
    assert np.abs(back.affine - pf.reference.affine).max() < 1e-3
    span = float(np.ptp(pf.reference.array))
    assert np.abs(back.array - pf.reference.array).max() <= span / 65000 + 1e-6
    seg = pydicom.dcmread(out / "dicom" / "seg.dcm")
    assert seg.StudyInstanceUID == first.StudyInstanceUID and seg.FrameOfReferenceUID == first.FrameOfReferenceUID
    import highdicom as hd

    masks = seg_to_masks(hd.seg.segread(out / "dicom" / "seg.dcm"), pf.reference.affine, pf.reference.shape3)
    assert dice(masks["tumor"], pf.mask("tumor")) >= 0.98


def test_tract_density_series_counts_streamlines_on_the_reference_grid(nifti_export):
    out, plan = nifti_export
    pf = load_plan_folder(plan)
    density = read_volume(out / "dicom" / "tract_density")
    assert density.same_grid(pf.reference, tol_mm=1e-3)
    streamlines = read_streamlines(plan / "tracts")
    assert 0 < density.array.max() <= len(streamlines)
    # independently: the voxel of every 10th streamline's mid point is counted
    for s in streamlines[::10]:
        i, j, k = np.rint(pf.reference.ras_to_ijk(s[len(s) // 2])).astype(int)
        assert density.array[i, j, k] >= 1
    from scipy.ndimage import binary_dilation

    inside = binary_dilation(pf.mask("cord") | pf.mask("tumor"), iterations=2)
    assert (density.array[inside] > 0).sum() / (density.array > 0).sum() > 0.9


def test_report_page_carries_the_setzer_verdict(nifti_export, nifti_plan, tmp_path):
    out, _ = nifti_export
    doc = pydicom.dcmread(out / "dicom" / "report.dcm")
    pdf = bytes(doc.EncapsulatedDocument)[: int(doc.EncapsulatedDocumentLength)]
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    setzer = json.loads((nifti_plan / "plan.json").read_text())["tractography"]["setzer_type"]
    assert f"Setzer type {setzer}".encode() in pdf
    # a report.pdf written by the report package is encapsulated as it is
    plan2 = tmp_path / "plan"
    shutil.copytree(nifti_plan, plan2)
    (plan2 / "report.pdf").write_bytes(pdf.replace(b"plan summary", b"full report!"))
    assert main(["--quiet", "export", str(plan2), "--format", "dicom", "--out", str(tmp_path / "e")]) == 0
    doc2 = pydicom.dcmread(tmp_path / "e" / "dicom" / "report.dcm")
    assert bytes(doc2.EncapsulatedDocument)[: int(doc2.EncapsulatedDocumentLength)] == (plan2 / "report.pdf").read_bytes()


def test_bad_input_exits_2_and_writes_nothing(nifti_plan, tmp_path, capsys):
    assert main(["--quiet", "export", str(tmp_path / "nothing"), "--out", str(tmp_path / "o1")]) == 2
    assert "plan.json" in capsys.readouterr().err
    broken = tmp_path / "plan"
    shutil.copytree(nifti_plan, broken)
    plan = json.loads((broken / "plan.json").read_text())
    plan["inputs"]["t2"] = str(tmp_path / "moved.nii.gz")
    (broken / "plan.json").write_text(json.dumps(plan))
    assert main(["--quiet", "export", str(broken), "--out", str(tmp_path / "o2")]) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]


def test_lps_conversion_of_seg_positions(nifti_export, nifti_plan):
    """Frame k of the SEG sits where the plan's RAS affine puts slice k, flipped to LPS."""
    pf = load_plan_folder(nifti_plan)
    seg = pydicom.dcmread(nifti_export[0] / "dicom" / "seg.dcm")
    for frame in seg.PerFrameFunctionalGroupsSequence[:20]:
        lps = np.asarray(frame.PlanePositionSequence[0].ImagePositionPatient, float)
        ijk = pf.reference.ras_to_ijk(LPS_TO_RAS[:3, :3] @ lps)
        assert np.allclose(ijk[:2], 0, atol=1e-3) and abs(ijk[2] - round(ijk[2])) < 1e-3
