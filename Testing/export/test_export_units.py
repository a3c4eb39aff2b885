"""Small pieces of the export: the structure table agrees with the Slicer scene's colours and
terminology, CIELab colours agree with scikit-image, contours with holes rasterise back exactly,
tract density counts each streamline once per voxel, device names fit OpenIGTLink."""

from __future__ import annotations

import numpy as np
import pytest

from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.export.colors import rgb_to_cielab
from SpinePlannerLib.export.contours import rasterize_contours, slice_contours
from SpinePlannerLib.export.structures import base_keys, base_structure, vessel_structure
from SpinePlannerLib.export.tract_density import tract_density


def test_structure_table_matches_the_scene_colours_and_terminology():
    pytest.importorskip("slicer")
    from SpinePlannerLib.mrml.scene import STRUCTURE_COLORS
    from SpinePlannerLib.mrml.segmentation import TERMINOLOGY

    for key in base_keys():
        s = base_structure(key)
        if key in STRUCTURE_COLORS:
            assert s.color == STRUCTURE_COLORS[key], key
        if key in TERMINOLOGY:
            category, kind = TERMINOLOGY[key]
            assert category.split("^")[:2] == list(s.category[:2]) and kind.split("^")[:2] == list(s.kind[:2]), key
    assert base_structure("tumor").rt_role == "GTV" and base_structure("cord").rt_role == "ORGAN"
    assert vessel_structure(2).key == "feeder"


@pytest.mark.parametrize("rgb", [(1, 1, 1), (0.9, 0.2, 0.2), (0.55, 0.8, 1.0), (0, 0, 0)])
def test_cielab_matches_scikit_image(rgb):
    from skimage.color import rgb2lab

    assert np.allclose(rgb_to_cielab(rgb), rgb2lab(np.asarray([[rgb]], float))[0, 0], atol=0.5)


def test_contours_with_a_hole_rasterise_back_exactly():
    ii, jj = np.mgrid[:40, :30]
    r = np.hypot(ii - 20, jj - 14)
    ring = (r <= 10) & (r >= 4)
    ring[2:5, 2:5] = True  # a separate island
    polys = slice_contours(ring)
    assert len(polys) == 3
    assert np.array_equal(rasterize_contours(polys, ring.shape), ring)


def test_tract_density_counts_each_streamline_once_per_voxel():
    vol = Volume(np.zeros((10, 10, 10)), np.diag([2.0, 2.0, 2.0, 1.0]))
    line = np.column_stack([np.linspace(0, 18, 200), np.full(200, 4.0), np.full(200, 4.0)])  # along i at j = k = 2
    density = tract_density([line, line, line[:50]], vol)
    assert density[:, 2, 2].tolist() == [3, 3, 3] + [2] * 7
    assert density.sum() == 3 * 3 + 2 * 7


def test_igtl_device_names_fit_twenty_characters():
    from SpinePlannerLib.export.igtl import device_name
    from SpinePlannerLib.export.structures import VESSEL_ROLES, tract_structure, vertebra_structure

    keys = [*base_keys(), *(v[0] for v in VESSEL_ROLES.values()), tract_structure().key, vertebra_structure("T10", 2).key]
    names = [device_name(k) for k in keys]
    assert all(len(n) <= 20 for n in names) and len(set(names)) == len(names)


def test_derived_ct_series_keeps_hounsfield_units_and_validates(phantom_dir, tmp_path):
    from helpers_export import dciodvfy_errors

    from SpinePlannerLib.core.imageio import read_volume
    from SpinePlannerLib.export.dicom_series import derived_reference, new_study_header, save_dataset

    ct = read_volume(phantom_dir("idem-calcified", 0) / "ct.nii.gz")
    ct = ct.with_array(np.round(ct.array[:, :, :6]))  # six slices, integer HU
    series = derived_reference(ct, new_study_header(seed="t", deidentified=False), role="ct", source="a test")
    paths = [save_dataset(ds, tmp_path / f"IMG{k:04d}.dcm") for k, ds in enumerate(series.datasets)]
    assert dciodvfy_errors(paths[0]) == []
    back = read_volume(tmp_path)
    assert back.array.dtype.kind in "fi" and np.array_equal(back.array, ct.array)
    assert np.abs(back.affine - ct.affine).max() < 1e-3
