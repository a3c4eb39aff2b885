"""Lesion density, visibility, size and calcification class on one image (SyntheticCTCheckLib)."""

from __future__ import annotations

import numpy as np
import pytest

from SpinePlannerLib.core.geometry import resample_mask_like
from SyntheticCTCheckLib.calcification import classify_calcification
from SyntheticCTCheckLib.lesion_stats import measure_lesion
from SyntheticCTCheckLib.params import ClassCutoffs, LesionParams
from SyntheticCTCheckLib.synthetic_cases import Tissues, grid_affine, sample_case

# oblique, anisotropic CT grid whose voxel axes run P, S, R (not RAS-aligned)
SHAPE = (40, 36, 56)
AFFINE = grid_affine(spacing=(0.7, 1.0, 0.6), shape=SHAPE, angles_deg=(9, -6, 14), axis_order=(1, 2, 0))
MRI_AFFINE = grid_affine(spacing=(1.0, 1.0, 1.2), shape=(40, 40, 36), angles_deg=(-5, 7, 3))
ELLIPSOID_ML = 4.0 / 3.0 * np.pi * 6.9 * 6.9 * 8.0 / 1000.0  # 13.8 x 13.8 x 16 mm


def _measure(lesion_hu: float, **kw):
    img, lesion, bone = sample_case(AFFINE, SHAPE, Tissues(lesion=lesion_hu), axial_mm=13.8, cc_mm=16.0, seed=3)
    # the ROI comes from another (MRI) grid, carried through world coordinates
    _, roi_mri, _ = sample_case(MRI_AFFINE, (40, 40, 36), Tissues(), axial_mm=13.8, cc_mm=16.0, noise_hu=0)
    roi = resample_mask_like(roi_mri, img)
    return measure_lesion(img, roi, exclude_from_surroundings=bone.array > 0, **kw), lesion


def test_calcified_lesion_reports_550_hu_and_13p8_by_16_mm():
    s, _ = _measure(550.0)
    assert s.visible
    assert s.median_hu == pytest.approx(550.0, abs=15.0)  # HU
    assert s.mean_hu > 480.0  # partial-volume border voxels pull the mean down a little
    assert s.lesion_axial_diameter_mm == pytest.approx(13.8, abs=1.2)  # mm, about one voxel
    assert s.lesion_craniocaudal_mm == pytest.approx(16.0, abs=1.2)
    assert s.calcified_volume_ml == pytest.approx(ELLIPSOID_ML, rel=0.12)
    assert s.calcification_class == "dense"
    assert s.surrounding_hu == pytest.approx(5.0, abs=15.0)  # CSF/cord around the lesion, bone excluded


def test_isodense_lesion_is_not_visible_and_measures_zero():
    s, _ = _measure(12.0)
    assert not s.visible
    assert (s.lesion_axial_diameter_mm, s.lesion_craniocaudal_mm) == (0.0, 0.0)
    assert s.calcified_volume_ml == 0.0
    assert s.calcification_class == "none"
    assert s.mean_hu == pytest.approx(12.0, abs=8.0)


def test_barely_calcified_113_hu_lesion_is_faint_or_partial():
    s, _ = _measure(113.0)
    assert s.calcification_class in ("faint", "partial")
    assert s.visible  # about 100 HU above the CSF around it
    assert "cut-off" in s.class_reason


def test_diameters_follow_the_given_cord_axis():
    # with the cord axis along R, the 16 mm S extent becomes an axial diameter
    s, _ = _measure(550.0, axis=(1.0, 0.0, 0.0))
    assert s.lesion_axial_diameter_mm == pytest.approx(16.0, abs=1.2)
    assert s.lesion_craniocaudal_mm == pytest.approx(13.8, abs=1.2)


def test_visibility_contrast_setting_changes_visibility():
    assert _measure(113.0)[0].visible
    assert not _measure(113.0, params=LesionParams(visibility_contrast_hu=150.0))[0].visible


def test_class_cutoffs_are_adjustable_and_named_in_the_reason():
    assert classify_calcification(113.0, 0.0)[0] == "faint"
    cls, reason = classify_calcification(113.0, 0.0, ClassCutoffs(faint_mean_hu=120.0))
    assert cls == "none" and "120" in reason
    assert classify_calcification(60.0, 0.12)[0] == "faint"  # focal calcification in a soft tumour
    assert classify_calcification(60.0, 0.35)[0] == "partial"
    assert classify_calcification(450.0, 0.9)[0] == "dense"
    with pytest.raises(ValueError, match="increase"):
        ClassCutoffs(faint_mean_hu=300.0)


def test_roi_on_another_grid_must_be_carried_first():
    img, lesion, _ = sample_case(AFFINE, SHAPE, Tissues(), noise_hu=0)
    _, roi_mri, _ = sample_case(MRI_AFFINE, (40, 40, 36), Tissues(), noise_hu=0)
    with pytest.raises(ValueError, match="resample_mask_like"):
        measure_lesion(img, roi_mri)
