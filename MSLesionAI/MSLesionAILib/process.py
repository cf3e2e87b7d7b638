"""Run the `mslesionai` command line as a subprocess that reports progress and can be cancelled.

Slicer stays responsive because the work happens in another process: a reader thread turns the
process's ``MSLESIONAI-PROGRESS`` lines into a queue, which the module widget drains from a
``qt.QTimer`` (no Qt here). Cancel stops the whole process tree without blocking the caller:
SIGTERM at once (the command line then removes its partial output), and a stopper thread sends
SIGKILL to what is left after a grace period, then removes what a killed command left of its
output.

The workflow takes any `Runner`, so tests and scripts can swap in a fake one.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .cli import EXIT_CANCELLED
from .errors import Cancelled, MSLesionAIError
from .progress import parse_progress_line

LIBRARY_PARENT = Path(__file__).resolve().parent.parent
CANCEL_GRACE_S = 5.0


class Run(Protocol):
    """A started job: poll it from a timer, or wait for it."""

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""

    def progress(self) -> list[tuple[float, str]]:
        """The (fraction, message) updates since the last call."""

    def wait(self) -> int:
        """Block until the job ends; its exit code."""

    def cancel(self) -> None:
        """Start stopping the job and everything it started; returns at once (`wait` returns
        once it has ended)."""

    def error(self) -> str:
        """What went wrong, in one line, when the exit code is not 0."""


Runner = Callable[[Sequence[str]], Run]


@dataclass
class ScratchJob:
    """A started command and its scratch folder (exported inputs, output), which goes when the
    job ends or is cancelled."""

    run: Run
    folder: Path

    def wait_for_success(self, what: str) -> None:
        """Wait for the command; `Cancelled` or `MSLesionAIError` (its error line) unless it
        succeeded."""
        code = self.run.wait()
        if code == EXIT_CANCELLED:
            raise Cancelled(f"{what}: cancelled")
        if code != 0:
            raise MSLesionAIError(f"{what}: {self.run.error()}")

    def cancel(self) -> None:
        """Stop the command; the scratch folder goes once it has ended (in a thread, so the
        caller does not wait; not a daemon, so that it still happens when Slicer quits)."""
        self.run.cancel()
        threading.Thread(target=self._discard_when_ended, name="mslesionai-discard").start()

    def _discard_when_ended(self) -> None:
        self.run.wait()
        self.discard()

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def python_executable() -> str:
    """Slicer's own Python launcher inside Slicer (PythonSlicer), else this interpreter."""
    return shutil.which("PythonSlicer") or sys.executable


def cli_command(args: Sequence[str]) -> list[str]:
    """The full command line for ``mslesionai ARGS`` with machine-readable progress."""
    return [python_executable(), "-m", "MSLesionAILib.cli", "--progress", "lines", *args]


class ProcessRun:
    """A subprocess whose output a reader thread parses; stderr is merged into stdout."""

    def __init__(self, command: Sequence[str], cancel_grace_s: float = CANCEL_GRACE_S) -> None:
        # UTF-8 both ways: on Windows a pipe would otherwise take the locale's code page, in
        # which the command line's "≥", "µL" or "rim−" cannot all be written.
        environment = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
        environment["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(LIBRARY_PARENT), environment.get("PYTHONPATH")) if p)
        self.command = list(command)
        self.cancel_grace_s = cancel_grace_s
        self.stopper: threading.Thread | None = None
        self.process = subprocess.Popen(
            list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            encoding="utf-8", errors="replace", env=environment, **_new_process_group())
        self.updates: queue.Queue[tuple[float, str]] = queue.Queue()
        self.output: deque[str] = deque(maxlen=200)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            update = parse_progress_line(line)
            if update is None:
                self.output.append(line.rstrip("\n"))
            else:
                self.updates.put(update)

    def poll(self) -> int | None:
        code = self.process.poll()
        if code is not None:
            self._finish()
        return None if self.stopper is not None and self.stopper.is_alive() else code

    def progress(self) -> list[tuple[float, str]]:
        updates = []
        while not self.updates.empty():
            updates.append(self.updates.get_nowait())
        return updates

    def wait(self) -> int:
        """The exit code once the command has ended, and after a cancel once its partial
        output is gone."""
        self.process.wait()
        self._finish()
        if self.stopper is not None:
            self.stopper.join()
        return self.process.returncode

    def _finish(self) -> None:
        """Once the command has exited: end what it left running (a worker would hold its
        output open, and the reader with it), then read the rest of its output."""
        _signal_tree(self.process, kill=True)
        self.reader.join()

    def cancel(self) -> None:
        """SIGTERM to the process tree now; the rest (SIGKILL after the grace period, then
        removing a killed command's partial output) in a stopper thread, so that the caller
        (Slicer's interface) is not blocked. Not a daemon thread: quitting Slicer waits for it."""
        if self.stopper is not None:
            return
        if self.process.poll() is None:
            _signal_tree(self.process, kill=False)
        self.stopper = threading.Thread(target=self._stop, name="mslesionai-cancel")
        self.stopper.start()

    def _stop(self) -> None:
        try:
            self.process.wait(self.cancel_grace_s)
        except subprocess.TimeoutExpired:
            pass
        _signal_tree(self.process, kill=True)  # what is left of the tree, the leader included
        self.process.wait()
        self._finish()
        for partial in partial_outputs(self.command):
            shutil.rmtree(partial, ignore_errors=True)

    def error(self) -> str:
        lines = [line for line in self.output if line.strip()]
        errors = [line for line in lines if line.startswith("mslesionai:")]
        return (errors or lines or [f"exit code {self.process.returncode}"])[-1]


def run_cli(args: Sequence[str]) -> ProcessRun:
    """The real `Runner`: ``mslesionai ARGS`` in a subprocess of Slicer's Python."""
    return ProcessRun(cli_command(args))


def partial_outputs(command: Sequence[str]) -> list[Path]:
    """The hidden folders `atomic.output_directory` writes beside the command's ``--out``
    before renaming them: what a command killed before it could clean up leaves behind."""
    outs = [value for option, value in zip(command, [*command[1:], ""], strict=True)
            if option == "--out"]
    outs += [arg.split("=", 1)[1] for arg in command if arg.startswith("--out=")]
    return [partial for out in map(Path, outs)
            for partial in out.parent.glob(f".{out.name}.partial-*")]


def _new_process_group() -> dict:
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def _signal_tree(process: subprocess.Popen, kill: bool) -> None:
    """SIGTERM (or SIGKILL) to the process's whole group; ``taskkill /T`` on Windows."""
    if sys.platform == "win32":
        force = ["/F"] if kill else []
        subprocess.run(["taskkill", "/T", *force, "/PID", str(process.pid)],
                       capture_output=True, check=False)
        return
    try:
        os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
    except ProcessLookupError:
        pass  # the group is gone already
