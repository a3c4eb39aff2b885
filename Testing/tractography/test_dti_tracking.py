"""Tracking: streamlines in RAS follow the true tube on an oblique negative-determinant DWI,
stop on DTI FA and the canal mask, honour step/length/seed settings, and are reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from DTITractographyLib.analysis import prepare_masks
from DTITractographyLib.params import TrackingParams
from DTITractographyLib.relationship import SignedDistance
from DTITractographyLib.synthetic import make_synthetic_cord
from DTITractographyLib.tensor_fit import fit_tensors
from DTITractographyLib.tracking import track


def _setup(kind: str, **kw):
    case = make_synthetic_cord(kind, **kw)
    masks = prepare_masks(case.dwi, case.cord, case.tumor, canal_margin_mm=1.5)
    tensors = fit_tensors(case.dwi, masks.canal.array > 0)
    return case, masks, tensors


@pytest.fixture(scope="module")
def straight():
    return _setup("straight")


def _radial_and_along(points, case):
    rel = np.asarray(points, float) - case.centre_ras
    along = rel @ case.axis_ras
    radial = np.linalg.norm(rel - along[:, None] * case.axis_ras, axis=1)
    return radial, along


def _length(s) -> float:
    return float(np.sum(np.linalg.norm(np.diff(s, axis=0), axis=1)))


def test_deterministic_streamlines_run_along_the_tube_in_ras(straight):
    case, masks, tensors = straight
    assert np.linalg.det(tensors.affine[:3, :3]) < 0  # radiological, oblique
    sl = track(tensors, masks.seed.array > 0, masks.canal.array > 0, params=TrackingParams())
    assert len(sl) >= 0.8 * int(masks.seed.array.sum())
    pts = np.concatenate(sl)
    radial, along = _radial_and_along(pts, case)
    # inside the cord (5 mm) + canal margin (1.5 mm) + half a DWI voxel diagonal
    assert radial.max() < 5.0 + 1.5 + 1.3
    assert np.percentile(radial, 95) < 5.0
    ends = np.array([s[-1] - s[0] for s in sl])
    ang = np.degrees(np.arccos(np.clip(np.abs(ends @ case.axis_ras) / np.linalg.norm(ends, axis=1), 0, 1)))
    assert np.median(ang) < 3.0
    # the tube is 60 mm long: most streamlines span most of it
    assert np.median([_length(s) for s in sl]) > 45.0


def test_step_size_and_length_limits_are_respected(straight):
    case, masks, tensors = straight
    params = TrackingParams(step_size_mm=1.0, min_length_mm=20.0, max_length_mm=30.0)
    sl = track(tensors, masks.seed.array > 0, masks.canal.array > 0, params=params)
    assert sl
    steps = np.concatenate([np.linalg.norm(np.diff(s, axis=0), axis=1) for s in sl])
    assert np.allclose(steps, 1.0, atol=1e-3)
    lengths = np.array([_length(s) for s in sl])
    assert lengths.min() >= 20.0 - 1e-3
    assert lengths.max() <= 30.0 + 1.0 + 1e-3


def test_probabilistic_streamlines_follow_the_tube_and_are_reproducible(straight):
    case, masks, tensors = straight
    params = TrackingParams(algorithm="probabilistic", random_seed=7)
    a = track(tensors, masks.seed.array > 0, masks.canal.array > 0, params=params)
    b = track(tensors, masks.seed.array > 0, masks.canal.array > 0, params=params)
    assert len(a) > 0.5 * int(masks.seed.array.sum())
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    ends = np.array([s[-1] - s[0] for s in a])
    ang = np.degrees(np.arccos(np.clip(np.abs(ends @ case.axis_ras) / np.linalg.norm(ends, axis=1), 0, 1)))
    assert np.median(ang) < 12.0
    radial, _ = _radial_and_along(np.concatenate(a), case)
    assert radial.max() < 5.0 + 1.5 + 1.3


def test_tracking_stops_on_dti_fa_so_no_streamline_crosses_an_isotropic_tumor():
    case, masks, tensors = _setup("infiltrative")
    sd = SignedDistance.from_mask(case.tumor)
    for algorithm in ("deterministic", "probabilistic"):
        sl = track(tensors, masks.seed.array > 0, masks.canal.array > 0, params=TrackingParams(algorithm=algorithm))
        depth = np.array([sd(s).min() for s in sl])
        # partial volume reaches at most about one DWI voxel (1.25-2 mm) into the tumor
        assert depth.min() > -2.0, f"{algorithm}: a streamline went {-depth.min():.1f} mm into the tumor"


def test_seeds_at_explicit_ras_points_start_streamlines_there(straight):
    case, masks, tensors = straight
    seed = case.centre_ras + 2.0 * np.cross(case.axis_ras, [1.0, 0.0, 0.0]) / np.linalg.norm(
        np.cross(case.axis_ras, [1.0, 0.0, 0.0]))
    sl = track(tensors, None, masks.canal.array > 0, seeds_ras=seed[None, :])
    assert len(sl) == 1
    dist = np.linalg.norm(sl[0] - seed, axis=1).min()
    assert dist < 0.3  # the seed lies on the streamline (both directions tracked)
    radial, _ = _radial_and_along(sl[0], case)
    assert np.all(np.abs(radial - 2.0) < 0.6)


def test_tracking_parameters_are_validated():
    with pytest.raises(ValueError, match="algorithm"):
        TrackingParams(algorithm="gfa")
    with pytest.raises(ValueError, match="fa_stop"):
        TrackingParams(fa_stop=0.0)
    with pytest.raises(ValueError, match="max_length_mm"):
        TrackingParams(min_length_mm=50, max_length_mm=40)
