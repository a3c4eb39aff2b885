"""Kill a real ``spineplan plan`` process at several points of its run: the output folder is then
either the complete previous result or the complete new one, and the next run cleans up what the
killed one left (its staging folder and private temp folder)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faultcases import leftovers, tree_digest, write_tiny_case

from SpinePlannerLib.cli.main import main


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    d = tmp_path_factory.mktemp("kill")
    write_tiny_case(d / "case")
    return d


def _old_args(c: Path) -> list[str]:  # previous result: no scene, no T1
    return ["--t2", str(c / "t2.nii.gz"), "--tumor-seg", str(c / "tumor.nii.gz"), "--no-scene", "--no-report"]


def _new_args(c: Path) -> list[str]:  # new result: T1 and a scene as well
    return ["--t2", str(c / "t2.nii.gz"), "--t1", str(c / "t1.nii.gz"), "--tumor-seg", str(c / "tumor.nii.gz"), "--no-report"]


def _state(out: Path, old: dict) -> str:
    """``old`` or ``new`` (complete); anything else fails the test."""
    files = tree_digest(out)
    if files == old:
        return "old"
    plan = json.loads((out / "plan.json").read_text())
    assert "t1" in plan["inputs"], "plan.json of the old run beside other files"
    expected = {"plan.json", "scene.mrb", *plan["outputs"]["labels"].values()}
    assert set(files) == expected, f"mixed folder: {sorted(files)}"
    return "new"


def _start(case: Path, out: Path, tmp: Path) -> subprocess.Popen:
    env = {**os.environ, "TMPDIR": str(tmp)}
    cmd = [sys.executable, "-m", "SpinePlannerLib.cli", "--quiet", "plan", *_new_args(case / "case"), "--out", str(out)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for(proc, condition, timeout=120.0) -> bool:
    t0 = time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < timeout:
        if condition():
            return True
        time.sleep(0.002)
    return False


def _staging(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if ".staging-" in p.name]


KILL_POINTS = ["0.3 s", "staging created", "labels staged", "plan.json staged"]
"""While importing, while the stages run, while the scene is written, just before the swap."""


def test_sigkill_at_any_point_leaves_old_or_new_folder(case, tmp_path, monkeypatch):
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    assert main(["--quiet", "plan", *_old_args(case / "case"), "--out", str(out)]) == 0
    old = tree_digest(out)
    seen = {}
    for point in KILL_POINTS:
        shutil_restore(out, old, case, tmp_path)
        proc = _start(case, out, tmp)
        conditions = {
            "staging created": lambda: bool(_staging(tmp_path)),
            "labels staged": lambda: any((s / "labels").is_dir() for s in _staging(tmp_path)),
            "plan.json staged": lambda: any((s / "plan.json").exists() for s in _staging(tmp_path)),
        }
        if point in conditions:
            _wait_for(proc, conditions[point])
        else:
            time.sleep(float(point.split()[0]))
        proc.kill()
        proc.wait()
        seen[point] = _state(out, old)
    assert seen["0.3 s"] == "old" and seen["staging created"] == "old", seen
    # the next run removes what the killed ones left: staging folders and private temp folders
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr("tempfile.tempdir", None)
    assert main(["--quiet", "plan", *_new_args(case / "case"), "--out", str(out)]) == 0
    assert _state(out, old) == "new"
    assert not leftovers(tmp_path)
    assert os.listdir(tmp) == []


def shutil_restore(out: Path, old: dict, case: Path, parent: Path) -> None:
    """Put the old result back when the previous kill let the new one through."""
    if tree_digest(out) != old:
        assert main(["--quiet", "plan", *_old_args(case / "case"), "--out", str(out)]) == 0


def test_sigterm_cleans_up_at_once_and_keeps_the_old_folder(case, tmp_path):
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    assert main(["--quiet", "plan", *_old_args(case / "case"), "--out", str(out)]) == 0
    old = tree_digest(out)
    proc = _start(case, out, tmp)
    assert _wait_for(proc, lambda: bool(_staging(tmp_path)))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert tree_digest(out) == old
    assert not leftovers(tmp_path)
    assert os.listdir(tmp) == []
