"""Rigid CT -> synthetic CT alignment with a residual in mm (SyntheticCTCheckLib.registration)."""

from __future__ import annotations

import numpy as np
import pytest

from SyntheticCTCheckLib.params import RegistrationParams
from SyntheticCTCheckLib.registration import register_ct_to_sct
from SyntheticCTCheckLib.synthetic_cases import LESION_CENTER, make_case, rigid

# points around the lesion (RAS mm) where the alignment error is measured
POINTS = LESION_CENTER + np.array([[x, y, z] for x in (-8, 0, 8) for y in (-8, 0, 8) for z in (-10, 0, 10)], float)


def _error_mm(m, truth):
    a = POINTS @ m[:3, :3].T + m[:3, 3]
    b = POINTS @ truth[:3, :3].T + truth[:3, 3]
    return np.linalg.norm(a - b, axis=1)


@pytest.fixture(scope="module")
def moved_case():
    return make_case(motion=rigid((3, -2, 4), (1.5, -1.0, 2.0), center=LESION_CENTER))


def test_mutual_information_recovers_a_known_rigid_motion(moved_case):
    c = moved_case
    r = register_ct_to_sct(c["ct"], c["sct"], focus_ras=LESION_CENTER)
    truth = np.linalg.inv(c["motion"])
    assert r.method == "rigid mutual information"
    assert _error_mm(r.ct_to_sct_ras, truth).max() < 0.4  # mm, CT voxels are 0.7 x 0.7 x 1 mm
    assert _error_mm(np.eye(4), truth).max() > 2.0  # the headers alone would be off by > 2 mm
    assert r.residual_mm < 0.6 < r.initial_residual_mm
    assert r.rotation_deg == pytest.approx(np.degrees(np.arccos((np.trace(truth[:3, :3]) - 1) / 2)), abs=0.5)


def test_trusted_headers_skip_registration_and_still_report_the_residual(moved_case):
    c = moved_case
    r = register_ct_to_sct(c["ct"], c["sct"], params=RegistrationParams(trust_headers=True), focus_ras=LESION_CENTER)
    assert r.method == "headers"
    assert np.array_equal(r.ct_to_sct_ras, np.eye(4))
    assert r.residual_mm > 1.0  # the misalignment shows in the residual


def test_identical_grids_are_not_registered():
    c = make_case(motion=np.eye(4))
    ct = c["ct"]
    sct = ct.with_array(ct.array - 5.0)
    r = register_ct_to_sct(ct, sct, focus_ras=LESION_CENTER)
    assert r.method == "identical grid"
    assert r.residual_mm is not None and r.residual_mm < 0.3


def test_registration_parameters_are_validated():
    with pytest.raises(ValueError, match="equal length"):
        RegistrationParams(shrink_factors=(4, 2, 1), smoothing_sigmas_mm=(1, 0))
    with pytest.raises(ValueError, match="sampling_fraction"):
        RegistrationParams(sampling_fraction=0)
