"""Run a batch of cases on Dask: a local cluster of worker processes, or an existing cluster.

One Dask task per case (:func:`.task.plan_case`), each running in a worker process with one
thread, so cases never share a process. Locally a ``LocalCluster`` on 127.0.0.1 is started
with ``workers`` processes of ``threads_per_case`` numerical threads each (workers x threads <=
cores, and a memory limit per worker: total memory / workers unless given); with
``scheduler="tcp://host:port"`` the batch runs on that cluster (its workers should have
``--nthreads 1``; their ``--memory-limit`` is the limit per case; the output folder must be on a
file system every worker sees).

A worker process that dies while planning (killed, crashed, over its memory limit: the nanny
restarts it) makes Dask retry the case on another worker ``retries`` times (the scheduler's
``allowed-failures``), then report ``KilledWorker``: the case is recorded failed with that
reason and the batch goes on. Ctrl-C cancels what has not finished, closes the cluster and
records those cases as interrupted; finished cases stay complete (published atomically).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.planning.batch.fingerprint import inputs_hash
from SpinePlannerLib.planning.batch.progress import BatchProgress
from SpinePlannerLib.planning.batch.record import BatchRecord
from SpinePlannerLib.planning.batch.tables import key_results, write_cohort_tables
from SpinePlannerLib.planning.batch.task import plan_case, thread_env

MAX_REQUEUE = 3
"""Times a case that never started is resubmitted after the worker it was queued on died."""
DEFAULT_MEMORY_PER_CASE = 2 * 2**30
"""Bytes a local worker is given at least when sizing the cluster (see benchmarks/README.md)."""


@dataclass
class BatchOptions:
    """Settings of a batch (``spineplan batch`` options)."""

    out: Path
    workers: int | None = None
    threads_per_case: int | None = None
    scheduler: str | None = None
    resume: bool = False
    memory_limit: str | None = None  # per worker: "4GiB", "2000MB", bytes, or None (auto)
    retries: int = 1
    write_scene: bool = True
    dashboard: bool = True


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def size_local_cluster(n_cases: int, opts: BatchOptions, *, cores: int, memory_bytes: int) -> tuple[int, int, int]:
    """``(workers, threads per case, memory limit per worker in bytes)`` for a local cluster.

    Workers x threads <= cores unless both are given; workers <= cases to run; each worker gets at
    least the memory limit asked for (default: all memory shared, at least
    :data:`DEFAULT_MEMORY_PER_CASE` each).
    """
    from dask.utils import parse_bytes

    limit = parse_bytes(opts.memory_limit) if opts.memory_limit else None
    threads = opts.threads_per_case or (max(1, cores // opts.workers) if opts.workers else 1)
    if threads < 1 or (opts.workers is not None and opts.workers < 1):
        raise InputError("--workers/--threads-per-case", "must be at least 1")
    workers = opts.workers or max(1, cores // threads)
    if not opts.workers:
        workers = min(workers, max(1, memory_bytes // (limit or DEFAULT_MEMORY_PER_CASE)))
    workers = max(1, min(workers, n_cases))
    return workers, threads, int(limit or memory_bytes // workers)


def plan_is_current(case_dir: Path, digest: str) -> dict | None:
    """The plan in ``case_dir`` when it is complete and was made from the same inputs hash, else None."""
    path = case_dir / "plan.json"
    try:
        plan = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return plan if plan.get("inputs_hash") == digest else None


def remove_staging(out_dir: Path, case_id: str) -> None:
    """Remove what a killed case left behind (its staging folder, its running marker)."""
    for p in out_dir.glob(f".{case_id}.staging-*"):
        shutil.rmtree(p, ignore_errors=True)
    (out_dir / ".batch" / "running" / f"{case_id}.json").unlink(missing_ok=True)


def start_client(opts: BatchOptions, n_todo: int, progress: BatchProgress):
    """A Dask client (and the local cluster it owns, or None) and the cluster's description."""
    import dask
    from distributed import Client, LocalCluster

    # a local worker holds exactly one case (saturation 1.0): a worker death touches only the case it ran;
    # cases keep no data in Dask, so nothing to spill and no pausing (a paused idle worker would stall
    # the batch): the nanny only restarts a worker over 95 % of its limit, failing that case
    dask.config.set({"distributed.scheduler.allowed-failures": int(opts.retries),
                     "distributed.scheduler.worker-saturation": 1.0,
                     "distributed.worker.memory.target": False, "distributed.worker.memory.spill": False,
                     "distributed.worker.memory.pause": False})
    if opts.scheduler:
        try:
            client = Client(opts.scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise InputError("--scheduler", f"cannot reach the Dask scheduler at {opts.scheduler} ({exc})") from None
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        services = client.scheduler_info(n_workers=0).get("services", {})
        info = {"scheduler": opts.scheduler, "workers": len(workers), "threads_per_case": opts.threads_per_case or 1,
                "worker_threads": sorted({w["nthreads"] for w in workers}),
                "dashboard": client.dashboard_link if "dashboard" in services else None}
        try:  # how many worker deaths a case survives there (read, never changed; a lambda: pickled by value)
            info["retries"] = client.run_on_scheduler(lambda dask_scheduler: int(dask_scheduler.allowed_failures))
        except Exception:  # a scheduler that refuses to run code: unknown
            info["retries"] = None
        if info["retries"] is not None and info["retries"] != opts.retries:
            progress.message(f"note: this cluster retries a case {info['retries']} time(s) after its worker died "
                             "(its distributed.scheduler.allowed-failures setting), not --retries")
        if any(w["nthreads"] > 1 for w in workers):
            progress.message("warning: workers with more than one thread run several cases in one process; "
                             "start them with `dask worker --nthreads 1`")
        return client, None, info
    import psutil

    workers, threads, limit = size_local_cluster(n_todo, opts, cores=available_cores(),
                                                 memory_bytes=psutil.virtual_memory().total)
    try:
        import bokeh  # noqa: F401 - the dashboard needs it

        dashboard = ":0" if opts.dashboard else None
    except ImportError:
        dashboard = None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=limit,
                           host="127.0.0.1", dashboard_address=dashboard, silence_logs=logging.CRITICAL,
                           env=thread_env(threads))
    client = Client(cluster)
    info = {"scheduler": "local", "workers": workers, "threads_per_case": threads, "memory_limit_bytes": limit,
            "retries": int(opts.retries), "dashboard": client.dashboard_link if dashboard else None}
    return client, cluster, info


