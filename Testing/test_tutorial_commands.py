"""The tutorial's command lines are run as printed by teachers and students: each must parse
with the real command line, and each repository file it names must exist."""

from __future__ import annotations

import re
import shlex

import pytest

from conftest import REPO
from MSLesionAILib.cli import attach_dashed_values, build_parser

TUTORIAL = REPO / "docs" / "tutorial.md"


def tutorial_commands() -> list[str]:
    """Every ``mslesionai …`` line of the tutorial's code blocks, continuations joined and
    trailing comments dropped."""
    commands = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", TUTORIAL.read_text(encoding="utf-8"), re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("mslesionai "):
                commands.append(line)
    return commands


def test_the_tutorial_has_its_commands():
    assert len(tutorial_commands()) >= 15


@pytest.mark.parametrize("command", tutorial_commands())
def test_a_tutorial_command_parses_and_its_repository_files_exist(command):
    words = shlex.split(command)[1:]
    build_parser().parse_args(attach_dashed_values(words))   # exits (fails) on a bad option
    for word in words:
        if word.startswith("Resources/"):
            assert (REPO / word).exists(), word
