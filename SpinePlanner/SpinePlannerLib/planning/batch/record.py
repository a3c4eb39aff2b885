"""``batch.json`` and ``batch.csv``: the state of every case, rewritten atomically as cases finish.

Case status: ``pending`` (not started or running), ``done`` (planned now), ``reused`` (``--resume``
found a complete plan with the same inputs hash), ``failed`` (with ``reason``: bad input, internal
error, the worker process died), ``interrupted`` (Ctrl-C before it finished). Times in seconds.
"""

from __future__ import annotations

import time
from pathlib import Path

from SpinePlannerLib.core.imageio import write_text_atomic
from SpinePlannerLib.planning.batch.tables import KEY_COLUMNS
from SpinePlannerLib.planning.pipeline import write_json_atomic
from SyntheticCTCheckLib.cohort import csv_text

STATUSES = ("pending", "done", "reused", "failed", "interrupted")
CSV_COLUMNS = ("case", "status", "reason", "seconds", "peak_rss_mb", "worker", "started_utc", "finished_utc",
               "plan") + KEY_COLUMNS
BATCH_FORMAT = "spineplan-batch/1"


class BatchRecord:
    """The batch's record in ``out_dir`` (``batch.json`` + ``batch.csv``); one entry per case, in order."""

    def __init__(self, out_dir, *, source: str, settings: dict):
        self.out_dir = Path(out_dir)
        self.entries: dict[str, dict] = {}
        self.doc = {"format": BATCH_FORMAT, "source": source, "settings": settings,
                    "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "finished": False,
                    "interrupted": False, "cluster": {}}
        self._t0 = time.perf_counter()

    def add(self, case, inputs_hash: str) -> None:
        self.entries[case.case_id] = {"case": case.case_id, "source": case.source, "status": "pending",
                                      "reason": "", "inputs_hash": inputs_hash, "inputs": case.describe_inputs(),
                                      "notes": list(case.notes)}

    def update(self, case_id: str, **fields) -> dict:
        entry = self.entries[case_id]
        entry.update(fields)
        if entry["status"] in ("done", "reused"):
            entry["plan"] = f"{case_id}/plan.json"
        return entry

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for e in self.entries.values():
            out[e["status"]] += 1
        return out

    def write(self) -> None:
        """Rewrite ``batch.json`` and ``batch.csv`` atomically."""
        doc = {**self.doc, "updated_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "elapsed_seconds": round(time.perf_counter() - self._t0, 3), "counts": self.counts(),
               "cases": list(self.entries.values())}
        write_json_atomic(doc, self.out_dir / "batch.json")
        rows = [{**(e.get("results") or {}), **e} for e in self.entries.values()]
        write_text_atomic(self.out_dir / "batch.csv", csv_text(rows, CSV_COLUMNS))
