"""A finished plan made once per session from a DICOM MR series (the phantom's T2 written with
patient identifiers), and the same plan pointed at the NIfTI T2 (a NIfTI-input plan)."""

from __future__ import annotations

import json
import shutil

import pytest

IDENTIFIERS = {"PatientName": "Doeexport^Janeexport", "PatientID": "PID-73519-XQ", "PatientBirthDate": "19610317",
               "InstitutionName": "Saint Exportia Hospital", "AccessionNumber": "ACC99173"}
"""Header values of the input series that --deidentify must remove from every output byte."""


@pytest.fixture(scope="session")
def dicom_plan(phantom_dir, tmp_path_factory):
    """(plan folder, DICOM series folder, phantom folder): ``spineplan plan --t2 <DICOM> --t1 --ct
    --dwi --no-scene`` on the intramedullary-displacing phantom (seed 0)."""
    from dicom_writer import write_mr_series

    from SpinePlannerLib.cli.main import main
    from SpinePlannerLib.core.imageio import read_volume

    case = phantom_dir("intramedullary-displacing", 0)
    root = tmp_path_factory.mktemp("export-plan")
    series = root / "t2_dicom"
    write_mr_series(read_volume(case / "t2.nii.gz"), series, patient=IDENTIFIERS)
    out = root / "plan"
    seed = ",".join(str(v) for v in json.loads((case / "truth.json").read_text())["tumor"]["centroid_ras"])
    args = ["--quiet", "plan", "--tumor-seed", seed, "--t2", str(series), "--t1", str(case / "t1.nii.gz"), "--ct", str(case / "ct.nii.gz"),
            "--dwi", str(case / "dwi.nii.gz"), "--bval", str(case / "dwi.bval"), "--bvec", str(case / "dwi.bvec"),
            "--out", str(out), "--no-scene", "--no-report"]
    assert main(args) == 0
    return out, series, case


@pytest.fixture(scope="session")
def nifti_plan(dicom_plan, tmp_path_factory):
    """The same plan folder with its reference input (t2) a NIfTI file of the same image and grid
    (the DICOM series as read, written as NIfTI: its k axis is the series' slice normal)."""
    from SpinePlannerLib.core.imageio import read_volume, write_volume

    out, series, _ = dicom_plan
    root = tmp_path_factory.mktemp("export-plan-nifti")
    t2 = write_volume(read_volume(series), root / "t2.nii.gz")
    copy = root / "plan"
    shutil.copytree(out, copy)
    plan = json.loads((copy / "plan.json").read_text())
    plan["inputs"]["t2"] = str(t2)
    (copy / "plan.json").write_text(json.dumps(plan))
    return copy
