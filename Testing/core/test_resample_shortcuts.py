"""The bounding-box, same-grid and index-map shortcuts of ``core.geometry`` give bitwise the
results of the full-grid definitions they replace (kept here verbatim as references), on
oblique, anisotropic and permuted (P-S-R) grids, including grids that share voxel centres
(where a trilinear weight of exactly 0.5 makes the mask threshold depend on the last bit)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from SpinePlannerLib.core.geometry import (
    field_of_view_mask,
    inside_from_coords,
    mask_fraction,
    resample,
    resample_mask_like,
    target_to_source_index_map,
)
from SpinePlannerLib.core.volume import Volume, affine_from_ras_geometry
from SpinePlannerLib.segmentation.common import labels_to_grid

# ---------------------------------------------------------------- the previous full-grid definitions

def old_inside(m, source_shape, shape) -> np.ndarray:
    ones = np.pad(np.ones(source_shape, np.float32), 1)
    return ndimage.affine_transform(ones, m[:3, :3], offset=m[:3, 3] + 1.0, output_shape=shape, order=1,
                                    mode="constant", cval=0.0) >= 0.5 - 1e-6


def old_resample(source: Volume, target_affine, target_shape, *, order=1, cval=0.0) -> np.ndarray:
    m = target_to_source_index_map(source.affine, target_affine)
    arr = source.array
    data = arr.astype(np.float32) if order > 0 else arr
    shape = tuple(int(s) for s in target_shape)
    out = ndimage.affine_transform(data, m[:3, :3], offset=m[:3, 3], output_shape=shape, order=order,
                                   mode="nearest", prefilter=order > 1)
    out[~old_inside(m, arr.shape[:3], shape)] = cval
    return out


def old_resample_mask_like(mask: Volume, reference: Volume) -> np.ndarray:
    padded = np.pad((mask.array > 0).astype(np.float32), 1)
    affine = mask.affine.copy()
    affine[:3, 3] = mask.ijk_to_ras([-1.0, -1.0, -1.0])
    frac = old_resample(Volume(padded, affine), reference.affine, reference.shape3, order=1, cval=0.0)
    return (frac >= 0.5).astype(np.uint8)


def old_labels_to_grid(labels: np.ndarray, grid: Volume, target: Volume) -> np.ndarray:
    out = np.zeros(target.shape3, dtype=labels.dtype)
    best = np.zeros(target.shape3, dtype=np.float32)
    for value in np.unique(labels[labels > 0]):
        frac = old_resample(grid.with_array((labels == value).astype(np.float32)), target.affine, target.shape3,
                            order=1)
        take = (frac >= 0.5) & (frac > best)
        out[take] = value
        best = np.maximum(best, frac)
    return out


# ---------------------------------------------------------------- grids

def _rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


PSR = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # i -> P, j -> S, k -> R


def centred(center, spacing, direction, shape) -> np.ndarray:
    """Affine of a grid of ``shape`` whose centre is at ``center`` (RAS mm)."""
    a = affine_from_ras_geometry([0, 0, 0], spacing, direction)
    a[:3, 3] = np.asarray(center, float) - a[:3, :3] @ ((np.asarray(shape) - 1) / 2.0)
    return a


def grid_pairs():
    """(source affine, source shape, target affine, target shape) covering the cases that matter."""
    rng = np.random.default_rng(7)
    pairs = []
    # oblique anisotropic source, oblique finer target over a larger field (target box needed)
    pairs.append((centred([1, 2, 3], [0.9, 0.8, 1.5], _rotation(rng), (40, 36, 30)), (40, 36, 30),
                  centred([-5, 0, 4], [0.5, 0.5, 0.5], _rotation(rng), (150, 140, 160)), (150, 140, 160)))
    # P-S-R source onto an axial RAS grid, partly outside it
    pairs.append((centred([10, 20, -5], [0.7, 1.2, 0.9], PSR, (50, 40, 44)), (50, 40, 44),
                  centred([0, 0, 0], [1.0, 1.0, 1.0], np.eye(3), (60, 70, 50)), (60, 70, 50)))
    # shared voxel centres: the same oblique direction at half the spacing (weights of exactly 0.5)
    d = _rotation(rng)
    pairs.append((affine_from_ras_geometry([1.3, -2.1, 0.4], [1.0, 1.0, 1.0], d), (30, 28, 32),
                  affine_from_ras_geometry(np.array([1.3, -2.1, 0.4]) - d @ [10.0, 8.0, 12.0], [0.5, 0.5, 0.5], d),
                  (100, 90, 110)))
    # axis-aligned 2x upsampling, target shifted by whole source voxels (exact half-voxel weights)
    pairs.append((affine_from_ras_geometry([0, 0, 0], [1.0, 1.0, 2.0], np.eye(3)), (20, 24, 16),
                  affine_from_ras_geometry([-5, -4, -6], [0.5, 0.5, 1.0], np.eye(3)), (60, 70, 50)))
    # target smaller than the source and partly outside it
    pairs.append((centred([0, 0, 0], [0.8, 0.8, 0.8], _rotation(rng), (80, 80, 80)), (80, 80, 80),
                  centred([25, 20, 10], [1.1, 0.9, 1.3], _rotation(rng), (60, 50, 40)), (60, 50, 40)))
    return pairs


def _blob(shape, rng, *, labels: int = 0) -> np.ndarray:
    """A few ellipsoids (0/1, or labels 1..labels) away from and touching the grid border."""
    idx = np.indices(shape).astype(float)
    out = np.zeros(shape, np.uint8)
    n = max(labels, 3)
    for v in range(1, n + 1):
        c = rng.uniform(0, 1, 3) * (np.asarray(shape) - 1)
        r = rng.uniform(2.5, 0.3 * min(shape), 3)
        out[sum(((idx[a] - c[a]) / r[a]) ** 2 for a in range(3)) <= 1.0] = v if labels else 1
    if not labels:
        out[0, :4, :3] = 1  # touches the border
    return out


# ---------------------------------------------------------------- tests

@pytest.mark.parametrize("case", range(len(grid_pairs())))
@pytest.mark.parametrize("order", [0, 1])
def test_bounding_box_resample_equals_full_grid_resample(case, order):
    a_src, s_src, a_tgt, s_tgt = grid_pairs()[case]
    rng = np.random.default_rng(case)
    arr = (rng.normal(size=s_src) * 300).astype(np.int16)
    src = Volume(arr, a_src)
    for cval in (0.0, -1000.0):
        new = resample(src, a_tgt, s_tgt, order=order, cval=cval)
        old = old_resample(src, a_tgt, s_tgt, order=order, cval=cval)
        assert new.dtype == old.dtype
        assert np.array_equal(new, old)


def test_cubic_resample_keeps_the_full_grid_definition():
    a_src, s_src, a_tgt, s_tgt = grid_pairs()[0]
    src = Volume(np.random.default_rng(1).normal(size=s_src).astype(np.float32), a_src)
    assert np.array_equal(resample(src, a_tgt, s_tgt, order=3, cval=-5.0),
                          old_resample(src, a_tgt, s_tgt, order=3, cval=-5.0))


def test_resample_outside_the_source_is_all_cval():
    a_src, s_src, _, _ = grid_pairs()[0]
    far = affine_from_ras_geometry([500, 500, 500], [1, 1, 1], np.eye(3))
    out = resample(Volume(np.ones(s_src, np.float32), a_src), far, (10, 10, 10), cval=-7.0)
    assert np.all(out == -7.0)


@pytest.mark.parametrize("case", range(len(grid_pairs())))
def test_inside_mask_from_the_index_map_equals_the_resampled_ones(case):
    a_src, s_src, a_tgt, s_tgt = grid_pairs()[case]
    m = target_to_source_index_map(a_src, a_tgt)
    cc = np.stack(np.indices(s_tgt).astype(float))
    cc = np.einsum("hl,l...->h...", m[:3, :3], cc) + m[:3, 3].reshape(3, 1, 1, 1)
    new = inside_from_coords(cc, s_src)
    old = old_inside(m, s_src, s_tgt)
    assert np.array_equal(new, old)
    assert 0 < new.sum() < new.size  # the cases have a border inside the target


@pytest.mark.parametrize("case", range(len(grid_pairs())))
def test_bounding_box_mask_resample_equals_full_grid(case):
    a_src, s_src, a_tgt, s_tgt = grid_pairs()[case]
    rng = np.random.default_rng(100 + case)
    mask = Volume(_blob(s_src, rng), a_src)
    ref = Volume(np.zeros(s_tgt, np.uint8), a_tgt)
    new = resample_mask_like(mask, ref).array
    old = old_resample_mask_like(mask, ref)
    assert np.array_equal(new, old)
    assert new.any()
    # both directions
    back = resample_mask_like(Volume(new, a_tgt), Volume(np.zeros(s_src, np.uint8), a_src)).array
    assert np.array_equal(back, old_resample_mask_like(Volume(new, a_tgt), Volume(np.zeros(s_src, np.uint8), a_src)))


def test_mask_fraction_is_zero_for_an_empty_mask_and_far_away():
    a_src, s_src, a_tgt, s_tgt = grid_pairs()[0]
    assert not mask_fraction(np.zeros(s_src, bool), a_src, a_tgt, s_tgt).any()
    far = affine_from_ras_geometry([900, 0, 0], [1, 1, 1], np.eye(3))
    assert not mask_fraction(np.ones(s_src, bool), a_src, far, (5, 5, 5)).any()


@pytest.mark.parametrize("shift_mm", [0.0, 5e-5])
def test_same_grid_mask_shortcut_equals_resampling(shift_mm):
    a_src, s_src, _, _ = grid_pairs()[0]
    mask = Volume(_blob(s_src, np.random.default_rng(3)) * 7, a_src)  # non-binary values are > 0
    ref_aff = a_src.copy()
    ref_aff[:3, 3] += shift_mm
    ref = Volume(np.zeros(s_src, np.uint8), ref_aff)
    out = resample_mask_like(mask, ref)
    assert out.array.dtype == np.uint8
    assert np.array_equal(out.array, old_resample_mask_like(mask, ref))
    assert np.array_equal(out.array, (mask.array > 0).astype(np.uint8))


@pytest.mark.parametrize("case", range(len(grid_pairs())))
def test_labels_to_grid_by_label_boxes_equals_per_label_full_grid(case):
    a_src, s_src, a_tgt, s_tgt = grid_pairs()[case]
    labels = _blob(s_src, np.random.default_rng(200 + case), labels=6)
    labels[:3, :3, -4:] = 9  # a label at the grid's corner (edge values extended half a voxel)
    grid = Volume(labels, a_src)
    target = Volume(np.zeros(s_tgt, np.uint8), a_tgt)
    new = labels_to_grid(labels, grid, target).array
    old = old_labels_to_grid(labels, grid, target)
    assert new.dtype == old.dtype
    assert np.array_equal(new, old)
    assert len(np.unique(new)) > 2


@pytest.mark.parametrize("case", range(len(grid_pairs())))
def test_field_of_view_mask_equals_resampled_ones(case):
    a_src, s_src, a_tgt, s_tgt = grid_pairs()[case]
    ones = Volume(np.ones(s_src, np.uint8), a_src)
    assert np.array_equal(field_of_view_mask(s_src, a_src, a_tgt, s_tgt),
                          old_resample(ones, a_tgt, s_tgt, order=0, cval=0) > 0)


def test_robust_range_of_a_view_samples_what_the_raveled_copy_samples():
    from SpinePlannerLib.segmentation.common import robust_range

    arr = np.random.default_rng(5).normal(size=(90, 80, 70)).astype(np.float32)
    view = np.transpose(arr, (2, 0, 1))[::-1]
    flat = view.ravel()[:: view.size // 400_000]
    assert robust_range(view) == tuple(float(v) for v in np.percentile(flat, [1.0, 99.0]))
    assert robust_range(arr) == tuple(float(v) for v in np.percentile(arr.ravel()[:: arr.size // 400_000], [1.0, 99.0]))


def test_extra_shrink_samples_a_fine_image_at_the_coarser_voxel_size():
    from SpinePlannerLib.core.registration import extra_shrink

    def vol(sp):
        return Volume(np.zeros((4, 4, 4), np.float32), affine_from_ras_geometry([0, 0, 0], sp, np.eye(3)))

    assert extra_shrink(vol([0.5, 0.5, 0.5]), vol([1.0, 1.0, 1.0])) == 2
    assert extra_shrink(vol([0.8, 0.8, 0.8]), vol([1.0, 1.0, 1.0])) == 1  # the phantoms: unchanged
    assert extra_shrink(vol([1.0, 1.0, 1.0]), vol([0.5, 0.5, 0.5])) == 1
    assert extra_shrink(vol([0.3, 0.3, 0.9]), vol([1.0, 1.0, 2.0])) == 1  # coarsest metric voxel counts
