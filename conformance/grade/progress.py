"""A progress line for batch grading: done/total, what is running, and an ETA.

On a terminal it is one line redrawn with `\\r`; otherwise (CI logs, a file) one plain line per
event, because a log full of carriage returns is unreadable. The ETA is the mean time per
graded submission so far times what is left, divided by the parallel jobs; submissions reused
from an earlier run are not counted in the mean, since they took no time.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, jobs: int, stream: TextIO | None = None) -> None:
        self.total, self.jobs = total, max(1, jobs)
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.done = 0
        self.graded_time = 0.0
        self.graded = 0
        self.running: list[str] = []
        self.t0 = time.monotonic()
        self._lock = threading.Lock()

    def start(self, name: str) -> None:
        with self._lock:
            self.running.append(name)
            self._show(f"grading {name}")

    def finish(self, name: str, score: str, seconds: float, reused: bool) -> None:
        with self._lock:
            if name in self.running:
                self.running.remove(name)
            self.done += 1
            if not reused:
                self.graded += 1
                self.graded_time += seconds
            verb = "up to date" if reused else f"{seconds:.0f} s"
            self._show(f"{name}: {score} ({verb})", event=True)

    def eta(self) -> str:
        if not self.graded:
            return "--:--"
        left = (self.total - self.done) * (self.graded_time / self.graded) / self.jobs
        minutes, seconds = divmod(int(left), 60)
        return f"{minutes:02d}:{seconds:02d}"

    def _bar(self, width: int = 20) -> str:
        filled = width * self.done // max(1, self.total)
        return "#" * filled + "." * (width - filled)

    def _show(self, message: str, event: bool = False) -> None:
        head = f"[{self._bar()}] {self.done}/{self.total} ETA {self.eta()}"
        if self.tty:
            now = ", ".join(self.running) or "-"
            if event:
                self.stream.write("\r\033[K" + message + "\n")
            self.stream.write(f"\r\033[K{head} | running: {now}"[:200])
        else:
            self.stream.write(f"{head} | {message}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
