"""Bad input: one line on stderr naming the input, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from testimages import ball_mask, blob_volume, oblique_affine

from SpinePlannerLib.cli.main import main
from SpinePlannerLib.core.imageio import write_volume
from SpinePlannerLib.core.volume import Volume


@pytest.fixture()
def case(tmp_path):
    aff = oblique_affine(order="PSR", spacing=(1.0, 1.0, 1.5))
    t2 = blob_volume(aff, shape=(24, 20, 14))
    write_volume(t2, tmp_path / "t2.nii.gz")
    center = t2.ijk_to_ras([12, 10, 7])
    write_volume(ball_mask(aff, t2.shape3, center, 4.0), tmp_path / "tumor.nii.gz")
    far = ball_mask(np.eye(4), (10, 10, 10), (0, 0, 0), 3.0)
    far.affine[:3, 3] = [900, 900, 900]
    write_volume(far, tmp_path / "far.nii.gz")
    nan = t2.with_array(t2.array.copy())
    nan.array[3, 3, 3] = np.nan
    write_volume(nan, tmp_path / "nan.nii.gz")
    (tmp_path / "notimage.nii.gz").write_text("this is not an image\n")
    (tmp_path / "notes.txt").write_text("hello\n")
    dwi = np.full((6, 6, 4, 4), 300.0, np.float32)
    dwi[..., 0] = 1000
    write_volume(Volume(dwi, aff), tmp_path / "dwi.nii.gz")
    np.savetxt(tmp_path / "bval", [[0, 800, 800, 800]])
    np.savetxt(tmp_path / "bval5", [[0, 800, 800, 800, 800]])
    np.savetxt(tmp_path / "bvec", np.eye(4, 3).T + 0.1)
    return tmp_path, center


def run_cli(capsys, args):
    code = main(["--quiet", *args])
    captured = capsys.readouterr()
    return code, captured.err


BAD = {
    "missing file": (["--t2", "{d}/absent.nii.gz"], "--t2", "file not found"),
    "not an image": (["--t2", "{d}/notimage.nii.gz"], "--t2", "not a readable image"),
    "text file": (["--t2", "{d}/notes.txt"], "--t2", "not a readable image"),
    "3D volume as DWI": (["--t2", "{d}/t2.nii.gz", "--dwi", "{d}/t2.nii.gz", "--bval", "{d}/bval", "--bvec", "{d}/bvec"],
                         "--dwi", "expected a 4D diffusion series"),
    "bval count mismatch": (["--dwi", "{d}/dwi.nii.gz", "--bval", "{d}/bval5", "--bvec", "{d}/bvec"],
                            "--bval", "has 5 values but the DWI has 4 volumes"),
    "NaN voxels": (["--t2", "{d}/nan.nii.gz"], "--t2", "NaN"),
    "label map overlapping no image": (["--t2", "{d}/t2.nii.gz", "--tumor-seg", "{d}/far.nii.gz"], "--tumor-seg",
                                       "does not overlap"),
    "seed outside the image": (["--t2", "{d}/t2.nii.gz", "--tumor-seed", "500,500,500"], "--tumor-seed",
                               "outside the t2 image"),
    "malformed seed": (["--t2", "{d}/t2.nii.gz", "--tumor-seed", "1,2"], "--tumor-seed", "three numbers"),
    "unknown option": (["--t9", "x"], "arguments", "unrecognized arguments"),
}


@pytest.mark.parametrize("label", list(BAD))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, capsys, label):
    d, _ = case
    args, name, words = BAD[label]
    out = d / "out"
    code, err = run_cli(capsys, ["plan", *[a.format(d=d) for a in args], "--out", str(out)])
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("usage:")]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"spineplan: error: {name}"), lines[0]
    assert words in lines[0]
    assert "Traceback" not in err
    assert not out.exists()
    assert not list(d.glob(".out.staging-*"))


def test_bad_input_leaves_an_existing_plan_untouched(case, capsys):
    d, center = case
    out = d / "out"
    assert run_cli(capsys, ["plan", "--t2", str(d / "t2.nii.gz"), "--tumor-seg", str(d / "tumor.nii.gz"),
                            "--out", str(out), "--no-scene"])[0] == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, _ = run_cli(capsys, ["plan", "--t2", str(d / "nan.nii.gz"), "--out", str(out)])
    assert code == 2
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert before == after


def test_inputs_are_never_modified(case, capsys):
    d, _ = case
    files = [d / "t2.nii.gz", d / "tumor.nii.gz"]
    before = [f.read_bytes() for f in files]
    code, _ = run_cli(capsys, ["plan", "--t2", str(files[0]), "--tumor-seg", str(files[1]), "--out", str(d / "o")])
    assert code == 0
    assert [f.read_bytes() for f in files] == before


def test_console_script_reports_bad_input_without_traceback(case):
    d, _ = case
    proc = subprocess.run([sys.executable, "-m", "SpinePlannerLib.cli.main", "plan", "--t2", str(d / "absent.nii.gz"),
                           "--out", str(d / "o")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"spineplan: error: --t2: file not found: {d / 'absent.nii.gz'}"]


@pytest.mark.parametrize(("content", "words"), [
    ("{not json", "not valid JSON"),
    ('{"colour": {}}', "unknown section 'colour'"),
    ('{"vessels": {"no_such_setting": 1}}', "section 'vessels'"),
    ('["a"]', "must be a JSON object"),
])
def test_bad_parameter_file_is_an_input_error(case, capsys, content, words):
    d, _ = case
    (d / "p.json").write_text(content)
    code, err = run_cli(capsys, ["plan", "--t2", str(d / "t2.nii.gz"), "--params", str(d / "p.json"), "--out", str(d / "o")])
    assert code == 2 and err.startswith("spineplan: error: --params") and words in err, err
    assert not (d / "o").exists()


@pytest.mark.parametrize("anchor", ["T10,1,2", "T10,a,b,c"])
def test_malformed_level_anchor_is_an_input_error(case, capsys, anchor):
    d, _ = case
    code, err = run_cli(capsys, ["plan", "--t2", str(d / "t2.nii.gz"), "--level-anchor", anchor, "--out", str(d / "o")])
    assert code == 2 and err.startswith("spineplan: error: --level-anchor"), err
