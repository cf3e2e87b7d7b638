"""The phantom "second site" for CLAIMS's domain adaptation (docs/cortical.md): cortical cases
as another 7 T scanner and protocol would give them.

    .venv/bin/python docs/cortical_second_site.py OUT --seeds 7000 7011
    .venv/bin/python docs/cortical_second_site.py OUT --seeds 7100 7129 --random-sites
    .venv/bin/python docs/cortical_second_site.py OUT --seeds 7010 7019 --site 0.75 0.75 0.9 1 0

Institution B's resolution (CLAIMS: 0.75 × 0.75 × 0.9 mm), MP2RAGE only, its contrast bent by
a power law (intensity scaled to its 99th percentile in the brain, then raised to 1.6) and
Gaussian noise of 3 % of that percentile added. One case folder per seed, in the phantom's
format (`OUT/realistic_07000/` …), ready for `mslesionai finetune cortical --cases` and
``--eval``.

``--random-sites`` draws another site for every seed instead, for training a model that
carries to sites it has not seen: each voxel edge in 0.55–1.0 mm, the power in 0.6–1.8 (a
fainter or a brighter cortex) and the noise in 0–4 % of the 99th percentile. ``--mode``
chooses the phantom's realistic or domain-randomised anatomy and contrasts. ``--site X Y Z
POWER NOISE`` gives every seed one site of your choosing (voxel edges in mm, the power, the noise
as a fraction of the 99th percentile), to see one of site B's changes at a time.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from MSLesionAILib.phantom import MODES, generate_case, write_case
from MSLesionAILib.phantom.site import bend_contrast


@dataclass(frozen=True)
class Site:
    spacing_mm: tuple[float, float, float]   # x, y, z
    power: float
    noise_of_p99: float


SITE_B = Site((0.75, 0.75, 0.9), 1.6, 0.03)
RANDOM_SPACING_MM = (0.55, 1.0)
RANDOM_POWER = (0.6, 1.8)
RANDOM_NOISE_OF_P99 = (0.0, 0.04)


def random_site(seed: int) -> Site:
    """The site drawn for ``seed`` (its own stream, apart from the phantom's)."""
    rng = np.random.default_rng([seed, 1])
    spacing_mm = tuple(float(s) for s in rng.uniform(*RANDOM_SPACING_MM, size=3))
    return Site(spacing_mm, float(rng.uniform(*RANDOM_POWER)),
                float(rng.uniform(*RANDOM_NOISE_OF_P99)))


def chosen_site(args: argparse.Namespace, seed: int) -> Site:
    """The site of ``seed``: drawn, given on the command line, or site B."""
    if args.random_sites:
        return random_site(seed)
    if args.site:
        return Site(tuple(args.site[:3]), *args.site[3:])
    return SITE_B


def write_site_case(seed: int, site: Site, mode: str, out: Path) -> Path:
    case = generate_case(seed, "cortical", mode=mode, spacing_mm=site.spacing_mm)
    images = {"mp2rage": bend_contrast(case.images["mp2rage"], case.brainmask, site.power,
                                       site.noise_of_p99, seed)}
    return write_case(replace(case, images=images), out / f"{mode}_{seed:05d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seeds", type=int, nargs=2, metavar=("FIRST", "LAST"), required=True)
    sites = parser.add_mutually_exclusive_group()
    sites.add_argument("--random-sites", action="store_true")
    sites.add_argument("--site", type=float, nargs=5,
                       metavar=("X_MM", "Y_MM", "Z_MM", "POWER", "NOISE_OF_P99"))
    parser.add_argument("--mode", choices=MODES, default="realistic")
    args = parser.parse_args()
    for seed in range(args.seeds[0], args.seeds[1] + 1):
        site = chosen_site(args, seed)
        folder = write_site_case(seed, site, args.mode, args.out)
        spacing = " × ".join(f"{edge:.2f}" for edge in site.spacing_mm)
        print(f"{folder}: {spacing} mm, power {site.power:.2f}, noise {site.noise_of_p99:.1%}",
              flush=True)


if __name__ == "__main__":
    main()
