"""The phantom "second site" for CLAIMS's domain adaptation (docs/cortical.md): cortical cases
as another 7 T scanner and protocol would give them.

    .venv/bin/python docs/cortical_second_site.py OUT --seeds 7000 7011

Institution B's resolution (CLAIMS: 0.75 × 0.75 × 0.9 mm), MP2RAGE only, its contrast bent by
a power law (intensity scaled to its 99th percentile in the brain, then raised to 1.6) and
Gaussian noise of 3 % of that percentile added. One case folder per seed, in the phantom's
format (`OUT/realistic_07000/` …), ready for `mslesionai finetune cortical --cases` and
``--eval``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from MSLesionAILib.phantom import generate_case, write_case
from MSLesionAILib.phantom.site import bend_contrast

SPACING_MM = (0.75, 0.75, 0.9)   # x, y, z
POWER = 1.6
NOISE_OF_P99 = 0.03


def write_site_b_case(seed: int, out: Path) -> Path:
    case = generate_case(seed, "cortical", mode="realistic", spacing_mm=SPACING_MM)
    images = {"mp2rage": bend_contrast(case.images["mp2rage"], case.brainmask, POWER,
                                       NOISE_OF_P99, seed)}
    return write_case(replace(case, images=images), out / f"realistic_{seed:05d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seeds", type=int, nargs=2, metavar=("FIRST", "LAST"), required=True)
    args = parser.parse_args()
    for seed in range(args.seeds[0], args.seeds[1] + 1):
        print(write_site_b_case(seed, args.out))


if __name__ == "__main__":
    main()
