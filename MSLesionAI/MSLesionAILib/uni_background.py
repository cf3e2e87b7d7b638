"""The salt-and-pepper background of an MP2RAGE uniform (UNI) image.

UNI is a ratio of the two inversions, undefined where both are noise: outside the head, a UNI
that is not skull-stripped is independent noise spread over the whole intensity range, not
the dark floor of a magnitude image. An intensity threshold takes it for tissue, and the
cortical network finds "lesions" in it. Tissue, even noisy, is coherent: neighbouring voxels
differ by a few per cent of the intensity range, where in that noise they differ by about a
third of it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .preprocessing import face_voxels

BOX_VOXELS = 5
# Incoherence (below) of independent uniform noise is about 1/3; of the phantom's tissue at
# most 0.3 in its noisiest domain-randomised cases, under 0.15 in realistic ones.
NOISE_INCOHERENCE = 0.25
MIN_SHARE = 0.01  # of the field of view: smaller incoherent regions are texture, not air


def incoherence(voxels: np.ndarray) -> np.ndarray:
    """The mean absolute difference between neighbouring voxels (along each axis), averaged
    over a box of `BOX_VOXELS`, relative to the intensity range (0.5th to 99.5th percentile):
    independent of the file's scale and offset."""
    voxels = voxels.astype(np.float32)
    steps = np.zeros_like(voxels)
    for axis in range(3):
        step = np.abs(np.diff(voxels, axis=axis))
        steps += np.concatenate([step, np.take(step, [-1], axis)], axis=axis)
    low, high = np.percentile(voxels, [0.5, 99.5])
    return ndimage.uniform_filter(steps / 3.0, BOX_VOXELS) / (float(high - low) or 1.0)


def noise_background(voxels: np.ndarray) -> np.ndarray:
    """The voxels of a salt-and-pepper background: incoherent regions that reach the faces of
    the field of view (the background surrounds the head), each at least `MIN_SHARE` of it.
    Empty for a skull-stripped image or one whose background is a dark noise floor."""
    labels, count = ndimage.label(incoherence(voxels) > NOISE_INCOHERENCE)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    outer = np.unique(face_voxels(labels))
    kept = [label for label in outer if label > 0 and sizes[label] >= MIN_SHARE * labels.size]
    return np.isin(labels, kept)
