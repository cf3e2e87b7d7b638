"""Shared fixtures: small synthetic images with known geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
REAL_CASE = REPO / "Resources" / "SampleData" / "lesjak2017_patient07"


def rotation_direction(angle_deg: float = 20.0) -> tuple[float, ...]:
    """An oblique direction matrix: a rotation about the superior axis."""
    angle = np.deg2rad(angle_deg)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0.0],
                         [np.sin(angle), np.cos(angle), 0.0],
                         [0.0, 0.0, 1.0]])
    return tuple(rotation.ravel())


def make_image(size_xyz=(20, 16, 12), spacing=(1.0, 1.2, 2.5), origin=(-10.0, 30.0, 5.0),
               direction=None, seed: int = 0) -> sitk.Image:
    """A random float image with the given geometry (size in ITK x, y, z order)."""
    voxels = np.random.default_rng(seed).normal(100, 20, size_xyz[::-1]).astype(np.float32)
    image = sitk.GetImageFromArray(voxels)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction or rotation_direction())
    return image


@pytest.fixture
def oblique_image() -> sitk.Image:
    return make_image()


@pytest.fixture
def scene():
    """A real MRML scene (slicer-core) with the segmentations logic, as `slicer.mrmlScene`."""
    slicer = pytest.importorskip("slicer")
    scene = slicer.vtkMRMLScene()
    logic = slicer.vtkSlicerSegmentationsModuleLogic()
    logic.SetMRMLScene(scene)
    slicer.mrmlScene = scene
    yield scene
    scene.Clear(True)
