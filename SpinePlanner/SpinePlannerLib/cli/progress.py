"""Terminal progress display for the command line (stderr)."""

from __future__ import annotations

import sys
import time


class TerminalProgress:
    """Factory of per-stage ``progress(fraction, message)`` callbacks printing to stderr.

    On a terminal a single line is redrawn; otherwise one line per stage start and end is
    printed (logs stay readable in CI).
    """

    def __init__(self, stream=None, *, enabled: bool = True):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0

    def __call__(self, stage: str):
        if not self.enabled:
            return lambda fraction, message: None
        if not self.tty:
            print(f"[spineplan] {stage} ...", file=self.stream, flush=True)

        def progress(fraction: float, message: str) -> None:
            now = time.monotonic()
            if self.tty and (now - self._last > 0.1 or fraction >= 1.0):
                bar = "#" * int(20 * min(max(fraction, 0.0), 1.0))
                self.stream.write(f"\r[spineplan] {stage:<20} [{bar:<20}] {100 * fraction:5.1f}% {message[:50]:<50}")
                if fraction >= 1.0:
                    self.stream.write("\n")
                self.stream.flush()
                self._last = now

        return progress
