"""`spineplan send`: every exported object arrives intact in a real DICOM server (dcmtk's
storescp on 127.0.0.1, started and stopped here); retries reach a server that starts late; no
server is one line and exit 2."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time

import pydicom
import pytest

from SpinePlannerLib.cli.main import main
from SpinePlannerLib.export.send import export_files, send_files

STORESCP = shutil.which("storescp")
pytestmark = pytest.mark.skipif(STORESCP is None, reason="storescp not installed (Debian package dcmtk)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_storescp(port: int, folder, aet: str = "NAVSTATION") -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([STORESCP, "-aet", aet, "-od", str(folder), "+xa", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("storescp did not start")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def export_dir(nifti_plan, tmp_path_factory):
    out = tmp_path_factory.mktemp("exp-send") / "export"
    assert main(["--quiet", "export", str(nifti_plan), "--format", "dicom", "--out", str(out)]) == 0
    return out


def test_every_object_arrives_intact(export_dir, tmp_path, capsys):
    port, received = _free_port(), tmp_path / "received"
    proc = _start_storescp(port, received)
    try:
        rc = main(["--quiet", "send", str(export_dir), "--host", "127.0.0.1", "--port", str(port), "--aet", "NAVSTATION"])
    finally:
        _stop(proc)
    report = capsys.readouterr().out
    sent = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in export_files(export_dir)}
    assert rc == 0, report
    assert f"{len(sent)}/{len(sent)} object(s) stored" in report
    got = {}
    for p in received.iterdir():
        ds = pydicom.dcmread(p)
        got[str(ds.SOPInstanceUID)] = ds
    assert set(got) == set(sent)
    kinds = set()
    for uid, path in sent.items():
        original = pydicom.dcmread(path)
        kinds.add(str(original.Modality))
        assert got[uid] == original, path.name  # every data element equal (file meta aside)
        if "PixelData" in original:
            assert got[uid].PixelData == original.PixelData
    assert {"SEG", "RTSTRUCT", "MR", "DOC"} <= kinds


def test_retries_reach_a_server_that_starts_late(export_dir, tmp_path):
    port, received = _free_port(), tmp_path / "late"
    files = [p for p in export_files(export_dir) if p.name in ("seg.dcm", "rtstruct.dcm")]
    started = {}
    timer = threading.Timer(1.5, lambda: started.setdefault("proc", _start_storescp(port, received)))
    timer.start()
    try:
        results = send_files(files, host="127.0.0.1", port=port, called_aet="NAVSTATION", retries=8,
                             retry_wait_s=1.0, timeout_s=5)
    finally:
        timer.join()
        _stop(started["proc"])
    assert all(r.ok for r in results)
    assert all(r.attempts >= 2 for r in results)
    assert len(list(received.iterdir())) == 2


def test_no_server_is_one_line_and_exit_2(export_dir, capsys):
    rc = main(["--quiet", "send", str(export_dir), "--host", "127.0.0.1", "--port", str(_free_port()),
               "--aet", "NOBODY", "--retries", "0", "--timeout", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "NOBODY@127.0.0.1" in err[0]
