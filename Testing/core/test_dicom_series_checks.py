"""DICOM series checked before use: gaps, duplicates, mixed orientations and several series are
refused with one line naming the input; the geometry comes from the slice positions."""

from __future__ import annotations

import numpy as np
import pytest
from dicom_writer import write_mr_series
from testimages import assert_same_world_image, blob_volume, oblique_affine

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.imageio import read_volume


@pytest.fixture(scope="module")
def src():
    return blob_volume(oblique_affine(order="PSR", spacing=(0.9, 1.1, 2.0)), shape=(16, 14, 20))


def test_intact_series_geometry_from_positions(tmp_path, src):
    write_mr_series(src, tmp_path / "mr")
    vol = read_volume(tmp_path / "mr", "--t2")
    assert vol.shape3 == (16, 14, 20)
    assert np.allclose(vol.spacing, (0.9, 1.1, 2.0), atol=1e-4)
    step = (src.array.max() - src.array.min()) / 4000.0
    assert_same_world_image(src, vol, tol_mm=1e-3, value_tol=step)  # mm: DICOM positions are decimal strings


def test_missing_middle_slice_is_refused_not_stretched(tmp_path, src):
    write_mr_series(src, tmp_path / "mr", skip_slices=(10,))
    with pytest.raises(InputError, match=r"--ct: .*about 1 missing slice.*step 4\.000 mm") as err:
        read_volume(tmp_path / "mr", "--ct")
    assert "\n" not in str(err.value)


def test_duplicate_positions_with_empty_series_uid_are_refused(tmp_path, src):
    write_mr_series(src, tmp_path / "mr", series_uid="", duplicate_slices=(5,))
    with pytest.raises(InputError, match=r"--sct: series \(no UID\): 2 slices share a position"):
        read_volume(tmp_path / "mr", "--sct")


def test_slices_of_another_orientation_are_refused(tmp_path, src):
    write_mr_series(src, tmp_path / "mr", rotate_slices=(3, 4))
    with pytest.raises(InputError, match=r"--angio: 2 of 20 slices .* have another orientation"):
        read_volume(tmp_path / "mr", "--angio")


def test_folder_with_two_series_lists_them_and_one_is_picked_with_uid(tmp_path, src):
    write_mr_series(src, tmp_path / "mr", series_uid="1.2.3.4", description="T2 SAG", prefix="A")
    other = src.with_array(src.array[:, :, :12].copy())
    write_mr_series(other, tmp_path / "mr", series_uid="1.2.3.5", description="T1 SAG", prefix="B")
    with pytest.raises(InputError) as err:
        read_volume(tmp_path / "mr", "--t2")
    text = str(err.value)
    assert "folder holds 2 DICOM series" in text and "--t2" in text
    assert "1.2.3.4 (T2 SAG, 20 slices, " in text and "1.2.3.5 (T1 SAG, 12 slices, " in text
    assert f"{tmp_path / 'mr'}::SERIES_UID" in text
    vol = read_volume(f"{tmp_path / 'mr'}::1.2.3.5", "--t2")
    assert vol.shape3 == (16, 14, 12) and vol.meta["series_uid"] == "1.2.3.5"
    with pytest.raises(InputError, match="series 9.9 is not in"):
        read_volume(f"{tmp_path / 'mr'}::9.9", "--t2")


def test_series_uid_after_a_file_is_refused(tmp_path, src):
    paths = write_mr_series(src, tmp_path / "mr")
    with pytest.raises(InputError, match="is not a folder"):
        read_volume(f"{paths[0]}::1.2", "--t2")


def test_folder_without_dicom_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="--ct: no DICOM image files found"):
        read_volume(tmp_path / "empty", "--ct")
