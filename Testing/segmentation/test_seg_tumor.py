"""Tumor from a seed (classical engine): seeds in background, grow-from-seeds refinement,
oblique grids. Synthetic volumes keep these tests fast; the phantom accuracy is in
test_seg_phantoms_*.py."""

from __future__ import annotations

import numpy as np
import pytest
from testimages import oblique_affine

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.segmentation.common import dice
from SpinePlannerLib.segmentation.params import TumorParams
from SpinePlannerLib.segmentation.tumor import grow_tumor

SHAPE = (60, 48, 40)
AFFINE = oblique_affine(spacing=(0.8, 1.0, 1.4), order="PSR", angles_deg=(8.0, -5.0, 12.0))


def _distance(vol: Volume, centre) -> np.ndarray:
    ijk = np.indices(vol.shape3).reshape(3, -1).T
    return np.linalg.norm(vol.ijk_to_ras(ijk) - np.asarray(centre), axis=1).reshape(vol.shape3)


@pytest.fixture(scope="module")
def scene():
    """Air (0) around a body (0.3) holding two touching bright balls A, B (0.8) and a separate
    ball C (0.6); Gaussian noise 0.02. Returns the volume and the ball masks."""
    rng = np.random.default_rng(3)
    vol = Volume(np.zeros(SHAPE, np.float32), AFFINE, "t2")
    centre = vol.ijk_to_ras((np.asarray(SHAPE) - 1) / 2.0)
    a_c, b_c, c_c = centre + [-5.0, 0, 0], centre + [4.5, 0, 0], centre + [0, 0, 15.0]
    body = _distance(vol, centre) <= 30.0
    balls = {name: _distance(vol, c) <= 5.0 for name, c in (("a", a_c), ("b", b_c), ("c", c_c))}
    arr = 0.3 * body
    arr[balls["a"] | balls["b"]] = 0.8
    arr[balls["c"]] = 0.6
    vol.array = (arr + rng.normal(0, 0.02, SHAPE) * body).astype(np.float32)
    return vol, balls, {"a": a_c, "b": b_c, "c": c_c, "air": vol.ijk_to_ras([1, 1, 1])}


def test_seed_grows_the_connected_bright_region(scene):
    vol, balls, pts = scene
    res = grow_tumor(vol, pts["a"])
    assert dice(res.mask.array, balls["a"] | balls["b"]) >= 0.9
    assert not np.any(res.mask.array[balls["c"]])


def test_background_seed_splits_touching_region(scene):
    vol, balls, pts = scene
    res = grow_tumor(vol, pts["a"], background_seeds_ras=[pts["b"]])
    assert dice(res.mask.array, balls["a"]) >= 0.85
    assert np.count_nonzero(res.mask.array[balls["b"]]) < 0.15 * balls["b"].sum()


def test_foreground_seed_adds_a_separate_region(scene):
    vol, balls, pts = scene
    res = grow_tumor(vol, pts["a"], foreground_seeds_ras=[pts["c"]], background_seeds_ras=[pts["b"]])
    assert dice(res.mask.array, balls["a"] | balls["c"]) >= 0.85


def test_seed_in_air_is_an_input_error(scene):
    vol, _, pts = scene
    with pytest.raises(InputError) as err:
        grow_tumor(vol, pts["air"])
    assert err.value.name == "tumor seed"
    assert "background" in err.value.problem


def test_seed_outside_the_image_is_an_input_error(scene):
    vol, _, pts = scene
    with pytest.raises(InputError, match="outside the image"):
        grow_tumor(vol, pts["a"] + [0.0, 0.0, 500.0])


def test_ct_seed_in_air_is_an_input_error(scene):
    vol, _, pts = scene
    ct = vol.with_array((vol.array * 2000.0 - 1000.0).astype(np.float32))
    with pytest.raises(InputError, match="air"):
        grow_tumor(ct, pts["air"], ct=True)


def test_allowed_region_confines_the_tumor(scene):
    vol, balls, pts = scene
    allowed = vol.with_array((_distance(vol, pts["a"]) <= 6.0).astype(np.uint8))
    res = grow_tumor(vol, pts["a"], allowed=allowed)
    assert not np.any(res.mask.array[~(allowed.array > 0)])
    assert dice(res.mask.array, balls["a"]) >= 0.85


def test_leak_to_search_limit_is_reported(scene):
    vol, _, pts = scene
    # a seed in the body itself grows through the whole body: the search limit is reached
    body_point = pts["a"] + [0.0, 0.0, -15.0]
    res = grow_tumor(vol, body_point, params=TumorParams(max_radius_mm=12.0))
    assert res.stats["reached_search_limit"] is True
    assert any("search limit" in w for w in res.warnings)


def test_params_reject_nonsense():
    with pytest.raises(ValueError, match="max_radius_mm"):
        TumorParams(max_radius_mm=-1.0)
