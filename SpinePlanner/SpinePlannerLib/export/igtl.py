"""Push a plan live over OpenIGTLink (pyigtl client): structure surfaces and the cord tracts as
POLYDATA, tumor / feeder / Adamkiewicz points as POINT, registrations as TRANSFORM, and STRING
status messages. Everything in RAS mm, the frame 3D Slicer's OpenIGTLinkIF uses.

Device names (at most 20 characters, the protocol's limit; unique: a receiver keeps the latest
message per device): ``SP_<structure>`` (POLYDATA; vertebrae ``SP_T10``, anterior spinal artery
``SP_ASA``), ``SP_Tracts`` (POLYDATA lines), ``SP_Points`` (POINT), ``SP_RefIJKToRAS`` (the
reference image's voxel to RAS matrix) and ``SP_AngioToCT`` / ``SP_CTToSCT`` (registrations,
TRANSFORM), ``SP_Status`` and ``SP_Summary`` (STRING).
"""

from __future__ import annotations

import time

import numpy as np

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.export.colors import rgb_255
from SpinePlannerLib.export.meshes import structure_meshes
from SpinePlannerLib.export.plan_folder import PlanFolder
from SpinePlannerLib.export.tract_density import read_streamlines

SHORT_NAMES = {"anterior_spinal_artery": "ASA", "sct_disagreement": "sCT_disagree", "tract_volume": "TractVolume"}


def device_name(key: str) -> str:
    """OpenIGTLink device name of a structure (``SP_`` + a short key, <= 20 characters)."""
    short = SHORT_NAMES.get(key, key.removeprefix("vertebra_"))
    name = f"SP_{short}"
    if len(name) > 20:
        raise ValueError(f"device name {name!r} longer than OpenIGTLink's 20 characters")
    return name


MAX_TRACT_POINTS = 200_000
"""Streamline points sent at most (streamlines are thinned evenly beyond this)."""


def _cells(groups) -> np.ndarray:
    """VTK cell array ``[n, i1..in, n, ...]`` (uint32) from index groups."""
    parts = [np.concatenate([[len(g)], g]) for g in groups]
    return np.concatenate(parts).astype(np.uint32) if parts else np.zeros(0, np.uint32)


def _tract_message(streamlines):
    import pyigtl

    total = sum(len(s) for s in streamlines)
    step = max(1, int(np.ceil(total / MAX_TRACT_POINTS)))
    kept = streamlines[::step]
    points = np.vstack(kept).astype(np.float32)
    offsets = np.cumsum([0] + [len(s) for s in kept])
    lines = _cells([np.arange(offsets[n], offsets[n + 1]) for n in range(len(kept))])
    return pyigtl.PolyDataMessage(points=points, lines=lines, device_name="SP_Tracts")


def _points(plan: dict) -> list[tuple[str, list, tuple]]:
    """(name, RAS mm, RGB 0..1) of the tumor centroid, feeder entries and the Adamkiewicz candidate."""
    out = []
    tumor = plan.get("tumor") or {}
    if tumor.get("centroid_ras"):
        out.append(("tumor centroid", tumor["centroid_ras"], (0.9, 0.2, 0.2)))
    vessels = plan.get("vessels") or {}
    for f in vessels.get("feeders") or []:
        out.append((f"feeder {f.get('rank', '')} {f.get('level', '')} {f.get('side', '')}".strip(),
                    f["entry_ras"], (1.0, 0.85, 0.0)))
    ak = vessels.get("adamkiewicz_candidate") or {}
    if ak.get("present") and ak.get("entry_ras"):
        out.append((f"Adamkiewicz candidate {ak.get('level', '')}", ak["entry_ras"], (1.0, 0.0, 1.0)))
    return out


def _transforms(plan: dict) -> list[tuple[str, np.ndarray]]:
    out = []
    reg = (plan.get("vessels") or {}).get("registration") or {}
    if reg.get("angio_to_ct_ras"):
        out.append(("SP_AngioToCT", np.asarray(reg["angio_to_ct_ras"], float)))
    reg = (plan.get("synthetic_ct_check") or {}).get("registration") or {}
    if reg.get("ct_to_sct_ras"):
        out.append(("SP_CTToSCT", np.asarray(reg["ct_to_sct_ras"], float)))
    return out


def plan_messages(pf: PlanFolder) -> list:
    """Every pyigtl message of the plan, status first and summary last."""
    import pyigtl

    from SpinePlannerLib.export.report_pdf import summary_lines

    msgs = [pyigtl.StringMessage("spineplan: sending plan", device_name="SP_Status")]
    for m in structure_meshes(pf.masks, pf.reference.affine, frame="RAS"):
        msgs.append(pyigtl.PolyDataMessage(points=m.vertices.astype(np.float32), polygons=_cells(m.faces),
                                           device_name=device_name(m.structure.key)))
    streamlines = read_streamlines(pf.folder / "tracts")
    if streamlines:
        msgs.append(_tract_message(streamlines))
    points = _points(pf.plan)
    if points:
        msgs.append(pyigtl.PointMessage(positions=np.asarray([p for _, p, _ in points], float),
                                        names=[n for n, _, _ in points],
                                        rgba_colors=[[*rgb_255(c), 255] for _, _, c in points],
                                        groups=["SpinePlan"] * len(points), device_name="SP_Points"))
    msgs.append(pyigtl.TransformMessage(pf.reference.affine, device_name="SP_RefIJKToRAS"))
    for name, matrix in _transforms(pf.plan):
        msgs.append(pyigtl.TransformMessage(matrix, device_name=name))
    summary = " | ".join(line for line in summary_lines(pf.plan)[2:] if line)
    msgs.append(pyigtl.StringMessage(summary[:60000] or "no findings", device_name="SP_Summary"))
    msgs.append(pyigtl.StringMessage(f"spineplan: plan sent ({len(msgs) + 1} messages)", device_name="SP_Status"))
    return msgs


def _connect(host: str, port: int, timeout_s: float):
    import socket

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return socket.create_connection((host, int(port)), timeout=max(timeout_s, 1.0))
        except OSError as exc:
            if time.monotonic() > deadline:
                raise InputError(f"{host}:{port}", f"no OpenIGTLink server answered within {timeout_s:g} s "
                                 f"({exc.strerror or exc})") from None
            time.sleep(0.1)


def push_plan(pf: PlanFolder, *, host: str, port: int, timeout_s: float = 10.0,
              progress=lambda f, m: None) -> list[str]:
    """Connect to the OpenIGTLink server at ``host:port`` and send :func:`plan_messages`;
    returns one line per message sent.

    Messages are encoded by pyigtl and written on a blocking socket here (pyigtl's client polls
    a socket with a 10 ms timeout, which drops large POLYDATA messages without telling).
    Raises :class:`InputError` when no connection is made within ``timeout_s``.
    """
    import socket

    messages = plan_messages(pf)
    sock = _connect(host, port, timeout_s)
    lines = []
    try:
        for n, msg in enumerate(messages):
            progress(n / len(messages), f"{msg.message_type} {msg.device_name}")
            data = msg.pack()
            sock.sendall(data)
            lines.append(f"sent {msg.message_type:<9} {msg.device_name} ({len(data)} bytes)")
        sock.shutdown(socket.SHUT_WR)
    finally:
        sock.close()
    progress(1.0, "sent")
    return lines
