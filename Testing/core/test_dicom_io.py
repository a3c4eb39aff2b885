"""DICOM series import: real CT (HU, geometry from the headers) and an oblique MR series."""

from __future__ import annotations

import numpy as np
import pydicom
from dicom_writer import write_mr_series
from testimages import assert_same_world_image, blob_volume, oblique_affine

from SpinePlannerLib.core.imageio import read_volume


def test_real_ct_series_is_in_hounsfield_units_with_header_geometry(shared_data):
    folder = shared_data / "totalsegmentator" / "example_ct_dicom"
    vol = read_volume(folder, "--ct")
    assert vol.shape3 == (512, 512, 20)
    # HU: air about -1000 (rescale intercept -1024 applied), soft tissue present
    assert vol.array.min() <= -1000 and np.percentile(vol.array, 99) > 100
    # every file's ImagePositionPatient (LPS) is the RAS position of its first voxel, flipped
    for path in sorted(folder.iterdir())[:5]:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        lps = np.array([float(v) for v in ds.ImagePositionPatient])
        ras = np.array([-lps[0], -lps[1], lps[2]])
        k = vol.ras_to_ijk(ras)
        assert np.allclose(k[:2], 0, atol=1e-3) and abs(k[2] - round(k[2])) < 1e-3


def test_oblique_mr_series_round_trip(tmp_path):
    src = blob_volume(oblique_affine(order="PSR", spacing=(0.9, 1.1, 3.0)), shape=(32, 28, 9))
    write_mr_series(src, tmp_path / "mr")
    back = read_volume(tmp_path / "mr", "--t2")
    assert back.shape3 == src.shape3
    step = (src.array.max() - src.array.min()) / 4000.0
    # 1e-3 mm: positions are decimal strings in DICOM; values differ by quantisation only
    assert_same_world_image(src, back, tol_mm=1e-3, value_tol=step)
