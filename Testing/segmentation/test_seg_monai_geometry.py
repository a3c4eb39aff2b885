"""The MONAI engine's grids and intensities, without torch: the network grid covers any input
(oblique, anisotropic, any axis order), class probabilities come back onto the input grid through
world coordinates, and the normalisation modes map intensities as documented."""

from __future__ import annotations

import numpy as np
import pytest

from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.segmentation.monai import engine as me


def _oblique_volume(shape=(40, 30, 36), spacing=(0.9, 1.7, 1.1)) -> Volume:
    # axes P, S, L with a 20 degree tilt about R, then 10 degrees about S: nothing diagonal
    a, b = np.deg2rad(20.0), np.deg2rad(10.0)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    axes = np.array([[0, 0, -1], [-1, 0, 0], [0, 1, 0]], float)  # columns: i -> P, j -> S, k -> L
    aff = np.eye(4)
    aff[:3, :3] = rz @ rx @ axes @ np.diag(spacing)
    aff[:3, 3] = (3.0, -12.0, 40.0)
    return Volume(np.zeros(shape, np.float32), aff)


def _sphere(vol: Volume, centre, radius_mm: float) -> np.ndarray:
    ijk = np.indices(vol.shape3).reshape(3, -1).T
    d = np.linalg.norm(vol.ijk_to_ras(ijk) - centre, axis=1)
    return (d <= radius_mm).reshape(vol.shape3)


def test_network_grid_is_ras_aligned_and_covers_every_input_voxel():
    ref = _oblique_volume()
    affine, shape = me.network_grid(ref, (1.5, 1.5, 1.5))
    assert np.allclose(affine[:3, :3], np.diag([1.5, 1.5, 1.5]))
    corners = np.array([[a, b, c] for a in (0, ref.shape3[0] - 1) for b in (0, ref.shape3[1] - 1)
                        for c in (0, ref.shape3[2] - 1)])
    ijk = Volume(np.zeros(shape), affine).ras_to_ijk(ref.ijk_to_ras(corners))
    assert ijk.min() >= -0.5 and np.all(ijk <= np.asarray(shape) - 0.5)


def test_probabilities_come_back_onto_an_oblique_input_grid():
    ref = _oblique_volume()
    affine, shape = me.network_grid(ref, (1.5, 1.5, 1.5))
    net = Volume(np.zeros(shape, np.float32), affine)
    centre = ref.ijk_to_ras(np.asarray(ref.shape3) / 2.0)
    inner, outer = _sphere(net, centre, 6.0), _sphere(net, centre, 11.0)
    prob = np.stack([~outer, outer & ~inner, inner]).astype(np.float32)  # one-hot background, shell, core
    labels = me.probabilities_to_labels(prob, affine, ref)
    assert labels.shape == ref.shape3 and labels.dtype == np.uint8
    for value, truth in ((2, _sphere(ref, centre, 6.0)), (1, _sphere(ref, centre, 11.0) & ~_sphere(ref, centre, 6.0))):
        got = labels == value
        dice = 2 * np.count_nonzero(got & truth) / (got.sum() + truth.sum())
        assert dice > 0.9, f"label {value}: Dice {dice:.3f} after a 1.5 mm grid round trip"
    # the centroid of the core lands where it was put (well under one 1.5 mm network voxel)
    got_centre = ref.ijk_to_ras(np.argwhere(labels == 2).mean(axis=0))
    assert np.linalg.norm(got_centre - centre) < 0.3


@pytest.mark.parametrize("spec, expected", [
    ({"mode": "percentile", "lower": 0.0, "upper": 100.0}, [0.0, 0.25, 1.0]),
    ({"mode": "range", "a_min": 0.0, "a_max": 2.0, "b_min": -1.0, "b_max": 1.0, "clip": True}, [-1.0, 0.0, 1.0]),
    ({"mode": "zscore"}, None),
    ({"mode": "none"}, [0.0, 1.0, 4.0]),
])
def test_intensity_normalisation_modes(spec, expected):
    x = np.array([0.0, 1.0, 4.0], np.float32)
    out = me.normalise_intensity(x, spec)
    if expected is None:
        assert abs(out.mean()) < 1e-6 and abs(out.std() - 1.0) < 1e-5
    else:
        assert np.allclose(out, expected, atol=1e-6)


def test_statistics_come_from_the_native_voxels_not_the_padding():
    native = np.array([1.0, 2.0, 3.0, 4.0, 5.0], np.float32)
    padded = np.concatenate([native, np.zeros(50, np.float32)])
    spec = {"mode": "percentile", "lower": 0.0, "upper": 100.0}
    assert np.allclose(me.normalise_intensity(padded, spec, stats_from=native)[:5], [0.0, 0.25, 0.5, 0.75, 1.0])
