"""Spinal cord and thecal sac on the real cervical T2 (SCT example data) and on CT, in any voxel
order, and honest "not found" answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from SpinePlannerLib.core.geometry import resample, resample_mask_like
from SpinePlannerLib.core.imageio import read_volume
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.segmentation.common import dice, ras_aligned_view
from SpinePlannerLib.segmentation.cord import segment_cord


@pytest.fixture(scope="module")
def sct(shared_data):
    t2 = read_volume(shared_data / "sct" / "t2.nii.gz")
    manual = read_volume(shared_data / "sct" / "t2_seg-manual.nii.gz")
    return t2, manual, segment_cord(t2, contrast="t2")


def test_cord_on_real_cervical_t2_matches_manual_segmentation(sct):
    t2, manual, res = sct
    assert res.found, res.reason
    assert dice(res.cord.array, manual.array) >= 0.85
    # the thecal sac holds the cord and is larger than it (CSF around it)
    assert np.all(res.csf.array[res.cord.array > 0] > 0)
    assert res.csf.array.sum() > 1.3 * res.cord.array.sum()
    assert res.metrics["contrast_ratio"] > 0.3


def test_centerline_runs_inside_the_manual_cord(sct):
    t2, manual, res = sct
    ijk = np.round(manual.ras_to_ijk(res.centerline_ras)).astype(int)
    inside = manual.array[tuple(ijk.T)] > 0
    assert inside.mean() >= 0.95
    # follows the cord over the field of view (55 mm cranio-caudally)
    assert np.ptp(res.centerline_ras[:, 2]) >= 45.0


def test_cord_is_the_same_in_world_space_whatever_the_voxel_order(sct):
    t2, manual, res = sct
    ras = ras_aligned_view(t2)  # same voxels stored R-A-S instead of P-S-R
    assert not np.allclose(ras.affine, t2.affine)
    res2 = segment_cord(ras, contrast="t2")
    back = resample_mask_like(res2.cord, t2)
    assert dice(back.array, res.cord.array) >= 0.99


def test_cord_on_oblique_anisotropic_resampling_of_the_t2(sct):
    t2, manual, _ = sct
    rot = Rotation.from_euler("xyz", [12.0, -8.0, 10.0], degrees=True).as_matrix()
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([0.8, 0.8, 1.6])
    centre = t2.ijk_to_ras((np.asarray(t2.shape3) - 1) / 2.0)
    shape = (64, 60, 30)
    aff[:3, 3] = centre - aff[:3, :3] @ ((np.asarray(shape) - 1) / 2.0)
    oblique = Volume(resample(t2, aff, shape, order=1), aff, "t2")
    res = segment_cord(oblique, contrast="t2")
    assert res.found, res.reason
    truth = resample_mask_like(manual, oblique)
    # the oblique grid cuts the cord's ends: compare where the truth exists
    assert dice(res.cord.array, truth.array) >= 0.8


def test_field_of_view_without_the_cord_says_not_found(sct):
    t2, _, _ = sct
    # voxel i runs anterior -> posterior; i >= 40 holds only the posterior neck muscles
    crop = Volume(t2.array[40:].copy(), t2.affine @ np.array([[1, 0, 0, 40], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]))
    res = segment_cord(crop, contrast="t2")
    assert not res.found
    assert res.cord is None and res.csf is None
    assert res.reason


def test_image_without_bright_csf_says_not_found(sct):
    t2, _, res = sct
    # clip the CSF to the cord's level: no ring separates the cord any more
    flat = t2.with_array(np.minimum(t2.array.astype(np.float32), res.metrics["cord_median"] * 1.05))
    res2 = segment_cord(flat, contrast="t2")
    assert not res2.found
    assert res2.reason


def test_pure_noise_says_not_found():
    rng = np.random.default_rng(0)
    vol = Volume(rng.normal(100.0, 20.0, (40, 40, 40)).astype(np.float32), np.diag([0.9, 0.9, 0.9, 1.0]))
    res = segment_cord(vol, contrast="t2")
    assert not res.found


def test_ct_canal_follows_the_spinal_canal(shared_data):
    ct = read_volume(shared_data / "totalsegmentator" / "example_ct_sm.nii.gz")
    seg = read_volume(shared_data / "totalsegmentator" / "example_seg.nii.gz")
    res = segment_cord(ct, contrast="ct")
    assert res.found, res.reason
    assert res.approximate  # CT does not separate cord from CSF: said so
    assert res.metrics["tracked_length_mm"] >= 80.0  # 30 slices x 3 mm
    # TotalSegmentator's 'spinal cord' label (79) at 3 mm covers the dural sac
    assert dice(res.csf.array, seg.array == 79) >= 0.7
    assert np.all(res.canal.array[res.cord.array > 0] > 0)
