"""`mslesionai rim`: paramagnetic rim lesion classification (RimNet / Deep-PRL bundles)."""

from __future__ import annotations

import argparse
import math

import SimpleITK as sitk

from ..argtypes import probability
from ..bundles import ModelBundle, find_bundle
from ..devices import choose_device
from ..errors import BundleError, InputError
from ..imageio import load_image
from ..labels import PARAMAGNETIC_PHASE
from ..masks import load_mask
from ..pipelines import rim
from ..progress import Progress
from ._pipeline import add_pipeline_options, input_files, run_and_write

CONTRASTS = ("flair", "mp2rage", "t2star", *rim.WM_STEP_CONTRASTS)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rim", help="paramagnetic rim lesions: P(rim+) per lesion, PRL count",
        description="Classify white-matter lesions as rim+ / rim− on unwrapped phase. The "
                    "lesions come from --lesion-mask, or from the white-matter pipeline.")
    parser.add_argument("--phase", required=True, help="unwrapped phase image (the reference)")
    parser.add_argument("--flair", help="FLAIR (RimNet; also needed to segment lesions)")
    parser.add_argument("--mp2rage", help="MP2RAGE uniform image (Deep-PRL)")
    parser.add_argument("--t2star", help="T2* magnitude (used when the model asks for it)")
    parser.add_argument("--t1", help="T1-weighted image, for the white-matter step that finds "
                                     "the lesions when there is no --lesion-mask")
    parser.add_argument("--t2", help="T2-weighted image, for the same white-matter step")
    parser.add_argument("--paramagnetic-phase", choices=PARAMAGNETIC_PHASE,
                        default=PARAMAGNETIC_PHASE[0],
                        help="how veins and iron rims appear on --phase: positive (bright; "
                             "the default, and the models' convention) or negative (dark; the "
                             "phase is then negated before classification)")
    parser.add_argument("--lesion-mask", help="white-matter lesion mask, binary or labelmap")
    parser.add_argument("--brain-mask", help="brain mask (default: the structural foreground)")
    parser.add_argument("--point", type=parse_point, metavar="R,A,S",
                        help="classify only the lesion at this RAS point (mm), or a patch "
                             "centred on it when no lesion is there")
    parser.add_argument("--operating-point", type=probability, metavar="P",
                        help="probability threshold for rim+ (default: the model's, 95%% "
                             "specificity on its validation cases)")
    parser.add_argument("--register", action="store_true",
                        help="rigidly register the other contrasts to the phase image "
                             "(default: resample, trusting the scanner coordinates)")
    add_pipeline_options(parser)
    parser.set_defaults(func=run)


def parse_point(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"'{text}' is not three numbers R,A,S (mm)")
    return values  # type: ignore[return-value]


def run(args: argparse.Namespace, progress: Progress) -> int:
    if args.flair is None and args.mp2rage is None:
        raise InputError("--flair or --mp2rage: give at least one structural image")
    images = {name: load_image(getattr(args, name), f"--{name}")
              for name in CONTRASTS if getattr(args, name)}
    bundle = find_bundle(args.model, "rim", {"phase", *images})
    inputs = rim.RimInputs(
        phase=load_image(args.phase, "--phase"), images=images,
        lesion_mask=_optional_mask(args.lesion_mask, "--lesion-mask"),
        brain_mask=_optional_mask(args.brain_mask, "--brain-mask"), point_ras=args.point,
        paramagnetic_phase=args.paramagnetic_phase)
    wm_bundle = _wm_bundle(images) if inputs.segments_wm_lesions else None
    device = choose_device(args.device)
    run_and_write(args.out, progress, lambda stage: rim.run(
        inputs, bundle=bundle, device=device, progress=stage,
        operating_point=args.operating_point, wm_bundle=wm_bundle, register=args.register),
        input_files(args, ("phase", *CONTRASTS, "lesion_mask", "brain_mask")))
    return 0


def _optional_mask(path: str | None, name: str) -> sitk.Image | None:
    return load_mask(path, name) if path else None


def _wm_bundle(images: dict[str, sitk.Image]) -> ModelBundle | None:
    try:
        return find_bundle(None, "wm", set(images))
    except BundleError:
        return None
