"""A dependency-free terminal progress bar for long CLI work (import, embedding)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Call with ``(done, total)``; redraws at most 10 times a second, only on a terminal unless forced."""

    def __init__(self, label: str, stream: TextIO | None = None, force: bool = False, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = force or self.stream.isatty()
        self.width = width
        self._last = 0.0
        self._start = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        fraction = 0.0 if total <= 0 else min(1.0, done / total)
        filled = int(fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = now - self._start
        self.stream.write(f"\r{self.label} [{bar}] {fraction * 100:5.1f}% {done}/{total} {elapsed:5.1f}s")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()
