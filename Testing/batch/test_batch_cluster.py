"""`spineplan batch --scheduler`: the same batch on a Dask scheduler and two worker processes started
by the test (`dask scheduler` / `dask worker` on 127.0.0.1), identical plans; a worker killed
mid-case is recorded as failed with the reason and the batch goes on."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from batchcases import REPO, worker_env

from SpinePlannerLib.cli.main import main

PLANNED = ("p1", "p2", "p3")


def _compare_plans():
    spec = importlib.util.spec_from_file_location("compare_plans", REPO / "Utilities" / "compare_plans.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """The address of a scheduler with two single-threaded worker processes (stopped afterwards)."""
    from distributed import Client

    d = tmp_path_factory.mktemp("dask-cluster")
    sched_file = d / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    # a case whose worker dies is not retried on this cluster (the scheduler's setting, see README)
    sched_env = {**worker_env(), "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    procs = [subprocess.Popen(dask + ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                      "--scheduler-file", str(sched_file)], env=sched_env, cwd=d,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(600):
            if sched_file.exists() and sched_file.stat().st_size:
                break
            time.sleep(0.1)
        for n in range(2):
            procs.append(subprocess.Popen(
                dask + ["worker", "--scheduler-file", str(sched_file), "--nthreads", "1", "--host", "127.0.0.1",
                        "--memory-limit", "3GiB", "--no-dashboard", "--name", f"w{n}"],
                env=worker_env(), cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(scheduler_file=str(sched_file), timeout="30s") as client:
            client.wait_for_workers(2, timeout=120)
            address = client.scheduler.address
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_same_batch_on_a_scheduler_with_two_workers_gives_identical_plans(local_batch, cohort_cases, dask_cluster,
                                                                          tmp_path):
    _, local_out = local_batch
    out = tmp_path / "out"
    assert main(["--quiet", "batch", str(cohort_cases), "--out", str(out), "--scheduler", dask_cluster,
                 "--no-scene"]) == 3
    batch = json.loads((out / "batch.json").read_text())
    assert batch["cluster"]["scheduler"] == dask_cluster and batch["cluster"]["workers"] == 2
    assert batch["cluster"]["retries"] == 0
    workers = {e["worker"] for e in batch["cases"] if e["status"] == "done"}
    assert len(workers) >= 1 and all(w.split(":")[1] != str(os.getpid()) for w in workers)
    local = {e["case"]: e for e in json.loads((local_out / "batch.json").read_text())["cases"]}
    compare = _compare_plans()
    for e in batch["cases"]:
        assert e["status"] == local[e["case"]]["status"] and e["reason"] == local[e["case"]]["reason"]
        if e["case"] in PLANNED:
            a = json.loads((local_out / e["case"] / "plan.json").read_text())
            b = json.loads((out / e["case"] / "plan.json").read_text())
            assert compare.diff(a, b, roots_a=(str(local_out / e["case"]),), roots_b=(str(out / e["case"]),)) == []
            assert compare.compare_labels(local_out / e["case"], out / e["case"]) == []
    for name in ("sct_cohort_cases.csv", "sct_cohort_summary.csv", "cohort_cases.csv"):
        assert (out / "cohort" / name).read_text() == (local_out / "cohort" / name).read_text()


def _kill_worker_of(case_id: str, out, stop: threading.Event, killed: list) -> None:
    marker = out / ".batch" / "running" / f"{case_id}.json"
    while not stop.is_set():
        try:
            pid = json.loads(marker.read_text())["pid"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
            continue
        os.kill(pid, signal.SIGKILL)  # the worker process planning this case, mid-case
        killed.append(pid)
        return


def test_a_worker_killed_mid_case_is_recorded_failed_and_the_batch_goes_on(cohort_cases, dask_cluster, tmp_path):
    out = tmp_path / "out"
    stop, killed = threading.Event(), []
    watcher = threading.Thread(target=_kill_worker_of, args=("p2", out, stop, killed), daemon=True)
    watcher.start()
    try:
        rc = main(["--quiet", "batch", str(cohort_cases), "--out", str(out), "--scheduler", dask_cluster,
                   "--no-scene"])
    finally:
        stop.set()
        watcher.join()
    assert killed, "the worker of p2 was never seen running"
    assert rc == 3
    status = {e["case"]: e for e in json.loads((out / "batch.json").read_text())["cases"]}
    assert status["p2"]["status"] == "failed" and "worker process died" in status["p2"]["reason"]
    assert status["p1"]["status"] == "done" and status["p3"]["status"] == "done"
    assert not (out / "p2" / "plan.json").exists()
    assert [p.name for p in out.iterdir() if ".staging" in p.name] == []
    assert not (out / ".batch" / "running" / "p2.json").exists()
