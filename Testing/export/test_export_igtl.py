"""`spineplan igtl`: the plan arrives at independent OpenIGTLink receivers: a receiver built here
on the reference C++ library (libopenigtlink-dev: POLYDATA, POINT, STRING, TRANSFORM with CRC
checks) and a pyigtl server (POINT, STRING, TRANSFORM)."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest

from SpinePlannerLib.cli.main import main
from SpinePlannerLib.export.igtl import MAX_TRACT_POINTS, device_name
from SpinePlannerLib.export.meshes import structure_meshes
from SpinePlannerLib.export.plan_folder import load_plan_folder
from SpinePlannerLib.export.tract_density import read_streamlines

HERE = Path(__file__).parent
HEADER = Path("/usr/include/openigtlink/igtlPolyDataMessage.h")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    compiler = shutil.which("g++")
    if compiler is None or not HEADER.is_file():
        pytest.skip("g++ or the OpenIGTLink library (Debian package libopenigtlink-dev) not installed")
    exe = tmp_path_factory.mktemp("igtl") / "igtl_receiver"
    subprocess.run([compiler, "-O1", "-std=c++11", f"-I{HEADER.parent}", str(HERE / "igtl_receiver.cxx"),
                    "-lOpenIGTLink", "-o", str(exe)], check=True, capture_output=True, timeout=300)
    return exe


def _parse(out: str) -> dict:
    got: dict = {"POLYDATA": {}, "POINT": {}, "STRING": {}, "TRANSFORM": {}, "CRCFAIL": []}
    current = None
    for line in out.splitlines():
        if line.startswith("  ") and current is not None:
            name, xyz = line.strip().split("|")
            current.append((name, [float(v) for v in xyz.split()]))
            continue
        kind, _, rest = line.partition(" ")
        if kind == "POLYDATA":
            dev, *vals = rest.split()
            got["POLYDATA"][dev] = [float(v) for v in vals]
        elif kind == "POINT":
            current = got["POINT"].setdefault(rest.split()[0], [])
        elif kind == "STRING":
            dev, _, text = rest.partition(" ")
            got["STRING"].setdefault(dev, []).append(text)
        elif kind == "TRANSFORM":
            dev, *vals = rest.split()
            got["TRANSFORM"][dev] = np.asarray(vals, float).reshape(3, 4)
        elif kind == "CRCFAIL":
            got["CRCFAIL"].append(rest)
    return got


def test_plan_streams_to_the_reference_library_receiver(receiver, nifti_plan, capsys):
    port = _free_port()
    proc = subprocess.Popen([str(receiver), str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "LISTENING"
        assert main(["--quiet", "igtl", str(nifti_plan), "--host", "127.0.0.1", "--port", str(port)]) == 0
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    got = _parse(out)
    assert got["CRCFAIL"] == []
    pf = load_plan_folder(nifti_plan)
    for m in structure_meshes(pf.masks, pf.reference.affine, frame="RAS"):
        npts, npoly, nline, sx, sy, sz, max_index = got["POLYDATA"][device_name(m.structure.key)]
        assert (npts, npoly, nline) == (len(m.vertices), len(m.faces), 0)
        assert np.allclose([sx, sy, sz], m.vertices.sum(axis=0), rtol=1e-4, atol=0.05 * len(m.vertices) ** 0.5)
        assert max_index == len(m.vertices) - 1
    streamlines = read_streamlines(nifti_plan / "tracts")
    total = sum(len(s) for s in streamlines)
    npts, npoly, nline, *_ = got["POLYDATA"]["SP_Tracts"]
    assert npoly == 0 and nline == len(streamlines[:: max(1, int(np.ceil(total / MAX_TRACT_POINTS)))])
    plan = json.loads((nifti_plan / "plan.json").read_text())
    names = dict(got["POINT"]["SP_Points"])
    assert np.allclose(names["tumor centroid"], plan["tumor"]["centroid_ras"], atol=1e-3)
    assert np.allclose(got["TRANSFORM"]["SP_RefIJKToRAS"], pf.reference.affine[:3], atol=1e-4)
    assert got["STRING"]["SP_Status"][-1].startswith("spineplan: plan sent")
    assert "Setzer type" in got["STRING"]["SP_Summary"][0]


def test_plan_streams_to_a_pyigtl_server(nifti_plan):
    import pyigtl

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    port = _free_port()
    server = pyigtl.OpenIGTLinkServer(port=port, local_server=True)
    try:
        assert main(["--quiet", "igtl", str(nifti_plan), "--host", "127.0.0.1", "--port", str(port)]) == 0
        points = server.wait_for_message("SP_Points", timeout=10)
        transform = server.wait_for_message("SP_RefIJKToRAS", timeout=10)
        summary = server.wait_for_message("SP_Summary", timeout=10)
    finally:
        server.stop()
        for s, h in handlers.items():
            signal.signal(s, h)
    plan = json.loads((nifti_plan / "plan.json").read_text())
    assert "tumor centroid" in points.names
    i = list(points.names).index("tumor centroid")
    assert np.allclose(points.positions[i], plan["tumor"]["centroid_ras"], atol=1e-3)
    assert np.allclose(transform.matrix, load_plan_folder(nifti_plan).reference.affine, atol=1e-4)
    assert f"Setzer type {plan['tractography']['setzer_type']}" in summary.string


def test_no_server_is_one_line_and_exit_2(nifti_plan, capsys):
    port = _free_port()
    assert main(["--quiet", "igtl", str(nifti_plan), "--port", str(port), "--timeout", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"127.0.0.1:{port}" in err[0]
