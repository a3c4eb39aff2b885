"""Whole-case verdicts of the synthetic-CT check: calcified vs soft lesions, bone, MRI signal voids."""

from __future__ import annotations

import json

import numpy as np
import pytest

from SpinePlannerLib.core.params import from_dict
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.planning.plan_schema import validate_plan
from SyntheticCTCheckLib.check import check_synthetic_ct
from SyntheticCTCheckLib.flags import DISAGREEMENT_CODES
from SyntheticCTCheckLib.params import CheckParams
from SyntheticCTCheckLib.synthetic_cases import LESION_CENTER, Tissues, grid_affine, make_case, sample_case


def _codes(section):
    return {f["code"] for f in section["flags"]}


def _valid_plan(section):
    plan = {"schema_version": 1, "inputs": {}, "stages": {}, "warnings": [], "tumor": {}, "cord": {},
            "synthetic_ct_check": json.loads(json.dumps(section, allow_nan=False))}
    validate_plan(plan)


@pytest.fixture(scope="module")
def calcified():
    c = make_case(ct_lesion_hu=550.0, sct_lesion_hu=12.0)
    return c, check_synthetic_ct(c["sct"], c["roi"], ct=c["ct"])


def test_calcified_lesion_missing_on_synthetic_ct_is_a_disagreement(calcified):
    _, r = calcified
    s = r.section
    assert s["ct"]["median_hu"] == pytest.approx(550.0, abs=15.0)
    assert s["ct"]["lesion_axial_diameter_mm"] == pytest.approx(13.8, abs=1.2)
    assert s["ct"]["lesion_craniocaudal_mm"] == pytest.approx(16.0, abs=1.2)
    assert s["sct"]["visible"] is False
    assert (s["sct"]["lesion_axial_diameter_mm"], s["sct"]["lesion_craniocaudal_mm"]) == (None, None)  # not seen: null
    assert s["disagreement"] is True
    assert {"CALCIFICATION_MISSED_ON_SCT", "SCT_UNDERESTIMATES_DENSITY", "LESION_NOT_DEPICTED_ON_SCT"} <= _codes(s)
    missed = next(f for f in s["flags"] if f["code"] == "CALCIFICATION_MISSED_ON_SCT")
    assert missed["severity"] == "critical"
    assert "but absent on synthetic CT (12 HU)" in missed["message"]
    under = next(f for f in s["flags"] if f["code"] == "SCT_UNDERESTIMATES_DENSITY")
    diff = s["ct"]["mean_hu"] - s["sct"]["mean_hu"]
    assert f"by {diff:.0f} HU" in under["message"]
    assert s["verdict"].startswith("synthetic CT cannot replace CT for this lesion")
    assert s["approach_hint"].startswith("hard (densely calcified)")
    assert "p = 0.129" in s["approach_hint"]
    _valid_plan(s)


def test_difference_volume_and_flagged_region_cover_the_calcification(calcified):
    c, r = calcified
    d = r.difference
    lesion_ras = LESION_CENTER
    ijk = np.round(d.ras_to_ijk(lesion_ras)).astype(int)
    assert d.array[tuple(ijk)] == pytest.approx(538.0, abs=40.0)  # HU, CT - sCT at the lesion centre
    flagged_ml = np.count_nonzero(r.flagged.array) * r.flagged.voxel_volume_ml
    assert flagged_ml == pytest.approx(r.section["ct"]["calcified_volume_ml"], rel=0.15)
    # difference and flags live in the MRI (ROI) frame: the lesion centre is where the ROI is
    assert r.flagged.array[tuple(ijk)] == 1


def test_synthetic_ct_agrees_in_bone_yet_not_in_the_lesion():
    c = make_case(ct_lesion_hu=550.0, sct_lesion_hu=12.0, sct_bone_hu=650.0)
    # vertebrae label: the truth bone mask, eroded 2 voxels, moved into the MRI frame
    from scipy import ndimage

    core = ndimage.binary_erosion(c["ct_bone"].array > 0, iterations=2)
    vert = Volume(core.astype(np.uint8), np.linalg.inv(c["motion"]) @ c["ct_bone"].affine, "vertebrae")
    s = check_synthetic_ct(c["sct"], c["roi"], ct=c["ct"], vertebrae=vert).section
    assert s["bone"]["source"] == "vertebra segmentation"
    assert s["bone"]["bias_hu"] == pytest.approx(-50.0, abs=10.0)  # sCT bone 650 vs CT 700 HU
    assert s["bone"]["mae_hu"] == pytest.approx(50.0, abs=12.0)
    assert "BONE_AGREES_LESION_DISAGREES" in _codes(s)


