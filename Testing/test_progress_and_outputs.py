"""Progress reporting, cancellation, and outputs that appear whole or not at all."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from MSLesionAILib.atomic import output_directory
from MSLesionAILib.errors import Cancelled, InputError
from MSLesionAILib.progress import Progress, bar_sink, line_sink, parse_progress_line


def test_sub_progress_maps_onto_its_slice():
    seen = []
    progress = Progress(lambda fraction, message: seen.append((round(fraction, 3), message)))
    stage = progress.sub(0.5, 1.0).sub(0.0, 0.5)
    stage.update(0.5, "half of the third quarter")
    stage.update(2.0, "clipped")
    assert seen == [(0.625, "half of the third quarter"), (0.75, "clipped")]


def test_stages_share_a_range_equally_in_order():
    seen = []
    stages = Progress(lambda fraction, message: seen.append(round(fraction, 3))).sub(
        0.5, 1.0).stages(["a", "b"])
    stages["b"].update(0.0)
    stages["a"].update(1.0)
    stages["b"].update(1.0)
    assert list(stages) == ["a", "b"] and seen == [0.75, 0.75, 1.0]


def test_cancel_raises_at_the_next_update():
    progress = Progress()
    stage = progress.sub(0.2, 0.4)
    stage.update(0.1)
    progress.cancel.set()
    with pytest.raises(Cancelled):
        stage.update(0.2)


def test_progress_lines_round_trip():
    stream = io.StringIO()
    line_sink(stream)(0.375, "inference axial")
    line = stream.getvalue()
    assert line == "MSLESIONAI-PROGRESS 37.5 inference axial\n"
    assert parse_progress_line(line) == (0.375, "inference axial")
    assert parse_progress_line("an ordinary log line") is None


def test_bar_ends_with_a_newline_when_complete():
    stream = io.StringIO()
    draw = bar_sink(stream, width=10)
    draw(0.5, "half")
    assert "#####....." in stream.getvalue() and not stream.getvalue().endswith("\n")
    draw(1.0, "done")
    assert stream.getvalue().endswith("\n")


def test_output_directory_appears_only_on_success(tmp_path):
    out = tmp_path / "results"
    with output_directory(out) as partial:
        (partial / "a.txt").write_text("x", encoding="utf-8")
        assert not out.exists()
    assert (out / "a.txt").read_text(encoding="utf-8") == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["results"]


def test_failed_or_cancelled_work_leaves_nothing(tmp_path):
    out = tmp_path / "results"
    with pytest.raises(Cancelled), output_directory(out) as partial:
        (partial / "half-written.nii.gz").write_text("x", encoding="utf-8")
        raise Cancelled("cancelled by the user")
    assert list(tmp_path.iterdir()) == []


def test_existing_results_are_never_overwritten(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "lesions.csv").write_text("mine", encoding="utf-8")
    with pytest.raises(InputError, match="already exists and is not empty"):
        with output_directory(out):
            pass
    assert (out / "lesions.csv").read_text(encoding="utf-8") == "mine"


def test_an_existing_empty_folder_is_used_and_keeps_its_group_and_permissions(tmp_path):
    """A folder the user made for the results, shared with a group (setgid, group-writable):
    the folder and the files written into it keep that group."""
    out = tmp_path / "results"
    out.mkdir()
    group = os.getgid() + 1
    try:
        os.chown(out, -1, group)
    except PermissionError:
        pytest.skip("needs a second group to hand the folder to")
    out.chmod(0o2770)
    with output_directory(out) as partial:
        (partial / "summary.json").write_text("{}", encoding="utf-8")
    assert stat.S_IMODE(out.stat().st_mode) == 0o2770 and out.stat().st_gid == group
    assert (out / "summary.json").stat().st_gid == group


def test_an_empty_folder_the_owner_cannot_write_to_still_takes_the_results(tmp_path):
    """Its mode is given to the results at the end, not before they are written."""
    out = tmp_path / "results"
    out.mkdir()
    out.chmod(0o555)
    with output_directory(out) as partial:
        assert partial.stat().st_mode & stat.S_IWUSR   # writable while the results are written
        (partial / "summary.json").write_text("{}", encoding="utf-8")
    assert (out / "summary.json").exists() and stat.S_IMODE(out.stat().st_mode) == 0o555


def test_an_out_link_to_a_folder_writes_there_and_a_dangling_one_is_refused_first(tmp_path):
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with output_directory(tmp_path / "link") as partial:
        (partial / "summary.json").write_text("{}", encoding="utf-8")
    assert (tmp_path / "target" / "summary.json").is_file()
    assert (tmp_path / "link").is_symlink()
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InputError, match="is a link to .*nowhere, which does not exist"), \
            output_directory(tmp_path / "dangling"):
        pytest.fail("the work started")


def test_results_of_a_run_beaten_to_its_folder_are_kept_and_named(tmp_path):
    out = tmp_path / "results"
    with pytest.raises(InputError, match="filled by another run meanwhile; these results "
                                         "are in .*partial") as error, \
            output_directory(out) as partial:
        (partial / "summary.json").write_text("mine", encoding="utf-8")
        out.mkdir()
        (out / "summary.json").write_text("theirs", encoding="utf-8")
    assert (out / "summary.json").read_text(encoding="utf-8") == "theirs"
    assert (partial / "summary.json").read_text(encoding="utf-8") == "mine"
    assert str(partial) in str(error.value)


def test_results_that_cannot_take_their_folder_for_another_reason_say_why(tmp_path,
                                                                           monkeypatch):
    """E.g. an empty --out that is a mount point cannot be removed: not another run's doing."""
    out = tmp_path / "results"
    out.mkdir()

    def busy(self):
        raise OSError(16, "Device or resource busy")

    monkeypatch.setattr(Path, "rmdir", busy)
    with pytest.raises(InputError, match="could not take the results .Device or resource "
                                         "busy.; these results are in .*partial"), \
            output_directory(out) as partial:
        (partial / "summary.json").write_text("{}", encoding="utf-8")


def test_an_out_folder_under_a_file_is_refused_in_one_line(tmp_path):
    (tmp_path / "a_file").write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="--out: cannot create .*a_file: ") as error, \
            output_directory(tmp_path / "a_file" / "out"):
        pass
    assert "partial" not in str(error.value)
    with pytest.raises(InputError, match="a_file is a file; give a new folder"), \
            output_directory(tmp_path / "a_file"):
        pass
