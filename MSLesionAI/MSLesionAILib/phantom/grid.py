"""Where a case lives in space: its voxel grid (spacing, oblique direction, origin, crop) and the
transform from the case's physical space into the template's, with head pose, head size,
atrophy and a smooth random deformation.

A case's physical point ``x`` (LPS, mm) looks at the template point ``deformation(pose(x))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

from .fields import smooth_noise
from .template import TemplateAnatomy

_DEFAULT_SPACING_MM = {  # (in-plane low, high), (slice low, high), realistic mode
    "wm": ((0.8, 1.2), (0.8, 2.0)),
    "rim": ((0.75, 1.0), (0.75, 1.2)),
    "cortical": ((0.5, 0.7), (0.5, 0.7)),
    "all": ((0.9, 1.1), (0.9, 1.2)),
}
DEFAULT_CROP_MM = {"cortical": 64.0}
_MARGIN_MM = 12.0  # beyond the brain's surface: room for the warp and atrophy
_FIELD_SPACING_MM = 6.0


@dataclass(frozen=True)
class CaseGeometry:
    """An empty image holding the case's grid, and the case-to-template transform."""

    grid: sitk.Image
    to_template: sitk.Transform
    pose: sitk.AffineTransform
    parameters: dict


def draw_geometry(rng: np.random.Generator, template: TemplateAnatomy, kind: str, mode: str,
                  spacing_mm: float | tuple[float, float, float] | None,
                  crop_mm: float | None, atrophy: float) -> CaseGeometry:
    spacing = _spacing_mm(rng, kind, mode, spacing_mm)
    direction = _grid_direction(rng, mode)
    pose, pose_parameters = _head_pose(rng, template, mode)
    inverse_pose = pose.GetInverse()
    crop_mm = DEFAULT_CROP_MM.get(kind) if crop_mm is None else crop_mm
    if crop_mm:
        centre_template = _crop_centre(rng, template, kind)
        centre = np.array(inverse_pose.TransformPoint(centre_template.tolist()))
        half_extent = np.full(3, crop_mm / 2.0)
    else:
        matrix = np.array(inverse_pose.GetMatrix()).reshape(3, 3)
        surface = template.brain_surface_lps @ matrix.T + inverse_pose.GetTranslation()
        along_axes = surface @ direction  # coordinates along the grid's axes
        centre = direction @ ((along_axes.min(0) + along_axes.max(0)) / 2)
        half_extent = (along_axes.max(0) - along_axes.min(0)) / 2 + _MARGIN_MM
    size = np.maximum(np.ceil(2 * half_extent / spacing).astype(int), 8)
    origin = centre - direction @ ((size - 1) / 2.0 * spacing)
    grid = sitk.Image([int(n) for n in size], sitk.sitkUInt8)
    grid.SetSpacing(spacing.tolist())
    grid.SetDirection(direction.ravel().tolist())
    grid.SetOrigin(origin.tolist())
    deformation, deformation_parameters = _deformation(rng, template, mode, atrophy)
    to_template = sitk.CompositeTransform(3)
    to_template.AddTransform(deformation)  # ITK applies the last added transform first
    to_template.AddTransform(pose)
    parameters = {"spacing_mm": spacing.tolist(), "size": size.tolist(),
                  "direction": direction.ravel().tolist(), "origin_lps": origin.tolist(),
                  "crop_mm": crop_mm, **pose_parameters, **deformation_parameters}
    return CaseGeometry(grid=grid, to_template=to_template, pose=pose, parameters=parameters)


def _spacing_mm(rng: np.random.Generator, kind: str, mode: str,
                spacing_mm: float | tuple[float, float, float] | None) -> np.ndarray:
    """Voxel spacing (x, y, z); drawn when not given: in-plane pair and a slice thickness."""
    if spacing_mm is not None:
        return np.broadcast_to(np.asarray(spacing_mm, dtype=float), (3,)).copy()
    (in_low, in_high), (slice_low, slice_high) = _DEFAULT_SPACING_MM[kind]
    if mode == "randomised" and kind != "cortical":
        slice_high = max(slice_high, 2.5)
    in_plane = rng.uniform(in_low, in_high)
    thickness = rng.uniform(max(in_plane, slice_low), max(in_plane, slice_high))
    spacing = np.array([in_plane, in_plane, thickness])
    return np.round(spacing[rng.permutation(3)], 3)  # the thick axis can be any of the three


