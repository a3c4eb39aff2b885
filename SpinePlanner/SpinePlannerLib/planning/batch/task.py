"""The Dask task of a batch: plan one case inside a worker process (``spineplan plan`` semantics).

The task never raises for a case's own problems: bad input and internal errors come back as a
``failed`` result with the reason (the traceback in ``batch_logs/<case>.log``). Only the death of
the worker process itself (killed, crashed, out of memory) reaches the client, as Dask's
``KilledWorker``. While the case runs, ``.batch/running/<case>.json`` names the process (host,
pid) planning it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import traceback
from pathlib import Path

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS",
              "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
"""Thread-count variables of the numerical libraries, set to ``threads_per_case`` for each case."""


def thread_env(threads: int) -> dict[str, str]:
    """The environment that limits one case to ``threads`` threads (worker processes start with it)."""
    return {k: str(int(threads)) for k in THREAD_ENV}


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _vm_hwm_mb() -> float | None:
    """The process's peak resident memory since the last reset (Linux ``VmHWM``), MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


class PeakMemory:
    """Peak resident memory (MiB) of this process during the ``with`` block.

    On Linux the kernel's peak counter is reset on entry (``/proc/self/clear_refs``) and read on
    exit (``VmHWM``): exact. Elsewhere the resident size is sampled every ``interval`` s.
    """

    def __init__(self, interval: float = 0.1):
        import psutil

        self._proc = psutil.Process()
        self.interval = interval
        self.start_mb = self.peak_mb = self._proc.memory_info().rss / 2**20
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._kernel = False

    def _run(self):
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, self._proc.memory_info().rss / 2**20)

    def __enter__(self):
        try:
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            self._kernel = _vm_hwm_mb() is not None
        except OSError:
            self._kernel = False
        if not self._kernel:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._kernel:
            self.peak_mb = max(self.peak_mb, _vm_hwm_mb() or 0.0)
        else:
            self._stop.set()
            self._thread.join()
        self.peak_mb = max(self.peak_mb, self._proc.memory_info().rss / 2**20)


def _limit_threads(threads: int) -> None:
    os.environ.update(thread_env(threads))
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(threads))


def plan_case(case, out_root: str, *, inputs_hash: str, threads: int = 1, write_scene: bool = True) -> dict:
    """Plan ``case`` (a :class:`.cases.BatchCase`) into ``out_root/<case id>``; returns its batch entry.

    The plan is published atomically by :func:`~SpinePlannerLib.planning.pipeline.run_plan`
    with ``inputs_hash`` recorded in ``plan.json``. ``threads`` bounds the numerical libraries.
    """
    from SpinePlannerLib.core.errors import InputError
    from SpinePlannerLib.planning.batch.tables import key_results
    from SpinePlannerLib.planning.pipeline import run_plan

    out_root = Path(out_root)
    marker = out_root / ".batch" / "running" / f"{case.case_id}.json"
    marker.parent.mkdir(parents=True, exist_ok=True)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    marker.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started_utc": utc_now()}))
    entry = {"case": case.case_id, "status": "done", "reason": "", "started_utc": utc_now(), "worker": worker,
             "threads": threads}
    t0 = time.perf_counter()
    try:
        _limit_threads(threads)
        with PeakMemory() as mem:
            try:
                plan = run_plan(case.to_inputs(), out_root / case.case_id, write_scene=write_scene,
                                extra_plan={"inputs_hash": inputs_hash})
                entry["results"] = key_results(plan)
            except InputError as exc:
                entry.update(status="failed", reason=f"bad input: {exc}")
            except Exception as exc:  # the batch goes on: record the reason, keep the traceback
                entry.update(status="failed", reason=f"internal error: {type(exc).__name__}: {exc}")
                log = out_root / "batch_logs" / f"{case.case_id}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(traceback.format_exc())
                entry["log"] = str(log.relative_to(out_root))
        entry["peak_rss_mb"] = round(mem.peak_mb, 1)
        entry["start_rss_mb"] = round(mem.start_mb, 1)
    finally:
        marker.unlink(missing_ok=True)
    entry["seconds"] = round(time.perf_counter() - t0, 3)
    entry["finished_utc"] = utc_now()
    return entry