def test_soft_lesion_shows_no_disagreement():
    c = make_case(ct_lesion_hu=40.0, sct_lesion_hu=33.0)
    s = check_synthetic_ct(c["sct"], c["roi"], ct=c["ct"]).section
    assert s["disagreement"] is False
    assert not (_codes(s) & DISAGREEMENT_CODES)
    assert s["ct"]["calcification_class"] == s["sct"]["calcification_class"] == "none"
    assert s["approach_hint"].startswith("soft")
    assert s["verdict"].startswith("synthetic CT agrees with CT")


@pytest.fixture(scope="module")
def faint():
    return make_case(ct_lesion_hu=113.0, sct_lesion_hu=12.0)


def test_barely_calcified_lesion_is_faint_and_reported_not_depicted(faint):
    c = faint
    s = check_synthetic_ct(c["sct"], c["roi"], ct=c["ct"]).section
    assert s["ct"]["calcification_class"] in ("faint", "partial")
    assert "LESION_NOT_DEPICTED_ON_SCT" in _codes(s)
    assert s["disagreement"] is True


def test_density_difference_setting_decides_the_density_flag(faint):
    c = faint  # CT about 108 HU vs synthetic CT 12 HU: a difference of about 96 HU

    def codes(threshold):
        params = from_dict(CheckParams, {"density_difference_hu": threshold, "critical_difference_hu": 300.0})
        s = check_synthetic_ct(c["sct"], c["roi"], ct=c["ct"], params=params).section
        assert s["settings"]["density_difference_hu"] == threshold
        return _codes(s)

    assert "SCT_UNDERESTIMATES_DENSITY" in codes(80.0)
    assert "SCT_UNDERESTIMATES_DENSITY" not in codes(150.0)


# -- MRI signal voids (gradient echo / SWI) ------------------------------------------------------
MR_SIGNAL = Tissues(lesion=250.0, cord=350.0, csf=600.0, bone=60.0, soft=300.0, fat=500.0)


def _gre(motion, with_voids: bool) -> Volume:
    """A T2*-weighted image of the MRI session (same world frame as the synthetic CT and the ROI)."""
    shape = (36, 36, 30)
    aff = grid_affine(spacing=(0.9, 0.9, 1.3), shape=shape, angles_deg=(4, 6, -8), axis_order=(1, 0, 2))
    img, _, _ = sample_case(aff, shape, MR_SIGNAL, axial_mm=13.8, cc_mm=16.0, noise_hu=10.0, seed=5,
                            world_to_anatomy=motion)
    if with_voids:  # two calcium foci of radius 2 mm (anatomy frame), nearly black
        ras = img.ijk_to_ras(np.indices(shape).reshape(3, -1).T)
        anat = (ras @ motion[:3, :3].T + motion[:3, 3]).reshape(*shape, 3)
        for centre in (LESION_CENTER + [2.0, 1.0, 3.0], LESION_CENTER + [-2.0, -1.0, -4.0]):
            img.array[np.linalg.norm(anat - centre, axis=-1) <= 2.0] = 25.0
    return img


def test_signal_voids_without_ct_flag_a_synthetic_ct_that_shows_no_calcification():
    c = make_case(ct_lesion_hu=550.0, sct_lesion_hu=12.0)
    r = check_synthetic_ct(c["sct"], c["roi"], gre=_gre(c["motion"], True), gre_sequence="swi")
    s = r.section
    assert s["ct"] is None
    assert s["mri_calcification"]["suggests_calcification"] is True
    assert s["mri_calcification"]["void_volume_mm3"] == pytest.approx(2 * 4 / 3 * np.pi * 8, rel=0.2)  # mm^3, two 2 mm balls
    flag = next(f for f in s["flags"] if f["code"] == "MRI_VOIDS_MISSED_ON_SCT")
    assert flag["severity"] == "critical" and "SWI" in flag["message"] and "obtain a CT" in flag["message"]
    assert s["disagreement"] is True
    assert r.flagged is not None and np.any(r.flagged.array)
    assert s["reliable"] is False  # no CT
    _valid_plan(s)


def test_homogeneous_lesion_on_gradient_echo_suggests_no_calcification():
    c = make_case(ct_lesion_hu=40.0, sct_lesion_hu=33.0)
    s = check_synthetic_ct(c["sct"], c["roi"], gre=_gre(c["motion"], False)).section
    assert s["mri_calcification"]["suggests_calcification"] is False
    assert s["disagreement"] is False
