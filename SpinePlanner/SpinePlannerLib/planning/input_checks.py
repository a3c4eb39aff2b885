"""Checks of a case's inputs that run before any computation (bad input -> :class:`InputError`).

* :func:`check_input_files` — every path exists and is a regular file (or a DICOM folder for an
  image); small text inputs (``--bval``, ``--bvec``) are at most :data:`MAX_TEXT_BYTES`, so
  ``/dev/zero`` or a FIFO is refused at once instead of being read forever.
* :func:`check_world_overlap` — every image and the DWI overlap the reference image in world
  (RAS) coordinates; the input that lies elsewhere is the one named.
* :func:`check_orientation` — an image without orientation (NIfTI qform and sform codes 0) can
  be planned alone, with a warning; it is refused when it would be fused with another image.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from SpinePlannerLib.core.dicom_series import split_series
from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.volume import Volume

MAX_TEXT_BYTES = 1 << 20
"""Largest ``--bval``/``--bvec``/``--params`` file read (bytes): 1 MiB is ~100 000 numbers."""

TEXT_OPTIONS = ("bval", "bvec")
"""CaseInputs fields that are small text files."""


def check_input_file(path, option: str, *, folder_ok: bool = False, max_bytes: int | None = None) -> Path:
    """Refuse a missing path, a device/FIFO/socket, an unreadable file or one over ``max_bytes``."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(option, f"file not found: {p}") from None
    except OSError as exc:
        raise InputError(option, f"cannot access {p} ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        if not folder_ok:
            raise InputError(option, f"{p} is a folder; expected a file")
    elif not stat.S_ISREG(st.st_mode):
        raise InputError(option, f"{p} is not a regular file (a device, pipe or socket)")
    elif max_bytes is not None and st.st_size > max_bytes:
        raise InputError(option, f"{p} is {st.st_size} bytes; at most {max_bytes} expected for this input")
    if not os.access(p, os.R_OK):
        raise InputError(option, f"{p} is not readable (permission denied)")
    return p


def check_input_files(inputs) -> None:
    """Check every path of a :class:`~SpinePlannerLib.planning.pipeline.CaseInputs` (nothing is read)."""
    for role, given in inputs.images.items():
        check_input_file(split_series(given)[0], f"--{role}", folder_ok=True)
    if inputs.dwi:
        check_input_file(inputs.dwi, "--dwi")
    for key in TEXT_OPTIONS:
        if getattr(inputs, key):
            check_input_file(getattr(inputs, key), f"--{key}", max_bytes=MAX_TEXT_BYTES)
    for key in ("tumor_seg", "cord_seg"):
        if getattr(inputs, key):
            check_input_file(split_series(getattr(inputs, key))[0], f"--{key.replace('_', '-')}", folder_ok=True)


def box_gap_mm(a: Volume, b: Volume) -> float:
    """Distance (mm) between the RAS bounding boxes of two images (voxels as boxes); 0 when they overlap."""
    amin, amax = a.bounds_ras()
    bmin, bmax = b.bounds_ras()
    pad_a, pad_b = np.abs(a.affine[:3, :3]).sum(axis=1) / 2, np.abs(b.affine[:3, :3]).sum(axis=1) / 2
    gap = np.maximum(0.0, np.maximum((amin - pad_a) - (bmax + pad_b), (bmin - pad_b) - (amax + pad_a)))
    return float(np.linalg.norm(gap))


def check_world_overlap(named: dict[str, Volume], reference_role: str) -> None:
    """Every image in ``named`` (option -> Volume) must overlap the reference in world coordinates."""
    ref = named.get(f"--{reference_role}")
    if ref is None:
        return
    for option, vol in named.items():
        if vol is ref:
            continue
        gap = box_gap_mm(vol, ref)
        if gap > 0:
            raise InputError(option, f"lies {gap:.0f} mm away from the {reference_role} image in world (RAS) "
                                     "coordinates (no overlap): wrong patient position in its header, or another "
                                     "patient/region")


def check_orientation(named: dict[str, Volume], warn) -> None:
    """Warn about images without orientation; refuse them when more than one image is given (fusion)."""
    unknown = [opt for opt, vol in named.items() if vol.meta.get("orientation_unknown")]
    if not unknown:
        return
    if len(named) > 1:
        raise InputError(unknown[0], "has no orientation (NIfTI qform and sform codes are 0), so it cannot be "
                                     "aligned with the other images; fix its header or plan it alone")
    warn(f"orientation unknown: {unknown[0]} has no qform/sform (codes 0); voxel axes were taken as R, A, S — "
         "left/right and levels are not reliable")