def _failed_future(fut, info: dict) -> str:
    from distributed.scheduler import KilledWorker

    exc = fut.exception()
    if isinstance(exc, KilledWorker):
        limit = info.get("memory_limit_bytes")
        return ("worker process died while planning this case (killed, crashed or out of memory"
                + (f"; memory limit {limit / 2**30:.1f} GiB per case" if limit else "") + ")")
    return f"task failed: {type(exc).__name__}: {exc}"


def _triage(cases, opts: BatchOptions, record: BatchRecord, progress: BatchProgress) -> list:
    """Record every case; return those to run (not broken, not already planned with ``--resume``)."""
    todo = []
    options = {"write_scene": opts.write_scene}
    for case in cases:
        digest = inputs_hash(case, options=options)
        record.add(case, digest)
        if case.error:
            entry = record.update(case.case_id, status="failed", reason=f"bad input: {case.error}")
            progress.case_finished(entry, record.counts(), 0, 0)
        elif opts.resume and (plan := plan_is_current(opts.out / case.case_id, digest)):
            entry = record.update(case.case_id, status="reused", reason="", results=key_results(plan))
            progress.case_finished(entry, record.counts(), 0, 0)
        else:
            remove_staging(opts.out, case.case_id)  # left by an earlier run that was killed
            todo.append((case, digest))
    return todo


