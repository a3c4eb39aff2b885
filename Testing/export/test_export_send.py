"""`spineplan send`: every exported object arrives intact in real DICOM servers started and
stopped here on 127.0.0.1 (dcmtk's storescp: received files compared; Orthanc: C-FIND finds
every SOP instance, its REST API serves each back unchanged); retries reach a server that starts
late; no server is one line and exit 2."""

from __future__ import annotations

import io
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


ORTHANC = shutil.which("Orthanc")


@pytest.mark.skipif(ORTHANC is None, reason="Orthanc not installed (Debian package orthanc)")
def test_orthanc_finds_every_object_and_serves_it_back_unchanged(export_dir, tmp_path):
    import json
    import urllib.request

    from pydicom.dataset import Dataset
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

    dicom_port, http_port = _free_port(), _free_port()
    config = {"Name": "spineplan-test", "StorageDirectory": str(tmp_path / "db"), "IndexDirectory": str(tmp_path / "db"),
              "HttpPort": http_port, "DicomPort": dicom_port, "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
              "AuthenticationEnabled": False, "DicomAlwaysAllowFind": True, "DicomCheckCalledAet": True}
    (tmp_path / "orthanc.json").write_text(json.dumps(config))
    proc = subprocess.Popen([ORTHANC, str(tmp_path / "orthanc.json")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{http_port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/system", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        files = export_files(export_dir)
        results = send_files(files, host="127.0.0.1", port=dicom_port, called_aet="ORTHANC", timeout_s=10)
        assert all(r.ok for r in results)
        sent = {str(pydicom.dcmread(p).SOPInstanceUID): pydicom.dcmread(p) for p in files}
        # C-FIND, image level, series by series
        ae = AE(ae_title="SPINEPLAN")
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        assoc = ae.associate("127.0.0.1", dicom_port, ae_title="ORTHANC")
        assert assoc.is_established
        found = set()
        try:
            for study, series_uid in {(str(d.StudyInstanceUID), str(d.SeriesInstanceUID)) for d in sent.values()}:
                q = Dataset()
                q.QueryRetrieveLevel, q.StudyInstanceUID, q.SeriesInstanceUID, q.SOPInstanceUID = "IMAGE", study, series_uid, ""
                for status, identifier in assoc.send_c_find(q, StudyRootQueryRetrieveInformationModelFind):
                    if status and status.Status in (0xFF00, 0xFF01) and identifier is not None:
                        found.add(str(identifier.SOPInstanceUID))
        finally:
            assoc.release()
        assert found == set(sent)
        # and each stored instance, served back over REST, holds the same data elements
        ids = json.loads(urllib.request.urlopen(base + "/instances", timeout=10).read())
        assert len(ids) == len(sent)
        for oid in ids:
            raw = urllib.request.urlopen(f"{base}/instances/{oid}/file", timeout=10).read()
            ds = pydicom.dcmread(io.BytesIO(raw))
            assert ds == sent[str(ds.SOPInstanceUID)]
    finally:
        _stop(proc)
