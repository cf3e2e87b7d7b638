"""Paramagnetic rim lesions and their mimics, as a susceptibility map (ppm, relative).

A subset of white-matter lesions of at least `MIN_RIM_LESION_UL` get an iron rim: a shell at
their edge, complete or partial, of varying width, strength and depth. Every lesion may get
one of the things that make phase hard to read: a central vein, a diffuse or core
susceptibility change, a vein touching the border, or nothing. In cases with rims (generator
phantom.5) the mimics that fool a mean over the lesion and its surroundings are common too: a
lesion paramagnetic throughout or a vein running along its border (rim−), an iron-depleted
core (rim+), so that a hand-made score cannot tell rims from the rest but the shape of the
bright part can. `phase.py` turns the map into phase.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .anatomy import CaseAnatomy
from .lesions import LesionSet
from .veins import VeinCanvas, draw_background_veins

MIN_RIM_LESION_UL = 12.3  # RimNet's candidate threshold
_TISSUE_CHI_PPM = {"csf": 0.0, "gm": 0.01, "deep_gm": 0.06, "wm": -0.025}
_VEIN_CHI_PPM = 0.3
_MIMICS = ("none", "central_vein", "diffuse", "core", "touching_vein", "edge_vein",
           "paramagnetic", "hypo_core")
# Shares of each mimic: cases without rims keep phantom.4's draws (and bytes); in rim cases
# (phantom.5) rim− lesions often look bright inside or at their edge, and rim+ lesions often
# have an iron-depleted core, as in patients.
_MIMIC_SHARES = {"no rims": (0.3, 0.3, 0.15, 0.1, 0.15, 0.0, 0.0, 0.0),
                 "rim-": (0.14, 0.2, 0.06, 0.06, 0.08, 0.18, 0.24, 0.04),
                 "rim+": (0.25, 0.2, 0.05, 0.05, 0.1, 0.1, 0.0, 0.25)}


@dataclass
class Susceptibility:
    chi_ppm: np.ndarray          # whole case, tissue + veins + lesions
    rim_chi_ppm: np.ndarray      # the lesion rims only (they darken T2* magnitude)
    vein_fraction: np.ndarray
    parameters: dict


def draw_susceptibility(rng: np.random.Generator, anatomy: CaseAnatomy, wm: LesionSet,
                        mode: str, with_rims: bool) -> Susceptibility:
    """Tissue susceptibility, veins, rims (when ``with_rims``) and mimics; marks rim rows."""
    canvas = VeinCanvas(anatomy)
    vein_density = rng.uniform(0.15, 0.4)
    veins = draw_background_veins(rng, anatomy, canvas, vein_density)
    rims = np.zeros(anatomy.tissue.shape, np.float32)
    lesion_chi = np.zeros(anatomy.tissue.shape, np.float32)
    rim_share = rng.uniform(0.0, 0.5) if with_rims else 0.0
    boxes = ndimage.find_objects(wm.labels)
    spacing = np.array(anatomy.spacing_zyx_mm)
    for row in wm.rows:
        box = _padded(boxes[row["lesion_id"] - 1], spacing, anatomy.tissue.shape)
        lesion = wm.labels[box] == row["lesion_id"]
        eligible = row["volume_ul"] >= MIN_RIM_LESION_UL
        row["rim"] = int(eligible and rng.random() < rim_share)
        if row["rim"]:
            row["rim_details"] = _paint_rim(rng, rims[box], lesion, spacing, mode)
        shares = _MIMIC_SHARES[("rim+" if row["rim"] else "rim-") if with_rims else "no rims"]
        mimic = _MIMICS[rng.choice(len(_MIMICS), p=shares)]
        row["phase_mimic"] = mimic
        _paint_mimic(rng, mimic, _Site(lesion, box, canvas), lesion_chi)
    vein_fraction = canvas.fraction()
    chi = _tissue_chi(anatomy) + _VEIN_CHI_PPM * vein_fraction + rims + lesion_chi
    return Susceptibility(chi_ppm=chi.astype(np.float32), rim_chi_ppm=rims,
                          vein_fraction=vein_fraction,
                          parameters={"background_veins": veins, "veins": canvas.count,
                                      "vein_density_per_ml": vein_density,
                                      "rim_share": rim_share})


def _tissue_chi(anatomy: CaseAnatomy) -> np.ndarray:
    f = anatomy.fractions
    deep = f["deep_gm"] * (1.0 - f["infratentorial"])
    return (f["gm"] * (1 - deep) * _TISSUE_CHI_PPM["gm"] + f["gm"] * deep
            * _TISSUE_CHI_PPM["deep_gm"] + f["wm"] * _TISSUE_CHI_PPM["wm"])


def _padded(box: tuple[slice, ...], spacing: np.ndarray, shape: tuple[int, ...]
            ) -> tuple[slice, ...]:
    pad = np.ceil(3.0 / spacing).astype(int) + 1
    return tuple(slice(max(b.start - p, 0), min(b.stop + p, n))
                 for b, p, n in zip(box, pad, shape, strict=True))


def _paint_rim(rng: np.random.Generator, rims: np.ndarray, lesion: np.ndarray,
               spacing: np.ndarray, mode: str) -> dict:
    """A thin shell at the lesion's edge, complete or covering part of it.

    Its centre lies between a little outside and well inside the drawn border (at most half the
    lesion's depth): the iron sits at the lesion's edge, but where a segmentation puts that edge
    varies, so a score over a fixed shell outside the border sees more or less of the rim.
    """
    inside_mm = ndimage.distance_transform_edt(lesion, sampling=spacing)
    outside_mm = ndimage.distance_transform_edt(~lesion, sampling=spacing)
    depth_mm = inside_mm - outside_mm  # > 0 inside
    width_mm = rng.uniform(0.8, 2.0)
    strength = rng.uniform(0.12, 0.4) if mode == "realistic" else rng.uniform(0.06, 0.5)
    centre_depth_mm = min(rng.uniform(-0.5, 1.0), 0.5 * float(inside_mm.max()))
    shell = np.exp(-((depth_mm - centre_depth_mm) / (width_mm / 2)) ** 2)
    complete = rng.random() < 0.5
    coverage = 1.0 if complete else rng.uniform(0.5, 0.9)
    if not complete:
        offsets = (np.argwhere(np.ones_like(lesion)) - np.argwhere(lesion).mean(0)) * spacing
        toward = rng.normal(size=3)
        cosine = offsets @ (toward / np.linalg.norm(toward)) / (
            np.linalg.norm(offsets, axis=1) + 1e-6)
        shell *= (cosine.reshape(lesion.shape) > 1.0 - 2.0 * coverage)
    rims += strength * shell
    return {"complete": complete, "coverage": round(coverage, 3),
            "width_mm": round(width_mm, 3), "strength_ppm": round(strength, 4),
            "depth_mm": round(centre_depth_mm, 3)}


@dataclass
class _Site:
    """One lesion where a mimic is painted: its mask in its (padded) box of the case grid."""

    lesion: np.ndarray
    box: tuple[slice, ...]
    canvas: VeinCanvas

    @property
    def corner(self) -> np.ndarray:
        return np.array([b.start for b in self.box], float)

    @property
    def centre(self) -> np.ndarray:
        """Centre of mass, an index of the case grid."""
        return self.corner + np.argwhere(self.lesion).mean(0)

    @property
    def extent_mm(self) -> float:
        return float(np.max(np.array(self.lesion.shape) * self.canvas.frame.spacing_zyx))

    def border_mm(self, directions_mm: np.ndarray) -> np.ndarray:
        """Distance (mm) from the centre to the lesion's outer border along each physical unit
        direction (n, 3): the farthest lesion voxel met on the ray."""
        radii = np.arange(0.0, self.extent_mm, 0.25)
        offsets_mm = directions_mm[:, None, :] * radii[None, :, None]
        index = np.round(self.centre - self.corner + offsets_mm @ self.canvas.mm_to_index)
        index = index.astype(int)
        inside_box = np.all((index >= 0) & (index < self.lesion.shape), axis=-1)
        hit = np.zeros(inside_box.shape, bool)
        hit[inside_box] = self.lesion[tuple(index[inside_box].T)]
        last = np.where(hit.any(axis=1), len(radii) - 1 - np.argmax(hit[:, ::-1], axis=1), 0)
        return radii[last] + 0.125  # the border lies between the last hit and the next step


def _paint_mimic(rng: np.random.Generator, mimic: str, site: _Site,
                 lesion_chi: np.ndarray) -> None:
    painter = _MIMIC_PAINTERS.get(mimic)
    if painter is not None:
        painter(rng, site, lesion_chi)


def _central_vein(rng: np.random.Generator, site: _Site, lesion_chi: np.ndarray) -> None:
    """A vein straight through the lesion, thinner than a voxel (partial volume)."""
    direction = rng.normal(size=3)
    start = site.centre - (direction / np.linalg.norm(direction)) @ site.canvas.mm_to_index * (
        site.extent_mm)
    site.canvas.draw(rng, start, direction, 2.0 * site.extent_mm, wander=0.05,
                     strength=rng.uniform(0.3, 0.8))


def _touching_vein(rng: np.random.Generator, site: _Site, lesion_chi: np.ndarray) -> None:
    """A vein crossing one border voxel along a tangent."""
    lesion, canvas, extent_mm = site.lesion, site.canvas, site.extent_mm
    border = np.argwhere(lesion & ~ndimage.binary_erosion(lesion))
    point = site.corner + border[rng.integers(len(border))]
    tangent = np.cross(rng.normal(size=3), (point - site.centre) @ canvas.frame.index_to_mm)
    start = point - (tangent / (np.linalg.norm(tangent) + 1e-9)) @ canvas.mm_to_index * (
        extent_mm / 2)
    canvas.draw(rng, start, tangent, extent_mm * 1.5, wander=0.1, strength=rng.uniform(0.3, 0.8))


def _diffuse(rng: np.random.Generator, site: _Site, lesion_chi: np.ndarray) -> None:
    """A faint paramagnetic change over the whole lesion."""
    lesion_chi[site.box] += rng.uniform(0.01, 0.05) * ndimage.gaussian_filter(
        site.lesion.astype(np.float32), 1.0)


def _core(rng: np.random.Generator, site: _Site, lesion_chi: np.ndarray) -> None:
    """A faint paramagnetic change deep inside the lesion only."""
    core = ndimage.binary_erosion(site.lesion, iterations=2)
    lesion_chi[site.box] += rng.uniform(0.02, 0.08) * ndimage.gaussian_filter(
        core.astype(np.float32), 1.0)


def _edge_vein(rng: np.random.Generator, site: _Site, lesion_chi: np.ndarray) -> None:
    """A vein hugging the border, just outside it, along an arc of 110–250° in a random plane
    through the centre, then running on along its tangents: a partial bright ring, but a tube
    that leaves the lesion rather than a shell that follows it."""
    u, v = _plane_axes(rng.normal(size=3))
    angles = rng.uniform(0.0, 2 * np.pi) + np.linspace(0.0, rng.uniform(0.6, 1.4) * np.pi, 48)
    directions = np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v
    corners = directions * (site.border_mm(directions) + rng.uniform(-0.5, 0.8))[:, None]
    tail_mm = rng.uniform(2.0, 5.0)
    ends = [corners[0] + _unit(corners[0] - corners[1]) * tail_mm,
            corners[-1] + _unit(corners[-1] - corners[-2]) * tail_mm]
    site.canvas.draw_polyline(site.centre, np.vstack([ends[0], corners, ends[1]]),
                              strength=rng.uniform(0.5, 1.0))


def _paramagnetic(rng: np.random.Generator, site: _Site, lesion_chi: np.ndarray) -> None:
    """A lesion more paramagnetic than white matter throughout (myelin lost, iron spread: the
    commonest rim− look on phase); high-pass filtering brightens its edge over its centre."""
    lesion_chi[site.box] += rng.uniform(0.05, 0.2) * ndimage.gaussian_filter(
        site.lesion.astype(np.float32), 1.0)


def _hypo_core(rng: np.random.Generator, site: _Site, lesion_chi: np.ndarray) -> None:
    """A core less paramagnetic than white matter (iron lost with the oligodendrocytes), as
    in many rim+ lesions; high-pass filtered phase rings it with a faint halo."""
    core = ndimage.binary_erosion(site.lesion, iterations=1)
    lesion_chi[site.box] -= rng.uniform(0.03, 0.1) * ndimage.gaussian_filter(
        core.astype(np.float32), 1.0)


def _plane_axes(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two orthonormal vectors spanning the plane perpendicular to ``normal``."""
    u = _unit(np.cross(normal, [1.0, 0.0, 0.0] if abs(normal[0]) < 0.9 * np.linalg.norm(
        normal) else [0.0, 1.0, 0.0]))
    return u, _unit(np.cross(_unit(normal), u))


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / (np.linalg.norm(vector) + 1e-9)


_MIMIC_PAINTERS = {"central_vein": _central_vein, "touching_vein": _touching_vein,
                   "diffuse": _diffuse, "core": _core, "edge_vein": _edge_vein,
                   "paramagnetic": _paramagnetic, "hypo_core": _hypo_core}
