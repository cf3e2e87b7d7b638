"""The check that a phase's declared sign convention fits its lesions."""

from __future__ import annotations

import numpy as np

from MSLesionAILib.phase_sign import MIN_LESIONS, sign_warning

SHAPE = (40, 40, 40)


def lesions_on_phase(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` small lesions, each more paramagnetic (positive) than the tissue around it."""
    rng = np.random.default_rng(seed)
    z, y, x = np.ogrid[tuple(slice(0, n) for n in SHAPE)]
    ids = np.zeros(SHAPE, np.int32)
    phase = rng.normal(0.0, 0.05, SHAPE)
    centres = [(z0, y0, x0) for z0 in (8, 20, 32) for y0 in (8, 20, 32) for x0 in (8, 20, 32)]
    for lesion_id, (cz, cy, cx) in enumerate(centres[:count], start=1):
        ball = (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= 2.5**2
        ids[ball] = lesion_id
        phase[ball] += 0.1
    return phase.astype(np.float32), ids


def test_a_phase_read_with_the_declared_sign_raises_no_warning() -> None:
    phase, ids = lesions_on_phase(12)
    brain = np.ones(SHAPE, bool)
    assert sign_warning(phase, ids, brain, "positive") == []
    assert sign_warning(-phase, ids, brain, "negative") == []


def test_lesions_darker_than_their_surroundings_question_the_declared_sign() -> None:
    phase, ids = lesions_on_phase(12)
    brain = np.ones(SHAPE, bool)
    for given, declared in ((-phase, "positive"), (phase, "negative")):
        [warning] = sign_warning(given, ids, brain, declared)
        assert "0 of 12 lesions" in warning and "--paramagnetic-phase" in warning


def test_too_few_lesions_to_tell_raise_no_warning() -> None:
    phase, ids = lesions_on_phase(MIN_LESIONS - 1)
    assert sign_warning(-phase, ids, np.ones(SHAPE, bool), "positive") == []
