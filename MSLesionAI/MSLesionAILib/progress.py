"""One progress-and-cancel interface for all long work.

A pipeline receives a `Progress` and calls ``progress.update(fraction, message)`` (fraction of
its own work, 0..1) and ``progress.sub(start, end)`` to hand a slice of its range to a stage.
Every update checks for cancellation and raises `Cancelled`, so cancel stops at the next update.
The sinks show it: a bar on a terminal, or machine-readable lines for the Slicer modules.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TextIO

from .errors import Cancelled

Sink = Callable[[float, str], None]
PROGRESS_LINE_PREFIX = "MSLESIONAI-PROGRESS"


class Progress:
    """Maps a stage's own 0..1 onto its slice of the whole job and forwards it to a sink."""

    def __init__(self, sink: Sink | None = None, cancel: threading.Event | None = None,
                 start: float = 0.0, end: float = 1.0) -> None:
        self.sink = sink
        self.cancel = cancel or threading.Event()
        self.start, self.end = start, end

    def update(self, fraction: float, message: str = "") -> None:
        self.check_cancelled()
        if self.sink is not None:
            fraction = min(max(fraction, 0.0), 1.0)
            self.sink(self.start + fraction * (self.end - self.start), message)

    def sub(self, start: float, end: float) -> Progress:
        """A child covering [start, end] of this progress's own range."""
        span = self.end - self.start
        return Progress(self.sink, self.cancel, self.start + start * span, self.start + end * span)

    def stages(self, names: list[str]) -> dict[str, Progress]:
        """Equal slices of this progress's range, one per named stage, in order."""
        return {name: self.sub(number / len(names), (number + 1) / len(names))
                for number, name in enumerate(names)}

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("cancelled by the user")


def line_sink(stream: TextIO = sys.stdout) -> Sink:
    """Machine-readable lines: ``MSLESIONAI-PROGRESS <percent> <message>``, flushed."""

    def write(fraction: float, message: str) -> None:
        stream.write(f"{PROGRESS_LINE_PREFIX} {100 * fraction:.1f} {message}\n")
        stream.flush()

    return write


def bar_sink(stream: TextIO = sys.stderr, width: int = 30) -> Sink:
    """A one-line progress bar redrawn in place on a terminal."""

    def draw(fraction: float, message: str) -> None:
        filled = int(round(width * fraction))
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {100 * fraction:5.1f}% "
                     f"{message[:50]:<50}")
        if fraction >= 1.0:
            stream.write("\n")
        stream.flush()

    return draw


def parse_progress_line(line: str) -> tuple[float, str] | None:
    """The (fraction, message) of a progress line, or None for any other output line."""
    if not line.startswith(PROGRESS_LINE_PREFIX + " "):
        return None
    _, percent, *message = line.rstrip("\n").split(" ", 2)
    return float(percent) / 100.0, (message[0] if message else "")
