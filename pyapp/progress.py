"""A dependency-free terminal progress bar for long CLI work (import, embedding, ingest)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``: short enough for a one-line bar."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressBar:
    """Call with ``(done, total)``; redraws at most 10 times a second, only on a terminal unless forced.

    Shows the count, the rate (``unit`` per second since the start) and an ETA from that rate, so a
    long run tells the user how long is left rather than only how long it took."""

    def __init__(
        self, label: str, stream: TextIO | None = None, force: bool = False, width: int = 30, unit: str = ""
    ) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = force or self.stream.isatty()
        self.width = width
        self.unit = unit
        self._last = 0.0
        self._shown = 0
        self._start = time.monotonic()

    def line(self, done: int, total: int, elapsed: float) -> str:
        """The bar's text for ``done`` of ``total`` after ``elapsed`` seconds (no carriage return)."""
        fraction = 0.0 if total <= 0 else min(1.0, done / total)
        filled = int(fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        unit = f" {self.unit}" if self.unit else ""
        rate = done / elapsed if elapsed > 0 else 0.0
        if done >= total:
            tail = f"in {_duration(elapsed)}"
        elif rate > 0:
            tail = f"ETA {_duration((total - done) / rate)}"
        else:
            tail = "ETA ?"
        return f"{self.label} [{bar}] {fraction * 100:5.1f}% {done}/{total}{unit} {rate:.1f}{unit}/s {tail}"

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        text = self.line(done, total, now - self._start)
        self.stream.write("\r" + text.ljust(self._shown))  # spaces cover a longer earlier line
        self._shown = len(text)
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()
