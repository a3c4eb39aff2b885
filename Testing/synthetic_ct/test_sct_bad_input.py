"""Bad input to the synthetic-CT check: CT not in HU, images not overlapping, ROI lost on the way."""

from __future__ import annotations

import numpy as np
import pytest

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.params import from_dict, to_flat_dict
from SpinePlannerLib.core.volume import Volume
from SyntheticCTCheckLib.check import RoiOutsideImage, check_synthetic_ct
from SyntheticCTCheckLib.masks import crop_volume
from SyntheticCTCheckLib.params import CheckParams
from SyntheticCTCheckLib.synthetic_cases import make_case


@pytest.fixture(scope="module")
def case():
    return make_case(motion=np.eye(4))


def test_raw_unsigned_ct_without_rescale_is_rejected(case):
    raw = case["ct"].with_array(np.clip(case["ct"].array + 1024.0, 0, None).astype(np.uint16))
    with pytest.raises(InputError, match="Hounsfield") as exc:
        check_synthetic_ct(case["sct"], case["roi"], ct=raw)
    assert exc.value.name == "ct"
    assert "1024" in exc.value.problem  # says how to fix it


def test_normalised_synthetic_ct_is_rejected(case):
    norm = case["sct"].with_array((case["sct"].array / 4000.0).astype(np.float32))
    with pytest.raises(InputError, match="too narrow") as exc:
        check_synthetic_ct(norm, case["roi"], ct=case["ct"])
    assert exc.value.name == "sct"


def test_ct_and_synthetic_ct_that_do_not_overlap_are_rejected(case):
    far = case["sct"].affine.copy()
    far[:3, 3] += [0.0, 0.0, 500.0]
    sct = Volume(case["sct"].array, far, "sct")
    with pytest.raises(InputError, match="does not overlap") as exc:
        check_synthetic_ct(sct, case["roi"], ct=case["ct"])
    assert exc.value.name == "sct"


def test_roi_outside_the_ct_after_propagation_is_rejected(case):
    ct = case["ct"]  # k runs roughly inferior -> superior over S = -22..22 mm; the lesion spans S = -8..8 mm
    caudal = crop_volume(ct, (slice(0, ct.shape3[0]), slice(0, ct.shape3[1]), slice(0, 8)))
    assert caudal.bounds_ras()[1][2] < -8.0
    with pytest.raises(RoiOutsideImage, match="outside the CT") as exc:
        check_synthetic_ct(case["sct"], case["roi"], ct=caudal, params=from_dict(CheckParams, {"trust_headers": True}))
    assert isinstance(exc.value, InputError) and exc.value.name == "ct"


def test_empty_roi_is_rejected(case):
    with pytest.raises(InputError, match="empty") as exc:
        check_synthetic_ct(case["sct"], case["roi"].with_array(np.zeros(case["roi"].shape3, np.uint8)), ct=case["ct"])
    assert exc.value.name == "tumor segmentation"


def test_unknown_and_ambiguous_parameters_are_refused():
    with pytest.raises(ValueError, match="unknown"):
        from_dict(CheckParams, {"calcified_threshold": 130})
    with pytest.raises(ValueError, match="ambiguous"):
        from_dict(CheckParams, {"shell_outer_mm": 5})
    p = from_dict(CheckParams, {"lesion.calcified_hu": 150, "voids": {"void_ratio": 0.3}, "trust_headers": True})
    assert (p.lesion.calcified_hu, p.voids.void_ratio, p.registration.trust_headers) == (150, 0.3, True)
    assert from_dict(CheckParams, to_flat_dict(p)) == p
