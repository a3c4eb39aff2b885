"""Finding the cases of a batch (CSV, folder of case folders, DICOM studies), the inputs hash and the
local cluster's size. No Dask cluster runs here."""

from __future__ import annotations

import os
from pathlib import Path

import pydicom
import pytest
from dicom_writer import write_mr_series
from testimages import assert_same_world_image, blob_volume, oblique_affine

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.imageio import read_volume, write_volume
from SpinePlannerLib.planning.batch.cases import discover_cases, read_cases_csv
from SpinePlannerLib.planning.batch.fingerprint import inputs_hash
from SpinePlannerLib.planning.batch.runner import BatchOptions, size_local_cluster


def _image(path: Path, shape=(12, 10, 8)) -> Path:
    write_volume(blob_volume(oblique_affine(order="LAS", spacing=(1.0, 1.0, 2.0)), shape=shape, radius_mm=3.0), path)
    return path


def test_csv_paths_are_relative_to_the_csv_and_a_missing_file_is_a_case_error(tmp_path):
    _image(tmp_path / "a" / "t2.nii.gz")
    (tmp_path / "cases.csv").write_text('case,t2,tumor_seed,level_anchor\n'
                                        'a,a/t2.nii.gz,"1,2,3",T10 0 -5 40\n'
                                        'b,b/t2.nii.gz,,\n')
    a, b = read_cases_csv(tmp_path / "cases.csv")
    assert a.paths["t2"] == str((tmp_path / "a" / "t2.nii.gz").resolve()) and a.error is None
    inputs = a.to_inputs()
    assert inputs.tumor_seed_ras == (1.0, 2.0, 3.0)
    assert inputs.params["segmentation"]["anchor"] == {"level": "T10", "ras": [0.0, -5.0, 40.0]}
    assert "file not found" in b.error and "t2.nii.gz" in b.error
    with pytest.raises(InputError, match="file not found"):
        b.to_inputs()


@pytest.mark.parametrize(("text", "problem"), [
    ("case,t2,colour\na,x.nii.gz,red\n", "unknown column"),
    ("case,t2\na,x.nii.gz\na,y.nii.gz\n", "repeats"),
    ("case,t2\n../up,x.nii.gz\n", "must be letters"),
    ("case,t2\ncohort,x.nii.gz\n", "name of a batch output"),
    ("case,t2\n", "no case found"),
])
def test_a_malformed_cases_table_is_bad_input_for_the_batch(tmp_path, text, problem):
    (tmp_path / "cases.csv").write_text(text)
    with pytest.raises(InputError, match=problem):
        read_cases_csv(tmp_path / "cases.csv")


def test_case_folders_name_their_inputs_by_role(tmp_path):
    root = tmp_path / "cases"
    _image(root / "c1" / "t2.nii.gz")
    _image(root / "c1" / "tumor_seg.nrrd")
    (root / "c1" / "tumor_seed.txt").write_text("4, 5, 6\n")
    (root / "c1" / "notes.txt").write_text("ignored")
    _image(root / "c2" / "t1.nii.gz")
    (root / "c2" / "case.json").write_text('{"tumor_seed": [1, 2, 3], "params": {"vessels": {}}}')
    _image(root / "c3" / "t2.nii.gz")
    _image(root / "c3" / "t2.nrrd")
    c1, c2, c3 = discover_cases(root, work_dir=tmp_path / "work")
    assert sorted(c1.paths) == ["t2", "tumor_seg"] and c1.to_inputs().tumor_seed_ras == (4.0, 5.0, 6.0)
    assert c2.to_inputs().tumor_seed_ras == (1.0, 2.0, 3.0) and c2.to_inputs().params == {"vessels": {}}
    assert "more than one input for a role" in c3.error and "t2.nrrd" in c3.error


def _series(volume, folder: Path, prefix: str, **attrs) -> None:
    """A DICOM series with the given header attributes, its files named ``prefix*`` in ``folder``."""
    tmp = folder.parent / f".tmp-{prefix}"
    for path in write_mr_series(volume, tmp):
        ds = pydicom.dcmread(path)
        for key, value in attrs.items():
            setattr(ds, key, value)
        folder.mkdir(parents=True, exist_ok=True)
        ds.save_as(folder / f"{prefix}{path.name}", enforce_file_format=True)
        path.unlink()
    tmp.rmdir()


