"""A plain progress bar for long-running management commands."""

from __future__ import annotations

import time

from django.core.management.base import OutputWrapper


class Progress:
    """Prints "label [#####     ] 50% 500/1000" on one line, at most a few times a second."""

    def __init__(self, stream: OutputWrapper, total: int, label: str, width: int = 30) -> None:
        self.stream, self.total, self.label, self.width = stream, total, label, width
        self.done = 0
        self._shown = 0.0

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._shown >= 0.2 or self.done >= self.total:
            self._shown = now
            self._draw()

    def _draw(self) -> None:
        share = self.done / self.total if self.total else 1.0
        filled = int(share * self.width)
        bar = "#" * filled + " " * (self.width - filled)
        self.stream.write(
            f"\r{self.label} [{bar}] {share:4.0%} {self.done}/{self.total}", ending=""
        )
        self.stream.flush()

    def finish(self) -> None:
        self._draw()
        self.stream.write("")
