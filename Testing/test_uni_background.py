"""The salt-and-pepper background of MP2RAGE UNI images: found where it is, nowhere else."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from MSLesionAILib.uni_background import noise_background

SHAPE = (40, 48, 44)


def head_in_air(air: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy ellipsoidal "head" (level 1000, noise 5 %) in a field of view whose air is
    zero, a dark noise floor, or uniform noise over the head's range (a UNI's)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.ogrid[tuple(slice(0, n) for n in SHAPE)]
    head = ((z - 20) / 14) ** 2 + ((y - 24) / 17) ** 2 + ((x - 22) / 15) ** 2 <= 1
    voxels = rng.normal(1000, 50, SHAPE)
    background = {"zero": np.zeros(SHAPE), "dark": np.abs(rng.normal(0, 50, SHAPE)),
                  "salt-and-pepper": rng.uniform(0, 1200, SHAPE)}[air]
    return np.where(head, voxels, background).astype(np.float32), head


def test_a_uni_background_is_found_and_the_head_kept() -> None:
    voxels, head = head_in_air("salt-and-pepper")
    background = noise_background(voxels)
    assert background[~head].mean() > 0.9
    assert not background[ndimage.binary_erosion(head)].any()  # the box blurs the border


def test_dark_or_stripped_backgrounds_are_not_noise() -> None:
    for air in ("zero", "dark"):
        voxels, _ = head_in_air(air)
        assert not noise_background(voxels).any(), air


def test_incoherent_voxels_inside_the_head_alone_are_not_background() -> None:
    """Noise that does not reach the faces of the field of view is not the background."""
    voxels, head = head_in_air("zero")
    rng = np.random.default_rng(1)
    voxels[16:24, 20:28, 18:26] = rng.uniform(0, 1200, (8, 8, 8))
    assert not noise_background(voxels).any()
