"""The command line: help, version, one-line errors with a non-zero exit, cancel by signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from MSLesionAILib import __version__, cli
from MSLesionAILib.cli import EXIT_CANCELLED, EXIT_ERROR, main
from MSLesionAILib.errors import InputError


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"mslesionai {__version__}"


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("models", "train"):
        assert command in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == EXIT_ERROR
    assert "usage: mslesionai" in capsys.readouterr().out


def test_models_lists_installed_bundles_and_what_each_is_chosen_for(capsys):
    assert main(["models", "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["wm-deepscan"]["chosen_for"] is None
    assert rows["wm-deepscan-flair"]["chosen_for"] == ["flair"]
    assert main(["models"]) == 0
    assert "chosen automatically only for FLAIR alone" in capsys.readouterr().out


def test_library_errors_are_one_line_and_exit_2(capsys, monkeypatch):
    def fail(args, progress):
        raise InputError("--flair: file not found: x.nii.gz")

    parser = cli.build_parser()
    parser.set_defaults(func=fail, command="x")
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert main(["--progress", "none"]) == EXIT_ERROR
    assert capsys.readouterr().err == "mslesionai: error: --flair: file not found: x.nii.gz\n"


SLOW_COMMAND = """
import sys, time
from MSLesionAILib import cli
from MSLesionAILib.atomic import output_directory

def slow(args, progress):
    with output_directory(sys.argv[1]) as partial:
        (partial / "half.txt").write_text("x")
        print("started", flush=True)
        for step in range(600):
            time.sleep(0.05)
            progress.update(step / 600, "working")
    return 0

parser = cli.build_parser()
parser.set_defaults(func=slow, command="slow")
cli.build_parser = lambda: parser
sys.exit(cli.main(["--progress", "lines"]))
"""


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_signal_cancels_promptly_and_leaves_no_output(tmp_path, signal_number):
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-c", SLOW_COMMAND, str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout.readline().strip() == "started"
    started = time.monotonic()
    process.send_signal(signal_number)
    assert process.wait(timeout=10) == EXIT_CANCELLED
    assert time.monotonic() - started < 5
    assert "cancelled by signal" in process.stderr.read()
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("task", "marker"), [("wm", "flair.nii.gz"),
                                              ("cortical", "mp2rage.nii.gz")])
def test_training_without_cases_stops_before_it_starts(task, marker, tmp_path, capsys):
    (tmp_path / "dataset" / "not_a_case").mkdir(parents=True)
    code = main(["--progress", "none", "train", task, "--data", str(tmp_path / "dataset"),
                 "--out", str(tmp_path / "bundle")])
    assert code == 2 and not (tmp_path / "bundle").exists()
    assert f"--data: no case found in {tmp_path / 'dataset'} (a case folder holds {marker}" \
        in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--data", "--validation"])
def test_rim_training_names_the_option_whose_folder_holds_no_case(option, tmp_path, capsys):
    (tmp_path / "cases" / "case_1").mkdir(parents=True)
    (tmp_path / "cases" / "case_1" / "case.json").write_text("{}")
    (tmp_path / "empty" / "not_a_case").mkdir(parents=True)
    folders = {"--data": tmp_path / "cases", "--validation": tmp_path / "cases"}
    folders[option] = tmp_path / "empty"
    code = main(["--progress", "none", "train", "rim", "--arch", "rimnet",
                 *[arg for name, folder in folders.items() for arg in (name, str(folder))],
                 "--out", str(tmp_path / "bundle")])
    assert code == 2 and not (tmp_path / "bundle").exists()
    assert f"{option}: no case found in {tmp_path / 'empty'} (a case folder holds case.json" \
        in capsys.readouterr().err


def test_a_negative_point_reads_as_the_value_of_point():
    argv = ["rim", "--phase", "p.nii.gz", "--point", "-12.5,3,40", "--out", "o"]
    assert cli.attach_dashed_values(argv) == [
        "rim", "--phase", "p.nii.gz", "--point=-12.5,3,40", "--out", "o"]
    assert cli.build_parser().parse_args(cli.attach_dashed_values(argv)).point == (-12.5, 3, 40)


@pytest.mark.parametrize("volume", ["nan", "-5", "inf"])
def test_a_minimum_volume_that_is_not_a_volume_is_refused(volume, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["wm", "--flair", "f.nii.gz", "--out", "o", "--min-volume-ul", volume])
    assert stop.value.code == 2 and "is not a volume in µL" in capsys.readouterr().err


@pytest.mark.parametrize("size", ["-10", "nan", "ten"])
def test_a_phantom_crop_that_is_not_a_size_is_refused(size, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["phantom", str(tmp_path / "out"), "--seed", "1", "--crop-mm", size])
    assert stop.value.code == 2 and "is not a size in mm (0 or more)" in capsys.readouterr().err


def test_finetune_names_its_own_option_for_an_unknown_parent(tmp_path, capsys):
    code = main(["--progress", "none", "finetune", "cortical", "--cases", str(tmp_path),
                 "--from", "cortical-claims-v0", "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert code == EXIT_ERROR and error.startswith(
        "mslesionai: error: --from: no model 'cortical-claims-v0' found")


@pytest.mark.parametrize("missing", ["--cases", "--eval"])
def test_finetune_cases_that_are_not_there_are_one_line_naming_the_option(missing, tmp_path,
                                                                          capsys):
    """A mistyped folder or an unexpanded shell pattern had crashed fine-tuning with a
    traceback (--cases) or scored zero cases in silence (--eval)."""
    case = tmp_path / "site_b" / "case_1"
    case.mkdir(parents=True)
    (case / "mp2rage.nii.gz").write_bytes(b"")   # found, never read: the check comes first
    given = {"--cases": case.parent, "--eval": case.parent,
             missing: tmp_path / "site_b_{0,1}"}
    assert main(["--progress", "none", "finetune", "cortical", "--cases", str(given["--cases"]),
                 "--eval", str(given["--eval"]), "--out", str(tmp_path / "out")]) == EXIT_ERROR
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"mslesionai: error: {missing}: no case found in")
    assert "\n" not in error and not (tmp_path / "out").exists()


def test_an_output_folder_that_cannot_be_made_is_one_line(tmp_path, capsys):
    (tmp_path / "a_file").write_text("", encoding="utf-8")
    assert main(["evaluate", "--task", "wm", "--pred", "p", "--truth", "t",
                 "--json", str(tmp_path / "a_file" / "m.json")]) == EXIT_ERROR
    error = capsys.readouterr().err.strip()
    assert error.startswith("mslesionai: error: --json: cannot create") and "\n" not in error
