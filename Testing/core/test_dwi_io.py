"""Diffusion input: FSL bval/bvec layouts, gradient rotation into RAS, NRRD DWI, validation."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from testimages import oblique_affine

from SpinePlannerLib.core.dwi_io import fsl_bvecs_to_ras, ras_to_fsl_bvecs, read_dwi
from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.imageio import write_volume
from SpinePlannerLib.core.volume import Volume

DIAG = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)


def same_axis(a, b, tol_deg=0.01) -> bool:
    cos = abs(float(np.dot(a, b))) / (np.linalg.norm(a) * np.linalg.norm(b))
    return np.degrees(np.arccos(min(cos, 1.0))) < tol_deg


def test_fsl_x_flip_for_positive_determinant_images():
    """FSL bvecs: for a neurologically stored (det > 0, RAS) image the x component is flipped."""
    ras_storage = np.diag([2.0, 2.0, 2.0, 1.0])
    las_storage = np.diag([-2.0, 2.0, 2.0, 1.0])
    world_ras = fsl_bvecs_to_ras(DIAG[None], ras_storage)[0]
    world_las = fsl_bvecs_to_ras(DIAG[None], las_storage)[0]
    assert same_axis(world_ras, [-1, 1, 0])
    # a radiologically stored image (det < 0): bvecs are along the voxel axes, i -> Left
    assert same_axis(world_las, [-1, 1, 0])


@pytest.mark.parametrize("order", ["PSR", "LAS", "RAS", "IPL"])
def test_fsl_bvec_round_trip_on_oblique_grids(order):
    aff = oblique_affine(order=order, spacing=(1.2, 1.2, 2.5))
    rng = np.random.default_rng(3)
    world = rng.normal(size=(30, 3))
    world /= np.linalg.norm(world, axis=1, keepdims=True)
    back = fsl_bvecs_to_ras(ras_to_fsl_bvecs(world, aff), aff)
    assert np.max(np.abs(back - world)) < 1e-9


def _tensor_dwi(tmp_path, affine, fiber_ras, *, layout="rows3"):
    """A 6x6x4 DWI of one tensor (FA ~0.8) whose principal axis is ``fiber_ras`` in world space."""
    rng = np.random.default_rng(0)
    g = rng.normal(size=(20, 3))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    bvals = np.r_[0, 0, np.full(20, 800.0)]
    world = np.vstack([np.zeros((2, 3)), g])
    e1 = np.asarray(fiber_ras, float) / np.linalg.norm(fiber_ras)
    D = 0.3e-3 * np.eye(3) + (1.7e-3 - 0.3e-3) * np.outer(e1, e1)
    signal = 1000.0 * np.exp(-bvals * np.einsum("ni,ij,nj->n", world, D, world))
    data = np.broadcast_to(signal, (6, 6, 4, len(bvals))).astype(np.float32).copy()
    write_volume(Volume(data, affine), tmp_path / "dwi.nii.gz")
    fsl = ras_to_fsl_bvecs(world, affine)
    np.savetxt(tmp_path / "bval", bvals[None], fmt="%g")
    np.savetxt(tmp_path / "bvec", fsl.T if layout == "rows3" else fsl, fmt="%.8f")
    return tmp_path / "dwi.nii.gz", tmp_path / "bval", tmp_path / "bvec"


@pytest.mark.parametrize("layout", ["rows3", "one_row_per_volume"])
def test_tensor_fit_recovers_world_fiber_direction_on_tilted_negative_determinant_grid(tmp_path, layout):
    """bvecs_voxel() + data indexed [i, j, k] give DIPY the fiber along the true RAS direction."""
    from dipy.core.gradients import gradient_table
    from dipy.reconst.dti import TensorModel

    aff = oblique_affine(order="LAS", spacing=(1.5, 1.5, 3.0), angles_deg=(17, -11, 25))
    assert np.linalg.det(aff[:3, :3]) < 0
    fiber = np.array([0.2, 0.3, 0.93])
    dwi = read_dwi(*_tensor_dwi(tmp_path, aff, fiber, layout=layout))
    gtab = gradient_table(dwi.bvals, bvecs=dwi.bvecs_voxel(), b0_threshold=50)
    fit = TensorModel(gtab).fit(dwi.volume.array[2, 2, 2])
    from SpinePlannerLib.core.dwi_io import rotation_of

    ev_world = rotation_of(dwi.volume.affine) @ fit.evecs[:, 0]
    angle = np.degrees(np.arccos(abs(np.dot(ev_world, fiber / np.linalg.norm(fiber)))))
    assert angle < 1.0  # degrees (noise-free signal)
    assert dwi.n_directions == 20


def test_real_sparse_cord_dwi_loads_with_six_directions(shared_data):
    d = shared_data / "sct"
    dwi = read_dwi(d / "dmri.nii.gz", d / "bvals.txt", d / "bvecs.txt")
    assert dwi.volume.array.shape == (40, 42, 5, 7)
    assert dwi.n_directions == 6
    assert np.allclose(np.linalg.norm(dwi.bvecs_ras[1:], axis=1), 1.0)
    assert np.isclose(dwi.volume.spacing[2], 17.5, atol=0.1)


def test_nrrd_dwi_gradients_are_converted_from_lps(tmp_path):
    data = np.ones((4, 4, 3, 3), np.float32) * [1000, 500, 500]
    image = sitk.GetImageFromArray(np.transpose(data, (2, 1, 0, 3)), isVector=True)
    image.SetMetaData("DWMRI_b-value", "1000")
    image.SetMetaData("DWMRI_gradient_0000", "0 0 0")
    image.SetMetaData("DWMRI_gradient_0001", "1 0 0")
    image.SetMetaData("DWMRI_gradient_0002", "0 0.70710678 0.70710678")
    image.SetMetaData("modality", "DWMRI")
    sitk.WriteImage(image, str(tmp_path / "dwi.nrrd"))
    dwi = read_dwi(tmp_path / "dwi.nrrd")
    assert np.allclose(dwi.bvals, [0, 1000, 1000])
    assert same_axis(dwi.bvecs_ras[1], [1, 0, 0])  # LPS x and RAS x are the same axis (flipped sign)
    assert same_axis(dwi.bvecs_ras[2], [0, -0.70710678, 0.70710678])


def _simple_dwi(tmp_path, bvals, n_vols=None, b0_value=1000.0):
    n = len(bvals) if n_vols is None else n_vols
    data = np.full((4, 4, 3, n), 500.0, np.float32)
    data[..., 0] = b0_value
    write_volume(Volume(data, np.eye(4)), tmp_path / "d.nii.gz")
    np.savetxt(tmp_path / "bval", np.asarray(bvals, float)[None])
    g = np.random.default_rng(0).normal(size=(len(bvals), 3))
    g[0] = 0
    np.savetxt(tmp_path / "bvec", g.T)
    return tmp_path / "d.nii.gz", tmp_path / "bval", tmp_path / "bvec"


@pytest.mark.parametrize(
    ("bvals", "n_vols", "b0_value", "option", "words"),
    [
        ([0, 800, 800, 800], 5, 1000.0, "bval", "has 4 values but the DWI has 5"),
        ([0, 0.8, 0.8, 0.8], None, 1000.0, "bval", "wrong unit"),
        ([0, 800, 800, 800], None, 0.0, "dwi", "all zero"),
        ([0, 0, 0, 0], None, 1000.0, "bval", "all b-values are 0"),
    ],
)
def test_bad_gradient_tables_are_rejected_with_the_input_named(tmp_path, bvals, n_vols, b0_value, option, words):
    with pytest.raises(InputError) as err:
        read_dwi(*_simple_dwi(tmp_path, bvals, n_vols, b0_value))
    assert err.value.name == option
    assert words in err.value.problem


def test_three_dimensional_volume_given_as_dwi_is_rejected(tmp_path, shared_data):
    with pytest.raises(InputError, match="expected a 4D diffusion series"):
        read_dwi(shared_data / "sct" / "t2.nii.gz", shared_data / "sct" / "bvals.txt", shared_data / "sct" / "bvecs.txt")
