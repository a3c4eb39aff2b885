"""SINS on a real CT (TotalSegmentator example, 3 mm) with a lytic lesion painted into L1's body.

L1 is known from the TotalSegmentator labels (31 = L1); levels are counted from the last rib, so
the location element is scored but flagged as assumed. The 30-slice field of view cuts T12 and L2:
collapse and alignment must be reported as not assessable instead of guessed.
"""

import json

import nibabel as nib
import numpy as np
import pytest

from SpinePlannerLib.cli.main import main

L1_LABEL = 31


@pytest.fixture(scope="module")
def painted_plan(shared_data, tmp_path_factory):
    src = shared_data / "totalsegmentator"
    ct = nib.load(src / "example_ct_sm.nii.gz")
    seg = np.asarray(nib.load(src / "example_seg.nii.gz").dataobj)
    hu = np.asarray(ct.dataobj).astype(np.float32)
    vox = np.argwhere(seg == L1_LABEL)
    body = vox[vox[:, 1] >= np.percentile(vox[:, 1], 50)]  # +j is anterior on this RAS grid
    c = body.mean(axis=0)
    ii, jj, kk = np.indices(hu.shape)
    lesion = ((((ii - c[0]) ** 2 + (jj - c[1]) ** 2 + (kk - c[2]) ** 2) * 9.0 <= 10.0 ** 2) & (seg == L1_LABEL))
    hu[lesion] = 35.0  # soft tissue: bone destroyed
    d = tmp_path_factory.mktemp("realct")
    nib.save(nib.Nifti1Image(hu.astype(np.int16), ct.affine), d / "ct.nii.gz")
    nib.save(nib.Nifti1Image(lesion.astype(np.uint8), ct.affine), d / "tumor.nii.gz")
    rc = main(["--quiet", "plan", "--ct", str(d / "ct.nii.gz"), "--tumor-seg", str(d / "tumor.nii.gz"),
               "--pain", "occasional", "--myelopathy", "no", "--histology", "renal cell carcinoma",
               "--out", str(d / "out"), "--no-scene", "--no-report"])
    assert rc == 0
    return json.loads((d / "out" / "plan.json").read_text())


def test_painted_l1_lesion_is_located_and_lytic(painted_plan):
    el = painted_plan["approach"]["sins"]["elements"]
    assert painted_plan["tumor"]["levels_spanned"] == ["L1"]
    assert (el["location"]["points"], el["location"]["finding"], el["location"]["confidence"]) == (3, "junctional", "moderate")
    assert (el["bone_lesion"]["finding"], el["bone_lesion"]["points"]) == ("lytic", 2), el["bone_lesion"]["evidence"]
    assert (el["pain"]["points"], el["posterolateral"]["points"]) == (1, 0)


def test_cut_neighbours_leave_collapse_and_alignment_open(painted_plan):
    s = painted_plan["approach"]["sins"]
    assert set(s["undecided"]) == {"collapse", "alignment"}
    assert s["total_range"] == [6, 13] and s["band"] is None
    assert s["bands_possible"] == ["stable", "indeterminate", "unstable"]


def test_clinical_options_reach_sins_and_noms(painted_plan):
    a = painted_plan["approach"]
    assert a["clinical_inputs"] == {"pain": "occasional", "myelopathy": False, "histology": "renal cell carcinoma"}
    assert painted_plan["parameters"]["clinical"]["pain"] == "occasional"
    assert a["noms"]["oncologic"]["radiosensitivity"] == "radioresistant" and a["noms"]["applicable"]