def _grid_direction(rng: np.random.Generator, mode: str) -> np.ndarray:
    """An oblique direction matrix: angulated axes, any axis order, sometimes a flipped axis."""
    max_angle_deg = 20.0 if mode == "realistic" else 35.0
    angles = rng.uniform(-max_angle_deg, max_angle_deg, 3)
    largest = np.argmax(np.abs(angles))
    angles[largest] = np.copysign(max(abs(angles[largest]), 5.0), angles[largest])  # oblique
    rotation = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    permutation = np.eye(3)[:, rng.permutation(3)]
    flips = np.diag(np.where(rng.random(3) < 0.3, -1.0, 1.0))
    return rotation @ permutation @ flips


def _head_pose(rng: np.random.Generator,
               template: TemplateAnatomy, mode: str) -> tuple[sitk.AffineTransform, dict]:
    """Case-to-template affine: head rotation and size, the head placed off the scanner centre."""
    max_angle_deg = 8.0 if mode == "realistic" else 15.0
    angles_deg = rng.uniform(-max_angle_deg, max_angle_deg, 3)
    head_scale = rng.uniform(0.92, 1.08) * rng.uniform(0.97, 1.03, 3)
    offset_mm = rng.uniform(-40.0, 40.0, 3)
    matrix = np.diag(1.0 / head_scale) @ Rotation.from_euler(
        "xyz", angles_deg, degrees=True).as_matrix()
    centre_case = template.brain_centre_lps + offset_mm
    pose = sitk.AffineTransform(3)
    pose.SetMatrix(matrix.ravel().tolist())
    pose.SetTranslation((template.brain_centre_lps - matrix @ centre_case).tolist())
    return pose, {"head_rotation_deg": angles_deg.tolist(), "head_scale": head_scale.tolist(),
                  "head_offset_mm": offset_mm.tolist()}


def _crop_centre(rng: np.random.Generator, template: TemplateAnatomy, kind: str) -> np.ndarray:
    """Cortical crops centre on a point of the cerebral cortex; others near the ventricles
    (so that they hold every white-matter lesion type)."""
    if kind != "cortical":
        return template.ventricle_centre_lps + rng.uniform(-12.0, 12.0, 3)
    maps = {name: sitk.GetArrayViewFromImage(template.maps[name])
            for name in ("gm", "wm", "deep_gm", "infratentorial")}
    cortex = ((maps["gm"] > 0.6) & (maps["deep_gm"] < 0.5) & (maps["infratentorial"] < 0.5))
    index_zyx = np.unravel_index(rng.choice(np.flatnonzero(cortex)), cortex.shape)
    return np.array(template.maps["gm"].TransformIndexToPhysicalPoint(
        [int(i) for i in index_zyx[::-1]]))


def _deformation(rng: np.random.Generator, template: TemplateAnatomy, mode: str,
                 atrophy: float) -> tuple[sitk.DisplacementFieldTransform, dict]:
    """Smooth random warp plus atrophy (a radial pull towards the ventricles, widening them).

    The displacement is defined on a coarse lattice over the template and interpolated.
    """
    low, high = template.brain_extent_lps
    spacing = _FIELD_SPACING_MM
    size = np.ceil((high - low) / spacing).astype(int) + 5
    origin = low - 2 * spacing
    amplitude_mm = rng.uniform(1.0, 3.0) if mode == "realistic" else rng.uniform(2.0, 5.0)
    correlation_voxels = rng.uniform(20.0, 40.0) / spacing
    warp = np.stack([smooth_noise(tuple(size[::-1]), correlation_voxels, rng)
                     for _ in range(3)], axis=-1) * amplitude_mm  # (z, y, x, xyz)
    zz, yy, xx = np.meshgrid(*[origin[a] + spacing * np.arange(size[a]) for a in (2, 1, 0)],
                             indexing="ij")
    offset = np.stack([xx, yy, zz], axis=-1) - template.ventricle_centre_lps
    sigma_mm = 28.0
    envelope = np.exp(-np.sum(offset**2, axis=-1) / (2 * sigma_mm**2))[..., None]
    field = warp - atrophy * offset * envelope
    field_image = sitk.GetImageFromArray(field.astype(np.float64), isVector=True)
    field_image.SetOrigin(origin.tolist())
    field_image.SetSpacing([spacing] * 3)
    return sitk.DisplacementFieldTransform(field_image), {
        "warp_amplitude_mm": amplitude_mm, "warp_correlation_mm": correlation_voxels * spacing,
        "ventricle_widening": atrophy}
