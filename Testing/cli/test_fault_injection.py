"""Fault injection: every bad input is exit 2 with exactly one stderr line naming it, found
before any computation; inputs are never changed; the output folder is either untouched or
completely new (never a mix, never stale files); nothing is left in the temp folder.

Kill tests (SIGKILL/SIGTERM of a real ``spineplan plan`` process) are in
``test_fault_injection_kill.py``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import time

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from dicom_writer import write_mr_series
from faultcases import (
    leftovers,
    tree_digest,
    write_nifti,
    write_nifti_with_odd_extension,
    write_rgb_nifti,
    write_tiny_case,
)

from SpinePlannerLib.cli.main import main
from SpinePlannerLib.core.imageio import write_volume
from SpinePlannerLib.core.volume import Volume

BASE = ["--t2", "{d}/t2.nii.gz", "--no-report"]


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """The tiny case, damaged variants of it, and one previous plan (``prev``) to overwrite."""
    d = tmp_path_factory.mktemp("fault")
    facts = write_tiny_case(d)
    t2, aff = facts["t2"], facts["affine"]
    write_volume(t2.with_array(np.clip(t2.array, -128, 127).astype(np.int8)), d / "int8.nii.gz")
    write_rgb_nifti(d / "rgb.nii.gz", aff)
    rgb = sitk.GetImageFromArray(np.zeros((14, 20, 24, 3), np.uint8), isVector=True)
    sitk.WriteImage(rgb, str(d / "rgb.nrrd"))
    write_nifti(d / "complex.nii.gz", (t2.array + 1j).astype(np.complex64), aff)
    write_nifti(d / "noorient.nii.gz", t2.array, aff, codes=(0, 0))
    write_nifti(d / "zerovox.nii", t2.array, np.diag([1.0, 1, 1, 1]), codes=(0, 0), pixdim=(0, 0, 0))
    write_nifti(d / "nanvox.nii", t2.array, np.diag([1.0, 1, 1, 1]), codes=(0, 0), pixdim=(np.nan, 1, 1))
    write_nifti_with_odd_extension(d / "oddext.nii", t2)
    huge = nib.Nifti1Header()
    huge.set_data_shape((4000, 4000, 4000))
    huge.set_data_dtype(np.float32)
    (d / "huge.nii").write_bytes(huge.binaryblock + b"\0" * 4 + b"\0" * 1024)  # claims 256 GB, holds 1 kB
    far = np.array(aff)
    far[:3, 3] += [500.0, 0, 0]
    write_volume(Volume(np.full(t2.shape3[:2] + (6, 4), 300.0, np.float32), far), d / "dwi_far.nii.gz")
    write_mr_series(t2, d / "series_ok")
    write_mr_series(t2, d / "series_gap", skip_slices=(7,))
    write_mr_series(t2, d / "series_two", series_uid="1.2.826.0.1.1", description="T2 AX", prefix="A")
    write_mr_series(t2.with_array(t2.array[:, :, :9].copy()), d / "series_two", series_uid="1.2.826.0.1.2",
                    description="T2 AX short", prefix="B")
    (d / "notes.txt").write_text("not an image\n")
    (d / "foreign").mkdir()
    (d / "foreign" / "thesis.docx").write_text("a surgeon's file\n")
    assert main(["--quiet", "plan", "--t2", str(d / "t2.nii.gz"), "--tumor-seg", str(d / "tumor.nii.gz"),
                 "--out", str(d / "prev"), "--no-scene", "--no-report"]) == 0
    return d


def _params(d, name, text):
    path = d / f"params_{name}.json"
    path.write_text(text)
    return str(path)


def run(capfd, args):
    t0 = time.perf_counter()
    code = main(["--quiet", *args])
    err = capfd.readouterr().err
    return code, [ln for ln in err.splitlines() if ln.strip()], time.perf_counter() - t0


def _assert_refused(capfd, case, args, name, words, out):
    inputs_before = tree_digest(case)
    out_before = tree_digest(out) if os.path.isdir(out) else None
    code, lines, seconds = run(capfd, args)
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"spineplan: error: {name}"), lines[0]
    assert words in lines[0], lines[0]
    assert seconds < 5.0, f"refused only after {seconds:.1f} s"  # checks run before any computation
    assert tree_digest(case) == inputs_before  # inputs (and the previous plan) untouched
    if out_before is not None:
        assert tree_digest(out) == out_before
    assert not leftovers(case)
    parent = os.path.dirname(os.path.abspath(out)) if out else ""
    if os.path.isdir(parent) and os.access(parent, os.R_OK):
        assert not leftovers(parent)
    assert not [p for p in os.listdir(tempfile.gettempdir()) if p.startswith(f"spineplan-run-{os.getpid()}-")]


INPUT_CASES = {
    "NaN in --params": ("params", '{"tractography": {"tracking": {"step_size_mm": NaN}}}', "--params", "not a finite"),
    "1e999 in --params": ("params", '{"vessels": {"roi_margin_mm": 1e999}}', "--params", "not a finite"),
    "deeply nested --params": ("params", "[" * 50000 + "]" * 50000, "--params", "nested deeper"),
    "huge --params": ("params", '{"vessels": {}}' + " " * (2 << 20), "--params", "bytes; at most"),
    "step 1e9 mm": ("params", '{"tractography": {"tracking": {"step_size_mm": 1e9}}}', "--params", "step_size_mm"),
    "step 1e-9 mm": ("params", '{"tractography": {"tracking": {"step_size_mm": 1e-9}}}', "--params", "step_size_mm"),
    "1e12 threads": ("params", '{"tractography": {"tracking": {"n_threads": 1e12}}}', "--params", "n_threads"),
    "1e12 mm length": ("params", '{"tractography": {"tracking": {"max_length_mm": 1e12}}}', "--params",
                       "max_length_mm"),
    "seed 1e30": ("params", '{"tractography": {"tracking": {"random_seed": 1e30}}}', "--params", "random_seed"),
    "HU 1e9": ("params", '{"synthetic_ct_check": {"calcified_hu": 1e9}}', "--params", "calcified_hu"),
    "--params /dev/zero": (["--params", "/dev/zero"], None, "--params", "not a regular file"),
    "--bval /dev/zero": (["--dwi", "{d}/dwi.nii.gz", "--bval", "/dev/zero", "--bvec", "{d}/bvec"], None, "--bval",
                         "not a regular file"),
    "NaN in --level-anchor": (["--level-anchor", "T10,nan,0,0"], None, "--level-anchor", "finite"),
    "NaN in --tumor-seed": (["--tumor-seed", "nan,0,0"], None, "--tumor-seed", "finite"),
    "RGB image": (["--t1", "{d}/rgb.nii.gz"], None, "--t1", "colour (RGB)"),
    "header claiming 6.4e10 voxels": (["--t1", "{d}/huge.nii"], None, "--t1", "voxels; at most"),
    "RGB NRRD": (["--t1", "{d}/rgb.nrrd"], None, "--t1", "3 components per voxel"),
    "complex image": (["--t1", "{d}/complex.nii.gz"], None, "--t1", "complex-valued"),
    "zero voxel sizes": (["--t1", "{d}/zerovox.nii"], None, "--t1", "voxel sizes"),
    "NaN voxel sizes": (["--t1", "{d}/nanvox.nii"], None, "--t1", "NaN"),
    "no orientation, fused": (["--t1", "{d}/noorient.nii.gz"], None, "--t1", "no orientation"),
    "label map without orientation": (["--tumor-seg", "{d}/noorient.nii.gz"], None, "--tumor-seg", "orientation"),
    "DWI 500 mm away": (["--dwi", "{d}/dwi_far.nii.gz", "--bval", "{d}/bval", "--bvec", "{d}/bvec", "--cord-seg",
                         "{d}/tumor.nii.gz"], None, "--dwi", "mm away"),
    "DICOM series with a gap": (["--ct", "{d}/series_gap"], None, "--ct", "missing slice"),
    "folder with two DICOM series": (["--ct", "{d}/series_two"], None, "--ct", "folder holds 2 DICOM series"),
    "image as a folder of text": (["--t1", "{d}/foreign"], None, "--t1", "no DICOM image files"),
}


@pytest.mark.parametrize("label", list(INPUT_CASES))
def test_bad_input_is_exit_2_one_line_nothing_changed(case, capfd, tmp_path, label):
    extra, params_text, name, words = INPUT_CASES[label]
    out = tmp_path / "out"
    shutil.copytree(case / "prev", out)
    if extra == "params":
        extra = ["--params", _params(tmp_path, "p", params_text)]
    args = ["plan", *[a.format(d=case) for a in BASE + extra], "--out", str(out)]
    _assert_refused(capfd, case, args, name, words, out)


OUT_CASES = {
    "empty text": ("", "is empty"),
    "an existing file": ("{d}/notes.txt", "is a file, not a folder"),
    "under /proc": ("/proc/spineplan-out", "under /proc"),
    "under /sys": ("/sys/spineplan-out", "under /sys"),
    "too long a name": ("{t}/" + "x" * 300, "too long"),
    "a file as parent": ("{d}/notes.txt/sub", "is a file, not a folder"),
    "the folder holding the inputs": ("{d}", "holds the input --t2"),
    "a folder holding the inputs further down": ("{d}/..", "holds the input --t2"),
    "inside a DICOM input folder": ("{d}/series_ok/plan", "lies inside the input folder --ct"),
    "a folder of someone's files": ("{d}/foreign", "not a spineplan output folder"),
}


@pytest.mark.parametrize("label", list(OUT_CASES))
def test_bad_out_is_exit_2_before_any_computation(case, capfd, tmp_path, label):
    text, words = OUT_CASES[label]
    out = text.format(d=case, t=tmp_path)
    args = ["plan", "--t2", str(case / "t2.nii.gz"), "--ct", str(case / "series_ok"), "--out", out]
    _assert_refused(capfd, case, args, "--out", words, out)


def test_out_as_current_directory_is_refused(case, capfd, tmp_path, monkeypatch):
    shutil.copytree(case / "prev", tmp_path / "cwd")
    monkeypatch.chdir(tmp_path / "cwd")
    for text in (".", "./", str(tmp_path)):
        _assert_refused(capfd, case, ["plan", "--t2", str(case / "t2.nii.gz"), "--out", text], "--out",
                        "current directory", tmp_path / "cwd")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; covered by /proc and /sys")
def test_out_in_a_read_only_folder_is_refused(case, capfd, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    _assert_refused(capfd, case, ["plan", "--t2", str(case / "t2.nii.gz"), "--out", str(ro / "o")], "--out",
                    "cannot write", ro / "o")


def _plan(capfd, args):
    code, lines, _ = run(capfd, ["plan", *args])
    return code, lines


def test_valid_unusual_images_are_planned(case, capfd, tmp_path):
    """int8 voxels, a DICOM series picked by UID, and an image without orientation (warned)."""
    code, lines = _plan(capfd, ["--t2", str(case / "int8.nii.gz"), "--no-scene", "--out", str(tmp_path / "a")])
    assert code == 0 and lines == []
    code, lines = _plan(capfd, ["--t2", str(case / "t2.nii.gz"), "--ct", f"{case / 'series_two'}::1.2.826.0.1.2",
                                 "--no-scene", "--out", str(tmp_path / "b")])
    assert code == 0, lines
    plan = json.loads((tmp_path / "b" / "plan.json").read_text())
    assert plan["inputs"]["ct"].endswith("::1.2.826.0.1.2")
    code, lines = _plan(capfd, ["--t2", str(case / "noorient.nii.gz"), "--no-scene", "--out", str(tmp_path / "c")])
    assert code == 0, lines
    plan = json.loads((tmp_path / "c" / "plan.json").read_text())
    assert any(w.startswith("orientation unknown: --t2") for w in plan["warnings"]), plan["warnings"]


def test_library_warnings_go_to_the_plan_not_the_terminal(case, capfd, tmp_path):
    code, lines = _plan(capfd, ["--t2", str(case / "oddext.nii"), "--no-scene", "--out", str(tmp_path / "o")])
    assert code == 0 and lines == []  # --quiet: nothing at all on stderr
    plan = json.loads((tmp_path / "o" / "plan.json").read_text())
    assert any("Extension size is not a multiple of 16" in w for w in plan["warnings"]), plan["warnings"]


def test_second_run_with_fewer_inputs_leaves_no_stale_files(case, capfd, tmp_path):
    out = tmp_path / "out"
    assert _plan(capfd, ["--t2", str(case / "t2.nii.gz"), "--t1", str(case / "t1.nii.gz"), "--tumor-seg",
                          str(case / "tumor.nii.gz"), "--out", str(out)])[0] == 0
    assert (out / "scene.mrb").is_file()
    assert _plan(capfd, ["--t2", str(case / "t2.nii.gz"), "--no-scene", "--no-report", "--out", str(out)])[0] == 0
    plan = json.loads((out / "plan.json").read_text())
    expected = {"plan.json", *plan["outputs"]["labels"].values()}
    assert set(tree_digest(out)) == expected  # exactly the new run's files
    assert not leftovers(tmp_path)


@pytest.mark.parametrize("where", ["labels", "swap"])
def test_io_failure_keeps_the_old_folder_and_logs_per_run(case, capfd, tmp_path, monkeypatch, where):
    out = tmp_path / "out"
    shutil.copytree(case / "prev", out)
    before = tree_digest(out)
    if where == "labels":
        import SpinePlannerLib.planning.pipeline as pipeline

        def full_disk(*a, **k):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(pipeline, "write_volume", full_disk)
    else:
        import SpinePlannerLib.planning.publish as publish

        def io_error(a, b):
            raise OSError(errno.EIO, "Input/output error", str(b))

        monkeypatch.setattr(publish, "_exchange", io_error)
    code, lines, _ = run(capfd, ["plan", "--t2", str(case / "t2.nii.gz"), "--tumor-seg", str(case / "tumor.nii.gz"),
                                  "--no-scene", "--out", str(out)])
    assert code == 1 and len(lines) == 1 and lines[0].startswith("spineplan: internal error: OSError")
    log = lines[0].rsplit("details in ", 1)[1].rstrip(")")
    assert os.path.basename(log).startswith("spineplan-error-") and "OSError" in open(log).read()
    os.unlink(log)
    assert tree_digest(out) == before
    assert not leftovers(tmp_path)


def test_temp_folder_is_clean_after_success_and_failure(case, capfd, tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    assert _plan(capfd, ["--t2", str(case / "t2.nii.gz"), "--tumor-seg", str(case / "tumor.nii.gz"),
                          "--out", str(tmp_path / "o")])[0] == 0  # with the scene: Slicer's cache manager
    assert _plan(capfd, ["--t2", str(case / "rgb.nii.gz"), "--out", str(tmp_path / "o2")])[0] == 2
    assert os.listdir(tmp) == []
