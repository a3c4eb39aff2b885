"""Process-level safety of one ``spineplan`` run: private temp folder, signals, error log.

* Every temporary file and cache of a run (the Slicer cache manager's ``spineplan-cache-*``,
  MONAI's out-of-process folders, ...) goes into one private folder
  ``$TMPDIR/spineplan-run-<pid>-XXXX`` (``tempfile.tempdir`` and ``TMPDIR`` point there while the
  run lasts); it is removed on every exit path. Folders left by killed runs (their process is gone)
  are removed by the next run.
* ``SIGTERM``/``SIGHUP`` become ``SystemExit`` so that ``finally`` blocks (staging-folder cleanup)
  run as for Ctrl-C.
* Internal errors are written to a per-run log file ``$TMPDIR/spineplan-error-<time>-<pid>-XXXX.log``
  whose path the one-line message gives.
"""

from __future__ import annotations

import contextlib
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


def sweep_dead_run_folders(tmp_root: Path) -> None:
    """Remove ``spineplan-run-<pid>-*`` folders in ``tmp_root`` whose process no longer exists."""
    with contextlib.suppress(OSError):
        for entry in tmp_root.iterdir():
            m = _RUN_DIR.match(entry.name)
            if m and entry.is_dir() and not entry.is_symlink() and not pid_alive(int(m.group(1))):
                shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def private_tempdir():
    """Point ``tempfile`` (and ``TMPDIR`` for child processes) at a fresh private folder; remove it on exit."""
    root = Path(tempfile.gettempdir())
    sweep_dead_run_folders(root)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{os.getpid()}-", dir=root))
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