def test_dicom_study_series_are_sorted_into_roles_by_their_attributes(tmp_path):
    vol = blob_volume(oblique_affine(order="LAS", spacing=(1.0, 1.0, 2.0)), shape=(12, 10, 6), radius_mm=3.0)
    study = tmp_path / "cases" / "s1"  # all series mixed in one folder
    _series(vol, study, "a", SeriesDescription="T2 TSE SAG", SeriesNumber=2)
    _series(vol, study, "b", Modality="CT", SeriesDescription="Spine 1.0 Br64", SeriesNumber=3)
    _series(vol, study, "c", SeriesDescription="sag", RepetitionTime="600", EchoTime="12",
            ContrastBolusAgent="Gadovist", SeriesNumber=4)  # T1 by timing, with contrast
    _series(vol, study, "d", SeriesDescription="localizer", SeriesNumber=1)
    (case,) = discover_cases(tmp_path / "cases", work_dir=tmp_path / "work")
    step = (vol.array.max() - vol.array.min()) / 4000.0  # the writer's quantisation
    assert case.error is None, case.error
    assert sorted(case.paths) == ["ct", "t1c", "t2"]
    for role in ("ct", "t1c", "t2"):  # each role reads back exactly its own series
        assert len(os.listdir(case.paths[role])) == 6
        assert_same_world_image(vol, read_volume(case.paths[role]), tol_mm=1e-3, value_tol=step)
    assert any("localizer" in n for n in case.notes)


def test_an_ambiguous_dicom_study_is_a_case_error_listing_the_series(tmp_path):
    vol = blob_volume(oblique_affine(order="LAS", spacing=(1.0, 1.0, 2.0)), shape=(12, 10, 6), radius_mm=3.0)
    study = tmp_path / "cases" / "s2"
    _series(vol, study / "one", "a", SeriesDescription="T2 SAG", SeriesNumber=5)
    _series(vol, study / "two", "b", SeriesDescription="T2 AX", SeriesNumber=6)
    (case,) = discover_cases(tmp_path / "cases", work_dir=tmp_path / "work")
    assert "ambiguous for t2" in case.error and "'T2 SAG'" in case.error and "'T2 AX'" in case.error


def test_inputs_hash_changes_with_a_file_a_parameter_or_the_options(tmp_path):
    t2 = _image(tmp_path / "t2.nii.gz")
    (tmp_path / "cases.csv").write_text("case,t2\na,t2.nii.gz\n")
    (case,) = read_cases_csv(tmp_path / "cases.csv")
    h = inputs_hash(case, options={"write_scene": False})
    assert h == inputs_hash(case, options={"write_scene": False})
    assert h != inputs_hash(case, options={"write_scene": True})
    case.tumor_seed = "1,2,3"
    assert inputs_hash(case, options={"write_scene": False}) != h
    case.tumor_seed = None
    st = t2.stat()
    os.utime(t2, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert inputs_hash(case, options={"write_scene": False}) != h


@pytest.mark.parametrize(("workers", "threads", "cores", "n", "expect"), [
    (None, None, 8, 100, (8, 1)), (None, 2, 8, 100, (4, 2)), (2, None, 8, 100, (2, 4)),
    (None, None, 8, 3, (3, 1)), (None, None, 2, 100, (2, 1)),
])
def test_local_cluster_keeps_cases_times_threads_within_the_cores(workers, threads, cores, n, expect):
    opts = BatchOptions(out=Path("."), workers=workers, threads_per_case=threads)
    w, t, limit = size_local_cluster(n, opts, cores=cores, memory_bytes=64 * 2**30)
    assert (w, t) == expect and w * t <= cores
    assert limit == 64 * 2**30 // w


def test_memory_bounds_the_default_number_of_workers():
    opts = BatchOptions(out=Path("."), memory_limit="3GiB")
    assert size_local_cluster(100, opts, cores=16, memory_bytes=8 * 2**30) == (2, 1, 3 * 2**30)
