"""Reliability gate: the real sparse cord DWI (6 directions, 17.5 mm slices) and synthetic
acquisitions with too few directions, thick slices or low SNR give ``reliable: false`` with
reasons and no Setzer type; a good acquisition passes."""

from __future__ import annotations

import numpy as np
import pytest

from DTITractographyLib.analysis import analyze
from DTITractographyLib.params import ReliabilityParams
from DTITractographyLib.reliability import assess_reliability, estimate_snr
from DTITractographyLib.synthetic import make_synthetic_cord
from SpinePlannerLib.core.dwi_io import read_dwi
from SpinePlannerLib.core.imageio import read_volume


def test_real_sparse_cord_dwi_is_unreliable_and_gives_no_setzer_type(shared_data):
    sct = shared_data / "sct"
    dwi = read_dwi(sct / "dmri.nii.gz", sct / "bvals.txt", sct / "bvecs.txt")
    cord = read_volume(sct / "t2_seg-manual.nii.gz")
    # a pretend tumor inside the real cord: even with one, no verdict may be given
    tumor = cord.with_array(np.zeros_like(cord.array))
    idx = np.argwhere(cord.array > 0)
    centre = idx[len(idx) // 2]
    near = np.linalg.norm(idx - centre, axis=1) <= 2
    tumor.array[tuple(idx[near].T)] = 1
    s = analyze(dwi, cord, tumor).section()
    assert s["reliable"] is False
    assert s["setzer_type"] is None and s["pattern"] == "indeterminate" and s["confidence"] is None
    assert s["n_streamlines"] == 0
    reasons = " ".join(s["reasons"])
    assert "only 6 gradient directions" in reasons
    assert "17.5 mm" in reasons
    assert "insufficient for tractography" in s["resectability"]
    assert s["evidence"]["acquisition"]["n_directions"] == 6


def test_good_synthetic_acquisition_is_reliable():
    case = make_synthetic_cord("straight", snr=30.0)
    rel = assess_reliability(case.dwi)
    assert rel.reliable, rel.reasons
    assert rel.n_directions == 30


def test_too_few_directions_is_unreliable_but_still_fits():
    case = make_synthetic_cord("straight", n_directions=8)
    rel = assess_reliability(case.dwi)
    assert not rel.reliable
    assert any("only 8 gradient directions" in r for r in rel.reasons)


def test_thick_slices_are_unreliable():
    case = make_synthetic_cord("straight", dwi_spacing=(1.25, 1.25, 6.0))
    rel = assess_reliability(case.dwi, params=ReliabilityParams(max_voxel_mm=5.0))
    assert not rel.reliable
    assert any("6.0 mm" in r for r in rel.reasons)


@pytest.mark.parametrize("snr", [4.0, 30.0])
def test_snr_estimated_from_the_fit_residuals_is_close_to_the_truth(snr):
    from DTITractographyLib.analysis import prepare_masks
    from DTITractographyLib.tensor_fit import fit_tensors

    case = make_synthetic_cord("straight", snr=snr)
    masks = prepare_masks(case.dwi, case.cord)
    tensors = fit_tensors(case.dwi, masks.canal.array > 0)
    est, method = estimate_snr(case.dwi, masks.seed.array > 0, tensors)
    assert method == "tensor-fit residuals"
    assert est == pytest.approx(snr, rel=0.25)
    rel = assess_reliability(case.dwi, mask=masks.seed.array > 0, tensors=tensors)
    assert rel.reliable is (snr >= 10.0)
    if snr < 10:
        assert any("signal-to-noise" in r for r in rel.reasons)


def test_low_snr_acquisition_gives_no_setzer_type():
    case = make_synthetic_cord("infiltrative", snr=4.0)
    s = analyze(case.dwi, case.cord, case.tumor).section()
    assert s["reliable"] is False and s["setzer_type"] is None


def test_reliability_limits_are_validated():
    with pytest.raises(ValueError, match="min_directions"):
        ReliabilityParams(min_directions=5)
