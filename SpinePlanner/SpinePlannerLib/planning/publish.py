"""Output folders replaced as a whole: checked before anything runs, built beside, swapped in.

Guarantee (tested in ``Testing/cli/test_fault_injection.py``): after any run, kill or I/O error
the output folder holds either the complete previous result or the complete new one, never a
mix and never files of an earlier run.

* :func:`check_out_dir` refuses, before any computation, an output folder that is empty text,
  the current directory (or holds it), an existing file, under ``/proc``/``/sys``/``/dev``, too
  long a name, not writable, one that holds (or lies inside) an input, or an existing folder
  with files that is not a spineplan output (no ``plan.json``): it would be replaced as a whole.
* :func:`make_staging` creates the new folder as a hidden sibling ``.<name>.staging-<pid>-XXXX``
  (same file system, so renames are atomic).
* :func:`publish_folder` swaps it in with one ``renameat2(RENAME_EXCHANGE)`` (Linux); elsewhere
  with two renames, and a run interrupted between them is undone by the next run
  (:func:`recover_interrupted`). The old folder is then deleted.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import tempfile
from pathlib import Path

from SpinePlannerLib.core.dicom_series import split_series
from SpinePlannerLib.core.errors import InputError

MAX_NAME_BYTES = 200
"""Longest output folder name (bytes): 255 (NAME_MAX) less room for the staging suffix."""

MAX_PATH_BYTES = 4000
"""Longest output path (bytes): PATH_MAX 4096 less room for the files inside."""

SYSTEM_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))
"""Pseudo file systems that never hold outputs."""

MARKER = "plan.json"
"""A folder holding this file is a spineplan output and may be replaced."""

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def pid_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _resolve(path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def _first_existing(path: Path) -> Path:
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path("/")


def _check_name(text: str, out: Path, option: str) -> None:
    if len(os.fsencode(str(out))) > MAX_PATH_BYTES:
        raise InputError(option, f"path is too long ({len(os.fsencode(str(out)))} bytes; at most {MAX_PATH_BYTES})")
    for part in out.parts:
        if len(os.fsencode(part)) > MAX_NAME_BYTES:
            raise InputError(option, f"folder name {part[:40]!r}... is too long ({len(os.fsencode(part))} bytes; "
                                     f"at most {MAX_NAME_BYTES})")
    for tree in SYSTEM_TREES:
        if _within(out, tree):
            raise InputError(option, f"{text} is under {tree}, a system folder that cannot hold outputs")


def _check_writable(out: Path, option: str) -> None:
    base = _first_existing(out.parent)
    if not base.is_dir():
        raise InputError(option, f"{base} is a file, not a folder: cannot create {out}")
    try:
        probe = tempfile.mkdtemp(prefix=".spineplan-probe-", dir=base)
    except OSError as exc:
        raise InputError(option, f"cannot write in {base} ({exc.strerror or exc})") from None
    os.rmdir(probe)


def _check_inputs(out: Path, input_paths: dict, option: str) -> None:
    for name, given in input_paths.items():
        if not given:
            continue
        text = split_series(given)[0]
        inp = _resolve(text)
        link = Path(os.path.abspath(Path(text).expanduser()))  # a symbolic link inside ``out`` is an input too
        if _within(inp, out) or _within(link.parent.resolve() / link.name, out):
            raise InputError(option, f"{out} holds the input {name} ({given}); the output folder is replaced as a "
                                     "whole: choose another folder")
        if inp.is_dir() and _within(out, inp):
            raise InputError(option, f"{out} lies inside the input folder {name} ({given}); choose a folder outside it")


def check_out_dir(text, input_paths: dict | None = None, *, option: str = "--out") -> Path:
    """Validate an output folder before any computation; returns it as an absolute path.

    Parameters
    ----------
    text : str or Path
        The folder as the user gave it.
    input_paths : dict
        Input name (e.g. ``--t2``) -> path (file or folder; ``DIR::UID`` allowed).

    Raises
    ------
    InputError
        Naming ``option`` and the problem (see the module docstring).
    """
    if text is None or not str(text).strip():
        raise InputError(option, "is empty; give a folder name, e.g. --out plan_out")
    out = _resolve(text)
    _check_name(str(text), out, option)
    if out.exists() and not out.is_dir():
        raise InputError(option, f"{text} exists and is a file, not a folder")
    if _within(_resolve(os.getcwd()), out):
        raise InputError(option, f"{text} is the current directory (or holds it); give a new folder, e.g. --out plan_out")
    _check_inputs(out, input_paths or {}, option)
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise InputError(option, f"{text} already holds files and is not a spineplan output folder (no {MARKER}); "
                                 "it would be replaced as a whole: give a new or empty folder")
    _check_writable(out, option)
    return out


# -- staging and swapping ------------------------------------------------------------------------
def _sibling_pattern(out: Path, what: str) -> re.Pattern:
    return re.compile(rf"^\.{re.escape(out.name)}\.{what}-(\d+)-")


def recover_interrupted(out: Path) -> None:
    """Undo what killed runs left beside ``out``: put back an old folder moved away between two
    renames (only when ``out`` is missing), delete staging and old folders of dead processes."""
    out = Path(out)
    parent = out.parent
    if not parent.is_dir():
        return
    olds = sorted((p for p in parent.iterdir() if (m := _sibling_pattern(out, "old").match(p.name))
                   and not pid_alive(int(m.group(1)))), key=lambda p: p.stat().st_mtime)
    if olds and not out.exists():
        os.rename(olds.pop(), out)
    for p in parent.iterdir():
        m = _sibling_pattern(out, "staging").match(p.name)
        if (m and not pid_alive(int(m.group(1)))) or p in olds:
            shutil.rmtree(p, ignore_errors=True)


def make_staging(out: Path) -> Path:
    """Create the hidden sibling folder in which the new ``out`` is built."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    recover_interrupted(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-{os.getpid()}-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # an ordinary folder's permissions, not mkdtemp's 0700
    return staging


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2``); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    if fn(_AT_FDCWD, os.fsencode(str(a)), _AT_FDCWD, os.fsencode(str(b)), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in_two_steps(staging: Path, out: Path) -> None:
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{os.getpid()}-", dir=out.parent))
    os.rmdir(old)
    os.rename(out, old)
    try:
        os.rename(staging, out)
    except BaseException:
        os.rename(old, out)
        raise
    os.rename(old, staging)  # ``staging`` now holds the old folder, as after an exchange


def publish_folder(staging: Path, out: Path) -> None:
    """Replace ``out`` as a whole by the complete folder ``staging`` (its sibling).

    After the call ``staging`` holds the previous ``out`` (or nothing) and is deleted.
    An existing ``out`` is replaced only when it is empty or a spineplan output.
    """
    staging, out = Path(staging), Path(out)
    if not out.exists():
        os.rename(staging, out)
        return
    if not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file()):
        raise InputError(str(out), "exists and is not a spineplan output folder; it is left as it was")
    if not _exchange(staging, out):
        _swap_in_two_steps(staging, out)
    shutil.rmtree(staging, ignore_errors=True)


def discard(staging: Path | None) -> None:
    """Delete a staging folder (any exit path)."""
    if staging is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
