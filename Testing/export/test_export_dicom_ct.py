"""A plan made from a DICOM CT series: SEG, RTSTRUCT and the tract-density series join the CT's
study and frame of reference, reference its slices, overlay them at the right place and pass
the validator."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
from helpers_export import dciodvfy_errors, dice

from SpinePlannerLib.cli.main import main
from SpinePlannerLib.export.plan_folder import load_plan_folder
from SpinePlannerLib.export.rtstruct import rtstruct_to_masks
from SpinePlannerLib.export.seg import seg_to_masks


@pytest.fixture(scope="module")
def ct_export(phantom_dir, tmp_path_factory):
    from dicom_writer import write_mr_series

    from SpinePlannerLib.core.imageio import read_volume

    case = phantom_dir("intramedullary-displacing", 0)
    root = tmp_path_factory.mktemp("export-ct")
    series = root / "ct_dicom"
    write_mr_series(read_volume(case / "ct.nii.gz"), series, modality="CT")
    seed = ",".join(str(v) for v in json.loads((case / "truth.json").read_text())["tumor"]["centroid_ras"])
    plan = root / "plan"
    assert main(["--quiet", "plan", "--ct", str(series), "--tumor-seed", seed, "--dwi", str(case / "dwi.nii.gz"),
                 "--bval", str(case / "dwi.bval"), "--bvec", str(case / "dwi.bvec"), "--no-scene",
                 "--out", str(plan), "--export", "dicom"]) == 0
    return plan / "export", plan, series


def test_ct_plan_objects_overlay_the_ct_series(ct_export):
    out, plan, series = ct_export
    src = {str(d.SOPInstanceUID): d for d in (pydicom.dcmread(p) for p in series.iterdir())}
    first = next(iter(src.values()))
    pf = load_plan_folder(plan)
    assert pf.reference_role == "ct" and pf.reference_is_dicom
    names = ["seg.dcm", "rtstruct.dcm", "report.dcm", *(f"tract_density/{p.name}" for p in
                                                        sorted((out / "dicom" / "tract_density").iterdir())[:1])]
    for name in names:
        ds = pydicom.dcmread(out / "dicom" / name)
        assert ds.StudyInstanceUID == first.StudyInstanceUID and ds.PatientID == first.PatientID
        assert dciodvfy_errors(out / "dicom" / name) == [], name
    import highdicom as hd

    seg = hd.seg.segread(out / "dicom" / "seg.dcm")
    assert seg.FrameOfReferenceUID == first.FrameOfReferenceUID
    for frame in seg.PerFrameFunctionalGroupsSequence:
        uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        assert np.allclose(frame.PlanePositionSequence[0].ImagePositionPatient, src[uid].ImagePositionPatient, atol=1e-3)
    masks = seg_to_masks(seg, pf.reference.affine, pf.reference.shape3)
    rt = rtstruct_to_masks(pydicom.dcmread(out / "dicom" / "rtstruct.dcm"), pf.reference.affine, pf.reference.shape3)
    for key in ("tumor", "cord", "bone"):
        assert dice(masks[key], pf.mask(key)) >= 0.98 and dice(rt[key], pf.mask(key)) >= 0.90, key
    density = pydicom.dcmread(next((out / "dicom" / "tract_density").iterdir()))
    assert density.FrameOfReferenceUID == first.FrameOfReferenceUID
