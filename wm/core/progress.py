"""Progress lines for long stages: counts, rate and time left, at most one line every few seconds."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """``done/total`` of some unit plus a second counter with a rate, printed every ``every`` s."""

    def __init__(self, label: str, total: int, unit: str, rate_unit: str, every: float = 10.0,
                 stream: TextIO | None = None):
        self.label, self.total, self.unit, self.rate_unit = label, total, unit, rate_unit
        self.every, self.stream = every, stream or sys.stdout
        self.done, self.count = 0, 0
        self.start = self._last = time.monotonic()

    def update(self, done: int = 0, count: int = 0) -> None:
        self.done += done
        self.count += count
        now = time.monotonic()
        if now - self._last >= self.every or self.done == self.total:
            self._last = now
            self.print_line()

    def rate(self) -> float:
        return self.count / max(time.monotonic() - self.start, 1e-9)

    def print_line(self) -> None:
        elapsed = time.monotonic() - self.start
        eta = ""
        if 0 < self.done < self.total:
            eta = f" | eta {format_duration(elapsed / self.done * (self.total - self.done))}"
        print(
            f"[{self.label}] {self.done}/{self.total} {self.unit} | {self.count:,} {self.rate_unit}"
            f" | {self.rate():,.0f} {self.rate_unit}/s | {format_duration(elapsed)}{eta}",
            file=self.stream,
            flush=True,
        )
