"""The inputs hash of a case: what ``--resume`` compares with ``plan.json`` ``inputs_hash``.

SHA-256 over a canonical JSON of: the software version, the planning options (scene or not), the
case's options (tumor seed, level anchor, inline parameters), and for every input path its
absolute path with, per file (every file below a DICOM folder), the size in bytes and the
modification time in ns; a ``--params`` file is hashed by content. Any change of an input file,
its location, a parameter or the version makes the plan stale.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from SpinePlannerLib import __version__


def _file_stats(path: Path) -> list:
    if path.is_dir():
        out = []
        for root, dirs, files in os.walk(path, followlinks=True):
            dirs.sort()
            for name in sorted(files):
                p = Path(root) / name
                st = p.stat()
                out.append([str(p.relative_to(path)), st.st_size, st.st_mtime_ns])
        return out
    if path.is_file():
        st = path.stat()
        return [[path.name, st.st_size, st.st_mtime_ns]]
    return [["missing"]]


def inputs_hash(case, *, options: dict) -> str:
    """Hex SHA-256 of the inputs and parameters of ``case`` (a :class:`.cases.BatchCase`).

    ``options`` are the batch-wide planning options (e.g. ``{"write_scene": False}``).
    """
    described = case.describe_inputs()
    files = {}
    for column, value in described["paths"].items():
        p = Path(value)
        if column == "params" and p.is_file():
            files[column] = [str(p), hashlib.sha256(p.read_bytes()).hexdigest()]
        else:
            files[column] = [str(p), _file_stats(p)]
    doc = {"version": __version__, "options": options, "case": described, "files": files}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
