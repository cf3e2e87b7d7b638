"""Argparse types for numbers with a meaning (a probability, a volume), shared by the commands
and the trainers, so a bad value is refused by the parser with one line naming it."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number(text: str) -> float:
    """``text`` as a number; NaN when it is none, so that every range check refuses it."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def non_negative(what: str) -> Callable[[str], float]:
    """An argparse type: a finite number, 0 or more; ``what`` names it in the error."""
    def parse(text: str) -> float:
        value = number(text)
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(f"'{text}' is not {what} (0 or more)")
        return value
    return parse


volume_ul = non_negative("a volume in µL")


def probability(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    value = number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a probability (0 to 1)")
    return value
