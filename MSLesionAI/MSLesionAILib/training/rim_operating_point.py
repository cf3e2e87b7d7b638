"""`mslesionai train rim-operating-point`: a rim bundle's weights, unchanged, as a new bundle
whose operating point (and, for Deep-PRL, what its mask channel holds) is chosen anew on
validation cases.

An operating point can be chosen on other cases (another phantom site, in the phantom's case
layout), and a change of what the patches hold (``--mask-lesions``) is scored before anything
uses it. The new bundle records the
bundle it came from, this command and the cases that chose its threshold; the source bundle is
left as it was. Validation cases must not be cases the weights were trained on.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..argtypes import probability
from ..bundles import ModelBundle, find_bundle, write_bundle
from ..devices import DEVICE_CHOICES, choose_device
from ..errors import InputError
from ..metrics.rim import TARGET_SPECIFICITY, rim_metrics, threshold_at_specificity
from ..networks import load_network
from ..pipelines.rim import classify
from ..progress import Progress
from ..rim_patches import MASK_LESIONS, PatchSpec
from ._loop import phantom_data_record, phantom_seeds
from .rim import counts, write_model_card
from .rim_data import case_folders, load_patch_set


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rim-operating-point", help="a rim bundle's weights as a new bundle with its operating "
                                    "point chosen on validation cases",
        description=__doc__.split("\n\n")[1])
    parser.add_argument("--bundle", required=True, help="rim bundle folder or id")
    parser.add_argument("--validation", nargs="+", required=True, type=Path,
                        help="validation phantom cases or dataset folders (not training cases)")
    parser.add_argument("--out", required=True, type=Path, help="new bundle folder")
    parser.add_argument("--id", help="bundle id (default: the folder's name)")
    parser.add_argument("--version", required=True)
    parser.add_argument("--mask-lesions", choices=MASK_LESIONS,
                        help="Deep-PRL: what the mask channel holds (default: as in --bundle)")
    parser.add_argument("--specificity", type=probability, default=TARGET_SPECIFICITY,
                        help="specificity on the validation cases that sets the threshold "
                             "(default 0.95, as RimNet)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    source = find_bundle(args.bundle, "rim", option="--bundle")
    patches = patch_settings(source, args.mask_lesions)
    spec = PatchSpec.from_metadata(patches)
    cases = case_folders(args.validation, "--validation")
    check_not_trained_on(source, cases)
    validation = load_patch_set(cases, source.input_names, spec, spec.size_vox, (0, 0), 0,
                                progress.sub(0.0, 0.6))
    device = choose_device(args.device)
    scores = classify(load_network(source, device), validation.patches.astype(np.float32),
                      device, source.metadata.get("test_time_flips", [[]]))
    threshold = threshold_at_specificity(validation.labels, scores, args.specificity)
    metadata = derived_metadata(source, args, patches, threshold)
    metadata["validation"] = rim_metrics(validation.labels, scores, scores >= threshold)
    metadata["derivation"]["data"] = {"validation_cases": [str(c) for c in cases],
                                      "validation": phantom_data_record(args.validation, cases),
                                      **counts("validation", validation)}
    bundle = write_bundle(args.out, metadata, source.load_state_dict())
    write_model_card(bundle.path, metadata)
    progress.update(1.0, "bundle written")
    print(f"rim {source.id} → {bundle.id}: validation ROC AUC "
          f"{metadata['validation']['roc_auc']:.3f}, threshold {threshold:.3f}; bundle in "
          f"{args.out}")
    return 0


def derived_metadata(source: ModelBundle, args: argparse.Namespace, patches: dict[str, Any],
                     threshold: float) -> dict[str, Any]:
    """The source's metadata under the new id and version, with the new patch settings and
    operating point, and where it came from; the source's test figures are left out (they
    belong to its own operating point)."""
    metadata = {key: value for key, value in source.metadata.items()
                if key not in ("test", "files")}
    return {**metadata, "id": args.id or args.out.name, "version": args.version,
            "patches": patches,
            "operating_point": {"threshold": threshold, "target_specificity": args.specificity,
                                "chosen_on": "validation cases"},
            "derivation": {"from": {"id": source.id, "version": source.metadata["version"],
                                    "sha256": source.weights_sha256,
                                    "patches": source.metadata["patches"]},
                           "command": "mslesionai " + shlex.join(sys.argv[1:])}}


def patch_settings(source: ModelBundle, mask_lesions: str | None) -> dict[str, Any]:
    """The source's patch settings, with ``mask_lesions`` where given (a bundle without a mask
    channel cannot take one)."""
    patches = dict(source.metadata["patches"])
    if mask_lesions is None:
        return patches
    if not patches.get("mask_dilation_vox"):
        raise InputError(f"--mask-lesions: {source.id} has no lesion-mask channel "
                         f"({source.metadata['architecture']})")
    return {**patches, "mask_lesions": mask_lesions}


def check_not_trained_on(source: ModelBundle, cases: list[Path]) -> None:
    """Refuse validation cases whose phantom seed the source's last training stage was trained
    on (the stages before it, recorded by their commands alone, name no seeds to check)."""
    trained = source.metadata.get("training", {}).get("data", {}).get("training", {})
    overlap = sorted(set(phantom_seeds(cases)) & set(trained.get("seeds", [])))
    if overlap:
        raise InputError(f"--validation: {source.id} was trained on phantom seeds "
                         f"{', '.join(map(str, overlap[:5]))}{' …' if len(overlap) > 5 else ''}"
                         "; choose its operating point on other cases")
