"""Whole-folder publishing: swap by exchange or by two renames, recovery after a kill between
the renames, and no replacement of a folder that is not a spineplan output."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest
from faultcases import leftovers, tree_digest

import SpinePlannerLib.planning.publish as publish
from SpinePlannerLib.core.errors import InputError


def _result(folder, text):
    folder.mkdir(parents=True)
    (folder / "plan.json").write_text(text)
    (folder / "labels").mkdir()
    (folder / "labels" / f"{text}.nii.gz").write_text(text)


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_publish_replaces_the_whole_folder(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(publish, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    _result(out, "old")
    staging = publish.make_staging(out)
    (staging / "plan.json").write_text("new")
    publish.publish_folder(staging, out)
    assert tree_digest(out).keys() == {"plan.json"}
    assert (out / "plan.json").read_text() == "new"
    assert not leftovers(tmp_path)
    mode = stat.S_IMODE(out.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o777 & ~umask  # an ordinary folder, not mkdtemp's 0700


def test_kill_between_two_renames_is_undone_by_the_next_run(tmp_path):
    out = tmp_path / "out"
    pid = subprocess.Popen(["true"])
    pid.wait()
    _result(tmp_path / f".out.old-{pid.pid}-abcd1234", "old")  # out moved away, process killed
    (tmp_path / f".out.staging-{pid.pid}-efgh5678").mkdir()  # its half-built new folder
    assert not out.exists()
    staging = publish.make_staging(out)
    assert (out / "plan.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [staging.name]
    publish.discard(staging)


def test_a_folder_that_is_no_plan_is_never_replaced(tmp_path):
    out = tmp_path / "docs"
    out.mkdir()
    (out / "thesis.docx").write_text("precious")
    staging = publish.make_staging(out)
    with pytest.raises(InputError, match="not a spineplan output"):
        publish.publish_folder(staging, out)
    publish.discard(staging)
    assert (out / "thesis.docx").read_text() == "precious"
    with pytest.raises(InputError, match="not a spineplan output"):
        publish.check_out_dir(out)


def test_inputs_built_inside_the_staging_folder_are_recorded_at_their_final_place(tmp_path):
    from SpinePlannerLib.planning.pipeline import _final_inputs

    staging, out = tmp_path / ".demo.staging-1-x", tmp_path / "demo"
    given = {"t2": f"{staging}/case/t2.nii.gz", "ct": f"{staging}x/ct.nii.gz", "t1": "/data/t1.nii.gz"}
    assert _final_inputs(given, staging, out) == {"t2": f"{out}/case/t2.nii.gz", "ct": f"{staging}x/ct.nii.gz",
                                                  "t1": "/data/t1.nii.gz"}


def test_out_holding_a_link_to_an_input_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t2.nii.gz").write_text("x")
    out = tmp_path / "out"
    out.mkdir()
    (out / "plan.json").write_text("{}")
    (out / "t2.nii.gz").symlink_to(tmp_path / "data" / "t2.nii.gz")
    with pytest.raises(InputError, match="holds the input --t2"):
        publish.check_out_dir(out, {"--t2": str(out / "t2.nii.gz")})
    with pytest.raises(InputError, match="lies inside the input folder --ct"):
        publish.check_out_dir(tmp_path / "data" / "plan", {"--ct": f"{tmp_path / 'data'}::1.2.3"})


def test_run_temp_folders_are_swept_only_when_no_run_holds_them(tmp_path):
    import fcntl

    from SpinePlannerLib.cli.runtime import LOCK_NAME, sweep_dead_run_folders

    proc = subprocess.Popen(["true"])
    proc.wait()
    live = tmp_path / f"spineplan-run-{proc.pid}-live"  # pid looks dead (another PID namespace), lock held
    live.mkdir()
    fd = os.open(live / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    sweep_dead_run_folders(tmp_path)
    assert live.is_dir()
    os.close(fd)  # the run ends without cleaning up (killed)
    sweep_dead_run_folders(tmp_path)
    assert not live.exists()
