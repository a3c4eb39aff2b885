"""Progress of a batch on stderr: one redrawn line on a terminal, one line per finished case otherwise.

The overall line reads ``[batch] 4/10 done, 2 running, 1 failed, 1 reused | 0:03:12 elapsed, ~0:04:30 left``;
the estimate is the elapsed time per case finished in this run times the cases still to run,
divided among the cases running side by side.
"""

from __future__ import annotations

import sys
import time


def hms(seconds: float) -> str:
    s = int(round(max(seconds, 0.0)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class BatchProgress:
    """Report the batch's progress (``enabled=False``: silent, e.g. ``--quiet``)."""

    def __init__(self, total: int, *, stream=None, enabled: bool = True):
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = time.monotonic()
        self._line = ""

    def message(self, text: str) -> None:
        """A line of its own (the dashboard address, the cluster size)."""
        if self.enabled:
            self._clear()
            print(f"[batch] {text}", file=self.stream, flush=True)

    def _clear(self) -> None:
        if self.tty and self._line:
            self.stream.write("\r" + " " * len(self._line) + "\r")
            self._line = ""

    def estimate(self, counts: dict, running: int, finished_here: int) -> float | None:
        """Seconds left, from the pace of this run (None before the first case finished)."""
        left = counts.get("pending", 0)
        if not finished_here or not left:
            return None
        per_case = (time.monotonic() - self.t0) / finished_here
        return per_case * max(left - running, 0) + per_case * min(running, left) / 2

    def status_line(self, counts: dict, running: int, finished_here: int) -> str:
        finished = counts["done"] + counts["reused"] + counts["failed"] + counts["interrupted"]
        eta = self.estimate(counts, running, finished_here)
        return (f"[batch] {finished}/{self.total} finished: {counts['done']} done, {running} running, "
                f"{counts['failed']} failed, {counts['reused']} reused | {hms(time.monotonic() - self.t0)} elapsed"
                + (f", ~{hms(eta)} left" if eta is not None else ""))

    def update(self, counts: dict, running: int, finished_here: int) -> None:
        """Redraw the overall line (terminal only)."""
        if self.enabled and self.tty:
            line = self.status_line(counts, running, finished_here)
            self.stream.write("\r" + line.ljust(len(self._line)))
            self.stream.flush()
            self._line = line

    def case_finished(self, entry: dict, counts: dict, running: int, finished_here: int) -> None:
        """One line for a finished case (on a terminal, above the redrawn overall line)."""
        if not self.enabled:
            return
        self._clear()
        why = f": {entry['reason']}" if entry.get("reason") else ""
        secs = f" in {entry['seconds']:.1f} s" if isinstance(entry.get("seconds"), int | float) else ""
        finished = counts["done"] + counts["reused"] + counts["failed"] + counts["interrupted"]
        print(f"[batch] {finished}/{self.total} {entry['case']}: {entry['status']}{secs}{why}", file=self.stream,
              flush=True)
        self.update(counts, running, finished_here)

    def close(self, counts: dict) -> None:
        if self.enabled:
            self._clear()
            print(self.status_line(counts, 0, 0), file=self.stream, flush=True)
