"""Process-level safety of one ``spineplan`` run: private temp folder, signals, error log.

* Every temporary file and cache of a run (the Slicer cache manager's ``spineplan-cache-*``,
  MONAI's out-of-process folders, ...) goes into one private folder
  ``$TMPDIR/spineplan-run-<pid>-XXXX`` (``tempfile.tempdir`` and ``TMPDIR`` point there while the
  run lasts); it is removed on every exit path. Folders left by killed runs (no process holds
  their lock file any more) are removed by the next run of the same user.
* ``SIGTERM``/``SIGHUP`` become ``SystemExit`` so that ``finally`` blocks (staging-folder cleanup)
  run as for Ctrl-C.
* Internal errors are written to a per-run log file ``$TMPDIR/spineplan-error-<time>-<pid>-XXXX.log``
  whose path the one-line message gives.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import tempfile
import time
import traceback
from pathlib import Path

from SpinePlannerLib.planning.publish import pid_alive

RUN_PREFIX = "spineplan-run-"
_RUN_DIR = re.compile(rf"^{RUN_PREFIX}(\d+)-")


LOCK_NAME = ".lock"
"""File inside a run folder that its run holds an exclusive ``flock`` on while it lives."""


def _owner_gone(entry: Path) -> bool:
    """True when no live run holds ``entry``'s lock (robust across PID namespaces sharing /tmp)."""
    try:
        fd = os.open(entry / LOCK_NAME, os.O_RDWR)
    except FileNotFoundError:  # created but not yet locked, or an older layout: fall back on the pid
        m = _RUN_DIR.match(entry.name)
        return bool(m) and not pid_alive(int(m.group(1))) and time.time() - entry.stat().st_mtime > 60
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def sweep_dead_run_folders(tmp_root: Path) -> None:
    """Remove this user's ``spineplan-run-*`` folders in ``tmp_root`` that no live run holds."""
    with contextlib.suppress(OSError):
        for entry in tmp_root.iterdir():
            if not _RUN_DIR.match(entry.name) or entry.is_symlink() or not entry.is_dir():
                continue
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == os.getuid() and _owner_gone(entry):
                    shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def private_tempdir():
    """Point ``tempfile`` (and ``TMPDIR`` for child processes) at a fresh private folder; remove it on exit."""
    root = Path(tempfile.gettempdir())
    sweep_dead_run_folders(root)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{os.getpid()}-", dir=root))
    lock = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    old_tempdir, old_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = str(run_dir)
    os.environ["TMPDIR"] = str(run_dir)
    try:
        yield run_dir
    finally:
        tempfile.tempdir = old_tempdir
        if old_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old_env
        shutil.rmtree(run_dir, ignore_errors=True)
        os.close(lock)


def _raise_exit(signum, frame):  # noqa: ARG001 - signal handler signature
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def terminate_as_exit():
    """Turn SIGTERM and SIGHUP into ``SystemExit`` (cleanup runs) while the block lasts (main thread only)."""
    saved = {}
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        for sig in (signal.SIGTERM, signal.SIGHUP):
            saved[sig] = signal.signal(sig, _raise_exit)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def write_error_log(tmp_root: str | None = None) -> Path | None:
    """Write the current exception's traceback to a new per-run log file; return its path."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    try:
        fd, path = tempfile.mkstemp(prefix=f"spineplan-error-{stamp}-{os.getpid()}-", suffix=".log", dir=tmp_root)
        with os.fdopen(fd, "w") as fh:
            fh.write(traceback.format_exc())
    except OSError:
        return None
    return Path(path)
