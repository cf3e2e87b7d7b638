"""The subprocess runner with real processes: progress lines, errors, and cancel of a tree."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from MSLesionAILib.process import (
    CANCEL_GRACE_S,
    ProcessRun,
    ScratchJob,
    cli_command,
    partial_outputs,
    run_cli,
)

# A stand-in for a long `mslesionai` command: progress lines, an output folder written
# atomically, SIGTERM turned into `Cancelled` as the command line does, optionally a child
# process (a worker) and optionally deaf to SIGTERM.
HELPER = textwrap.dedent("""
    import signal, subprocess, sys, time
    from MSLesionAILib.atomic import output_directory
    from MSLesionAILib.errors import Cancelled
    from MSLesionAILib.progress import Progress, line_sink

    def cancelled(signal_number, frame):
        raise Cancelled("cancelled")

    assert sys.argv[1] == "--out"
    out, steps, mode = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "deaf" else cancelled)
    if mode == "worker":
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print(f"worker {worker.pid}", flush=True)
    if mode == "fail":
        print("mslesionai: error: flair: file not found: x.nii.gz", file=sys.stderr)
        sys.exit(2)
    progress = Progress(line_sink())
    try:
        with output_directory(out) as partial:
            (partial / "lesions.csv").write_text("lesion_id\\n")
            print("not a progress line", flush=True)
            for step in range(steps):
                progress.update(step / steps, f"step {step}")
                time.sleep(0.05)
            progress.update(1.0, "done")
    except Cancelled:
        sys.exit(130)
""")


@pytest.fixture
def helper(tmp_path: Path):
    script = tmp_path / "fake_cli.py"
    script.write_text(HELPER, encoding="utf-8")

    def start(mode: str = "normal", steps: int = 4, **options) -> ProcessRun:
        return ProcessRun([sys.executable, str(script), "--out", str(tmp_path / "out"),
                           str(steps), mode], **options)

    return start


def wait_for_output(run: ProcessRun, prefix: str, timeout_s: float = 10.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lines = [line for line in run.output if line.startswith(prefix)]
        if lines:
            return lines[0]
        time.sleep(0.02)
    raise AssertionError(f"no output line starting with {prefix!r}")


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").split()[2] != "Z"


def process_ends(pid: int, timeout_s: float = 5.0) -> bool:
    """Whether the process is gone within the timeout: a killed process closes its files (the
    reader's end of output) a moment before the kernel marks it dead, longer on a busy CPU."""
    deadline = time.monotonic() + timeout_s
    while process_exists(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_progress_lines_become_updates_and_other_lines_output(helper, tmp_path):
    run = helper(steps=4)
    assert run.wait() == 0
    assert run.poll() == 0
    assert run.progress() == [(0.0, "step 0"), (0.25, "step 1"), (0.5, "step 2"),
                              (0.75, "step 3"), (1.0, "done")]
    assert run.progress() == []
    assert list(run.output) == ["not a progress line"]
    assert (tmp_path / "out" / "lesions.csv").is_file()


@pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")
def test_a_worker_left_running_by_a_finished_command_is_stopped(helper):
    run = helper("worker", steps=1)
    started = time.monotonic()
    assert run.wait() == 0
    assert time.monotonic() - started < 30.0  # not the worker's 60 s
    assert process_ends(int(wait_for_output(run, "worker ").split()[1]))


def test_failure_reports_the_command_line_error(helper):
    run = helper("fail")
    assert run.wait() == 2
    assert run.error() == "mslesionai: error: flair: file not found: x.nii.gz"


@pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")
def test_cancel_stops_the_process_tree_promptly_and_leaves_no_output(helper, tmp_path):
    run = helper("worker", steps=1000)
    worker = int(wait_for_output(run, "worker ").split()[1])
    while not run.progress():
        time.sleep(0.02)
    started = time.monotonic()
    run.cancel()
    assert run.wait() == 130
    assert time.monotonic() - started < CANCEL_GRACE_S  # SIGTERM did it, no SIGKILL needed
    assert run.poll() == 130
    assert process_ends(worker)
    assert list(tmp_path.iterdir()) == [tmp_path / "fake_cli.py"]  # no output, no partial


@pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")
def test_cancel_kills_a_process_that_ignores_sigterm(helper):
    run = helper("deaf", steps=1000, cancel_grace_s=0.3)
    while not run.progress():
        time.sleep(0.02)
    run.cancel()
    assert run.wait() == -9


@pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")
def test_cancel_returns_at_once_and_removes_what_a_killed_command_left(helper, tmp_path):
    """Cancel must not block Slicer's interface for the grace period; a command killed after
    it still leaves no partial output."""
    run = helper("deaf", steps=1000, cancel_grace_s=2.0)
    while not run.progress():
        time.sleep(0.02)
    assert list(tmp_path.glob(".out.partial-*"))
    started = time.monotonic()
    run.cancel()
    assert time.monotonic() - started < 0.5
    assert run.poll() is None  # still in its grace period
    assert run.wait() == -9
    assert list(tmp_path.iterdir()) == [tmp_path / "fake_cli.py"]  # no output, no partial


@pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")
def test_a_cancelled_scratch_job_returns_at_once_and_its_folder_goes_after_the_command(
        tmp_path):
    script = tmp_path / "fake_cli.py"
    script.write_text(HELPER, encoding="utf-8")
    folder = tmp_path / "scratch"
    folder.mkdir()
    run = ProcessRun([sys.executable, str(script), "--out", str(folder / "out"), "1000",
                      "deaf"], cancel_grace_s=1.0)
    while not run.progress():
        time.sleep(0.02)
    job = ScratchJob(run, folder)
    started = time.monotonic()
    job.cancel()
    assert time.monotonic() - started < 0.5
    deadline = time.monotonic() + 10.0
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not folder.exists()
    assert run.poll() == -9


def test_partial_outputs_are_those_beside_the_out_option(tmp_path):
    (tmp_path / ".out.partial-123").mkdir()
    (tmp_path / ".other.partial-123").mkdir()
    for command in (["x", "--out", str(tmp_path / "out")], ["x", f"--out={tmp_path / 'out'}"]):
        assert partial_outputs(command) == [tmp_path / ".out.partial-123"]
    assert partial_outputs(["x", "--cases", str(tmp_path / "out")]) == []


def test_the_command_writes_utf8_whatever_the_locale(tmp_path, monkeypatch):
    """Slicer reads the pipe as UTF-8; the child is told to write it so (on Windows a pipe
    otherwise takes the locale's code page, where "≥" cannot be written)."""
    monkeypatch.setenv("PYTHONIOENCODING", "cp1252")
    run = ProcessRun([sys.executable, "-c", "print('rim\u2212 ≥ 4 µL')"])
    assert run.wait() == 0, run.error()
    assert list(run.output) == ["rim− ≥ 4 µL"]


def test_real_command_line_runs_with_the_library_on_its_path():
    assert cli_command(["models"])[1:] == ["-m", "MSLesionAILib.cli", "--progress", "lines",
                                           "models"]
    run = run_cli(["models", "--json"])
    assert run.wait() == 0, run.error()
    assert isinstance(json.loads("\n".join(run.output)), list)
