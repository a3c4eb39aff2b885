"""DTI fit: gradients rotated into RAS, fiber direction recovered on oblique grids, scalar maps,
robust fitting, and the input errors of a diffusion series that cannot give a tensor."""

from __future__ import annotations

import numpy as np
import pytest

from DTITractographyLib.analysis import prepare_masks
from DTITractographyLib.params import TensorFitParams
from DTITractographyLib.synthetic import CORD_EVALS, make_synthetic_cord
from DTITractographyLib.tensor_fit import fit_tensors
from SpinePlannerLib.core.dwi_io import DiffusionData, ras_to_fsl_bvecs, read_dwi
from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.geometry import resample_mask_like
from SpinePlannerLib.core.imageio import write_volume
from SpinePlannerLib.core.volume import Volume


def _write_fsl(case, folder, *, bvals=None, bvecs=None):
    """Write a synthetic DWI as NIfTI + FSL bval/bvec (voxel-axis convention) and return paths."""
    dwi = case.dwi
    write_volume(dwi.volume, folder / "dwi.nii.gz")
    fsl = ras_to_fsl_bvecs(dwi.bvecs_ras, dwi.volume.affine) if bvecs is None else bvecs
    np.savetxt(folder / "dwi.bval", (dwi.bvals if bvals is None else bvals)[None, :], fmt="%g")
    np.savetxt(folder / "dwi.bvec", np.asarray(fsl).T, fmt="%.8f")
    return folder / "dwi.nii.gz", folder / "dwi.bval", folder / "dwi.bvec"


def _angles_deg(directions, axis) -> np.ndarray:
    cos = np.abs(directions @ (axis / np.linalg.norm(axis)))
    return np.degrees(np.arccos(np.clip(cos, 0.0, 1.0)))


@pytest.mark.parametrize("negative_determinant", [True, False])
def test_oblique_dwi_read_from_fsl_files_recovers_the_fiber_direction_in_ras_within_5_degrees(
        tmp_path, negative_determinant):
    case = make_synthetic_cord("straight", axis_ras=(0.3, -0.45, 1.0), dwi_negative_determinant=negative_determinant)
    det = np.linalg.det(case.dwi.volume.affine[:3, :3])
    assert (det < 0) == negative_determinant
    dwi = read_dwi(*_write_fsl(case, tmp_path))
    cord = resample_mask_like(case.cord, dwi.volume).array > 0
    tensors = fit_tensors(dwi, cord)
    ang = _angles_deg(tensors.principal_direction_ras()[cord], case.axis_ras)
    assert np.median(ang) < 5.0, f"median angle {np.median(ang):.2f} deg"
    assert np.percentile(ang, 90) < 5.0, f"90th percentile {np.percentile(ang, 90):.2f} deg"


def test_swapping_the_bvec_x_sign_breaks_the_direction(tmp_path):
    """The FSL flip matters: the same data with the x component negated points elsewhere."""
    case = make_synthetic_cord("straight", axis_ras=(0.3, -0.45, 1.0))
    fsl = ras_to_fsl_bvecs(case.dwi.bvecs_ras, case.dwi.volume.affine) * np.array([-1.0, 1.0, 1.0])
    dwi = read_dwi(*_write_fsl(case, tmp_path, bvecs=fsl))
    cord = resample_mask_like(case.cord, dwi.volume).array > 0
    ang = _angles_deg(fit_tensors(dwi, cord).principal_direction_ras()[cord], case.axis_ras)
    assert np.median(ang) > 10.0


def test_scalar_maps_match_the_synthetic_tensor():
    case = make_synthetic_cord("straight", snr=40.0)
    cord = resample_mask_like(case.cord, case.dwi.volume).array > 0
    t = fit_tensors(case.dwi, cord)
    l1, l2, l3 = CORD_EVALS
    md = (l1 + l2 + l3) / 3
    fa_true = np.sqrt(1.5 * ((l1 - md) ** 2 + (l2 - md) ** 2 + (l3 - md) ** 2) / (l1**2 + l2**2 + l3**2))
    assert np.median(t.fa[cord]) == pytest.approx(fa_true, abs=0.04)
    assert np.median(t.md[cord]) == pytest.approx(md, rel=0.05)
    assert np.median(t.ad[cord]) == pytest.approx(l1, rel=0.07)
    assert np.median(t.rd[cord]) == pytest.approx(l2, rel=0.15)
    assert t.noise_sigma == pytest.approx(1000.0 / 40.0, rel=0.2)  # signal scaled x1000, SNR 40
    assert np.all(t.fa[~cord & ~t.mask] == 0)