def _never_started(fut, out_dir: Path, case_id: str) -> bool:
    """True when ``fut`` failed with ``KilledWorker`` but the case never started on the dead worker.

    A scheduler may queue a second task on a one-thread worker; when that worker dies, Dask
    counts the queued task as a suspect too. The running marker tells them apart.
    """
    from distributed.scheduler import KilledWorker

    return isinstance(fut.exception(), KilledWorker) and not (out_dir / ".batch" / "running" / f"{case_id}.json").exists()


def _collect(submit, todo: list, opts: BatchOptions, record: BatchRecord, progress: BatchProgress, info: dict,
             client) -> None:
    """Submit every case, record each as it finishes (resubmitting cases that never started on a dead worker)."""
    from distributed import as_completed

    futures = {submit(case, digest, 0): (case, digest, 0) for case, digest in todo}
    pending = as_completed(list(futures))
    finished_here = 0
    while not pending.is_empty():
        for fut in pending.next_batch(block=False):
            case, digest, attempt = futures.pop(fut)
            if fut.status == "finished":
                result = fut.result()
                entry = record.update(case.case_id, **{k: v for k, v in result.items() if k != "case"})
            elif attempt < MAX_REQUEUE and _never_started(fut, opts.out, case.case_id):
                new = submit(case, digest, attempt + 1)
                futures[new] = (case, digest, attempt + 1)
                pending.add(new)
                continue
            else:
                entry = record.update(case.case_id, status="failed", reason=_failed_future(fut, info))
                remove_staging(opts.out, case.case_id)
            finished_here += 1
            record.write()
            running = sum(len(v) for v in client.processing().values())
            progress.case_finished(entry, record.counts(), running, finished_here)
        if not pending.is_empty():
            progress.update(record.counts(), sum(len(v) for v in client.processing().values()), finished_here)
            time.sleep(0.25)


def run_batch(cases, opts: BatchOptions, *, source: str, progress: BatchProgress | None = None) -> BatchRecord:
    """Plan every case into ``opts.out/<case id>``; returns the record (also on disk as batch.json/csv).

    Raises ``KeyboardInterrupt`` after recording unfinished cases as interrupted.
    """
    opts.out = Path(opts.out)
    opts.out.mkdir(parents=True, exist_ok=True)
    progress = progress or BatchProgress(len(cases), enabled=False)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()}
    record = BatchRecord(opts.out, source=source, settings=settings)
    todo = _triage(cases, opts, record, progress)
    record.write()
    client = cluster = None
    try:
        if todo:
            client, cluster, info = start_client(opts, len(todo), progress)
            record.doc["cluster"] = info
            progress.message(f"{len(todo)} case(s) to plan on {info['workers']} worker(s) "
                             f"({info['scheduler']}), {info['threads_per_case']} thread(s) per case")
            if info.get("dashboard"):
                progress.message(f"Dask dashboard: {client.dashboard_link}")

            def submit(case, digest, attempt):
                return client.submit(plan_case, case, str(opts.out), inputs_hash=digest,
                                     threads=info["threads_per_case"], write_scene=opts.write_scene,
                                     key=f"spineplan-{case.case_id}-{digest[:12]}-{attempt}", pure=False)

            _collect(submit, todo, opts, record, progress, info, client)
        record.doc["finished"] = True
    except KeyboardInterrupt:
        record.doc["interrupted"] = True
        for e in record.entries.values():
            if e["status"] == "pending":
                e.update(status="interrupted", reason="batch interrupted (Ctrl-C) before this case finished")
        raise
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        for cid, e in record.entries.items():
            if e["status"] == "interrupted":
                remove_staging(opts.out, cid)
        record.doc["cohort"] = write_cohort_tables(opts.out, list(record.entries.values()))
        record.write()
        progress.close(record.counts())
    return record
