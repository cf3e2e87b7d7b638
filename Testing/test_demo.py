"""The demo's steps stay valid command lines as the commands evolve."""

from __future__ import annotations

import importlib.util

from MSLesionAILib.cli import build_parser
from MSLesionAILib.commands.demo import REAL_CASE, demo_steps


def test_every_installed_step_parses_with_the_real_command_line(tmp_path):
    parser = build_parser()
    parsed = 0
    for _needs, argv in demo_steps(tmp_path, "cpu"):
        if importlib.util.find_spec(f"MSLesionAILib.commands.{argv[0]}") is None:
            continue
        args = parser.parse_args(argv)
        assert args.command == argv[0] and callable(args.func)
        parsed += 1
    assert parsed >= 1


def test_the_real_sample_case_is_shipped():
    for name in ("flair", "t1", "t2", "wm_lesions_gt"):
        assert (REAL_CASE / f"{name}.nii.gz").is_file()
    assert "CC-BY" in (REAL_CASE / "README.md").read_text(encoding="utf-8")