def test_tensor_in_ras_has_the_principal_axis_along_the_tube():
    case = make_synthetic_cord("straight")
    cord = resample_mask_like(case.cord, case.dwi.volume).array > 0
    t = fit_tensors(case.dwi, cord)
    d = t.tensor_ras()[cord]
    w, v = np.linalg.eigh(d)
    ang = _angles_deg(v[:, :, -1], case.axis_ras)
    assert np.median(ang) < 3.0
    assert np.allclose(w[:, -1], t.evals[cord][:, 0], rtol=1e-6)


def test_robust_fit_limits_the_damage_of_a_corrupted_volume():
    case = make_synthetic_cord("straight", snr=40.0)
    cord = resample_mask_like(case.cord, case.dwi.volume).array > 0
    arr = case.dwi.volume.array.copy()
    # the volume whose gradient is closest to the fibers: a dropout there mimics fast diffusion
    dw = np.flatnonzero(case.dwi.bvals > 0)
    worst = dw[np.argmax(np.abs(case.dwi.bvecs_ras[dw] @ case.axis_ras))]
    arr[..., worst] *= 4.0
    bad = DiffusionData(case.dwi.volume.with_array(arr), case.dwi.bvals, case.dwi.bvecs_ras)
    clean_fa = np.median(fit_tensors(case.dwi, cord).fa[cord])
    wls = np.median(fit_tensors(bad, cord).fa[cord])
    rt = np.median(fit_tensors(bad, cord, params=TensorFitParams(method="RT")).fa[cord])
    assert abs(wls - clean_fa) > 0.03
    assert abs(rt - clean_fa) < 0.5 * abs(wls - clean_fa)


def test_fewer_than_six_directions_is_an_input_error():
    case = make_synthetic_cord("straight", n_directions=5)
    cord = resample_mask_like(case.cord, case.dwi.volume).array > 0
    with pytest.raises(InputError, match="at least 6"):
        fit_tensors(case.dwi, cord)


def test_cord_mask_outside_the_dwi_is_an_input_error():
    case = make_synthetic_cord("straight")
    far = case.cord.affine.copy()
    far[:3, 3] += (300.0, 0.0, 0.0)
    with pytest.raises(InputError, match="does not overlap"):
        prepare_masks(case.dwi, Volume(case.cord.array, far, "cord"))
    with pytest.raises(InputError, match="empty"):
        prepare_masks(case.dwi, case.cord.with_array(np.zeros_like(case.cord.array)))


@pytest.mark.parametrize(("bvals_factor", "message"), [(0.001, "wrong unit"), (0.0, "all b-values are 0")])
def test_bvalues_in_the_wrong_unit_or_all_zero_are_input_errors(tmp_path, bvals_factor, message):
    case = make_synthetic_cord("straight")
    with pytest.raises(InputError, match=message):
        read_dwi(*_write_fsl(case, tmp_path, bvals=case.dwi.bvals * bvals_factor))


def test_bval_count_mismatch_and_all_zero_b0_are_input_errors(tmp_path):
    case = make_synthetic_cord("straight")
    with pytest.raises(InputError, match="volumes"):
        read_dwi(*_write_fsl(case, tmp_path, bvals=case.dwi.bvals[:-1]))
    arr = case.dwi.volume.array.copy()
    arr[..., case.dwi.bvals == 0] = 0
    case.dwi = DiffusionData(case.dwi.volume.with_array(arr), case.dwi.bvals, case.dwi.bvecs_ras)
    with pytest.raises(InputError, match="all zero"):
        read_dwi(*_write_fsl(case, tmp_path))


def test_batched_wls_equals_dipy_wls():
    """Our normal-equation WLS must give DIPY's ``wls_fit_tensor`` result (same model, faster solve)."""
    from dipy.reconst.dti import TensorModel

    from DTITractographyLib.tensor_fit import gradient_table_voxel, wls_fit

    case = make_synthetic_cord("crossing", snr=20.0)
    cord = resample_mask_like(case.cord, case.dwi.volume).array > 0
    gtab = gradient_table_voxel(case.dwi)
    vox = case.dwi.volume.array[cord].astype(np.float64)
    ref = TensorModel(gtab, fit_method="WLS").fit(vox)
    evals, evecs, predicted = wls_fit(gtab, vox)
    assert np.allclose(evals, ref.evals, rtol=1e-7, atol=1e-12)
    dots = np.abs(np.einsum("ni,ni->n", evecs[:, :, 0], ref.evecs[:, :, 0]))
    assert dots.min() > 1 - 1e-9
    # the predicted signals are the model's: residuals are noise-sized (SNR 20, signal x1000)
    rms = np.sqrt(np.mean((vox - predicted) ** 2))
    assert 0.5 * 1000 / 20 < rms < 1.5 * 1000 / 20
