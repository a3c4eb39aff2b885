"""Lesion diameters in millimetres on oblique, anisotropic grids (CLINICAL.md §8)."""

from __future__ import annotations

import numpy as np
import pytest
from testimages import oblique_affine

from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.measurement.lesion import lesion_widths_mm


def ellipsoid_mask(affine, shape, centre, radial_mm, half_length_mm, axis) -> Volume:
    vol = Volume(np.zeros(shape, np.uint8), affine)
    p = vol.ijk_to_ras(np.indices(shape).reshape(3, -1).T) - centre
    along = p @ axis
    radial2 = np.sum(p**2, axis=1) - along**2
    vol.array = ((radial2 / radial_mm**2 + along**2 / half_length_mm**2) <= 1).reshape(shape).astype(np.uint8)
    return vol


@pytest.mark.parametrize(("diameter", "length", "spacing"), [
    (13.8, 16.0, (0.9, 1.5, 0.9)),   # the published calcified meningioma on the phantom's T2 grid
    (8.0, 24.0, (1.0, 1.0, 1.0)),    # an intramedullary ependymoma on a 1 mm CT
    (20.0, 30.0, (0.7, 0.7, 3.0)),   # a metastasis on thick slices
])
def test_calibrated_widths_are_unbiased_on_oblique_grids(diameter, length, spacing):
    rng = np.random.default_rng(7)
    axis = np.array([0.1, 0.2, 1.0])
    axis /= np.linalg.norm(axis)
    errors, raw_errors = [], []
    for _ in range(8):
        aff = oblique_affine(order="PSR", spacing=spacing, angles_deg=tuple(rng.uniform(-20, 20, 3)))
        shape = tuple(int(np.ceil(45 / s)) for s in spacing)
        centre = Volume(np.zeros(shape), aff).ijk_to_ras((np.array(shape) - 1) / 2) + rng.uniform(-1, 1, 3)
        mask = ellipsoid_mask(aff, shape, centre, diameter / 2, length / 2, axis)
        ax, cc = lesion_widths_mm(mask, axis)
        rax, rcc = lesion_widths_mm(mask, axis, calibrate=False)
        errors.append((ax - diameter, cc - length))
        raw_errors.append((rax - diameter, rcc - length))
    errors, raw_errors = np.array(errors), np.array(raw_errors)
    # mean error (bias) within 0.35 mm; each measurement within one slice thickness
    assert np.all(np.abs(errors.mean(axis=0)) < 0.35), errors.mean(axis=0)
    assert np.all(np.abs(errors) < max(spacing)), errors
    # the calibration helps: the raw "centres + one voxel" widths are biased upwards
    assert np.abs(errors[:, 0].mean()) < np.abs(raw_errors[:, 0].mean())


def test_empty_mask_measures_zero():
    assert lesion_widths_mm(Volume(np.zeros((4, 4, 4), np.uint8), np.eye(4)), [0, 0, 1]) == (0.0, 0.0)
