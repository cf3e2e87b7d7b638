"""The baselines the shipped models are measured against.

White-matter lesions:
- a naive FLAIR threshold: lesion = FLAIR above a percentile of its intensity foreground (the
  pipelines' no-mask normalisation region), the percentile chosen on calibration cases (never
  the test cohort) for the best mean Dice, components of ≥ 3 µL;
- a MONAI 3D U-Net (DynUNet, nnU-Net's architecture, scaled for a CPU), the DeepSCAN paper's
  nnU-Net-style reference: the white-matter model's training cases and preprocessing
  (`training.wm_data`), 3D patches, Dice + cross-entropy, flips and intensity augmentation,
  trained through the shared loop for a given number of steps.

Cortical lesions: the same 4-level U-Net without CLAIMS's choices: Dice + cross-entropy instead
of the focal loss, white-matter lesion voxels weighted like any other, MP2RAGE only (so no
sequence dropout). Its bundle runs through the cortical pipeline unchanged, so only the
training choices differ.

Rim lesions: the naive rim score and the logistic regression of `benchmark.rim`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from monai import transforms
from monai.losses import DiceCELoss
from monai.networks.nets import DynUNet

from ..bundles import ModelBundle, load_bundle, write_bundle
from ..devices import choose_device
from ..errors import BundleError
from ..geometry import resample_like
from ..imageio import array_to_image, read_image
from ..inference import predict_sliding_window
from ..lesions import label_components
from ..metrics.overlap import dice
from ..networks import build_network
from ..pipelines.wm import prepare_inputs
from ..preprocessing import foreground_mask
from ..progress import Progress
from ..training import cortical as cortical_training
from ..training import wm as wm_training
from ..training._loop import fit, seed_everything, training_record
from ..training.cortical_data import PatchSampler, crop
from ..training.cortical_data import load_case as load_cortical_case
from ..training.wm_data import LESION_CENTRED, TrainingCase, load_cases
from .rim import baselines as rim_baselines

__all__ = ["calibrate_flair_threshold", "flair_threshold_lesions", "rim_baselines",
           "train_plain_cortical", "train_unet3d", "unet3d_lesions"]

MIN_LESION_UL = 3.0
CONNECTIVITY = 18
PERCENTILES = (90.0, 92.0, 94.0, 95.0, 96.0, 97.0, 97.5, 98.0, 98.5, 99.0, 99.25, 99.5, 99.75,
               99.9)
UNET3D_ID = "baseline-wm-unet3d"
PLAIN_CORTICAL_ID = "baseline-cortical-plain-unet"
SKIP_ALIASES = "skip_layers."
INFERENCE_ROI_VOXELS = 96  # fully convolutional: larger windows than the training patches
UNET3D_NETWORK = {"spatial_dims": 3, "in_channels": 3, "out_channels": 2,
                  "kernel_size": [3, 3, 3, 3], "strides": [1, 2, 2, 2],
                  "upsample_kernel_size": [2, 2, 2], "filters": [16, 32, 64, 128],
                  "norm_name": "instance"}


def flair_percentiles(flair: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """FLAIR's voxels and, per `PERCENTILES`, its intensity at that percentile of its
    foreground (the pipelines' no-mask normalisation region)."""
    voxels = sitk.GetArrayFromImage(flair).astype(np.float32)
    return voxels, np.percentile(voxels[foreground_mask(voxels)], PERCENTILES)


def flair_threshold_lesions(flair: sitk.Image, percentile: float) -> np.ndarray:
    """Lesion instance ids on FLAIR's grid: voxels brighter than the given percentile of the
    foreground, in components of ≥ 3 µL."""
    voxels, thresholds = flair_percentiles(flair)
    threshold = thresholds[list(PERCENTILES).index(percentile)]
    return label_components(voxels > threshold, CONNECTIVITY, MIN_LESION_UL,
                            flair.GetSpacing()[::-1])


def calibrate_flair_threshold(folders: list[Path]) -> float:
    """The percentile with the best mean voxel Dice on the calibration cases."""
    dice_sums = np.zeros(len(PERCENTILES))
    for folder in folders:
        voxels, thresholds = flair_percentiles(read_image(folder / "flair.nii.gz", "flair"))
        truth = sitk.GetArrayFromImage(read_image(folder / "truth" / "wm_lesions.nii.gz",
                                                  "truth")) > 0
        dice_sums += [dice(truth, voxels > threshold) for threshold in thresholds]
    return float(PERCENTILES[int(dice_sums.argmax())])


class PatchBatches:
    """3D patches of the white-matter training cases: (inputs, lesion labels)."""

    def __init__(self, cases: list[TrainingCase], patch_size: int, batch_size: int,
                 seed: int) -> None:
        self.cases, self.patch_size, self.batch_size = cases, patch_size, batch_size
        self.rng = np.random.default_rng(seed)
        keys = ("image", "label")
        self.augment = transforms.Compose([
            *[transforms.RandFlipd(keys, prob=0.5, spatial_axis=axis) for axis in range(3)],
            transforms.RandScaleIntensityd("image", factors=0.2, prob=0.5, channel_wise=True),
            transforms.RandShiftIntensityd("image", offsets=0.2, prob=0.5, channel_wise=True)])
        self.augment.set_random_state(seed=seed)

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        samples = [self.sample() for _ in range(self.batch_size)]
        return (torch.stack([s["image"] for s in samples]),
                torch.stack([s["label"] for s in samples]))

    def sample(self) -> dict[str, torch.Tensor]:
        case = self.cases[self.rng.integers(len(self.cases))]
        on_lesion = len(case.lesion_voxels) and self.rng.random() < LESION_CENTRED
        voxels = case.lesion_voxels if on_lesion else case.brain_voxels
        centre = voxels[self.rng.integers(len(voxels))]
        data = self.augment({
            "image": crop(case.channels.astype(np.float32), centre, self.patch_size),
            "label": crop(case.lesion[None].astype(np.float32), centre, self.patch_size)})
        return {key: torch.as_tensor(np.asarray(value)).float() for key, value in data.items()}


def build_unet3d(network: dict[str, Any]) -> DynUNet:
    return DynUNet(**network)


def unet3d_weights(network: DynUNet) -> dict[str, torch.Tensor]:
    """The weights without DynUNet's ``skip_layers`` aliases (the same tensors under a second
    name, which safetensors refuses to store twice)."""
    return {k: v for k, v in network.state_dict().items() if not k.startswith(SKIP_ALIASES)}


def load_unet3d(bundle: ModelBundle) -> DynUNet:
    network = build_unet3d(bundle.metadata["network"])
    missing, unexpected = network.load_state_dict(bundle.load_state_dict(), strict=False)
    if unexpected or any(not key.startswith(SKIP_ALIASES) for key in missing):
        raise BundleError(f"model {bundle.id}: weights do not fit its DynUNet")
    return network.eval()


def train_unet3d(folders: list[Path], plan: dict[str, Any], steps: int, out: Path,
                 progress: Progress, seed: int = 0, patch_size: int = 64,
                 batch_size: int = 2, learning_rate: float = 1e-3,
                 seconds: float | None = None) -> ModelBundle:
    """The nnU-Net-style reference, trained on the white-matter cases for at most ``steps``
    steps and ``seconds`` (cached in ``out``)."""
    if (out / "metadata.json").is_file():
        return load_bundle(out)
    rng = seed_everything(seed)
    cases = load_cases(folders, plan, rng)
    network = build_unet3d(UNET3D_NETWORK)
    loss = DiceCELoss(to_onehot_y=True, softmax=True)
    record = fit(network, PatchBatches(cases, patch_size, batch_size, seed), loss, steps,
                 learning_rate, choose_device("auto"), progress, max_seconds=seconds)
    settings = {"steps": steps, "seconds_budget": seconds,
                "patch_size": patch_size, "batch_size": batch_size,
                "learning_rate": learning_rate, "loss": "Dice + cross-entropy"}
    metadata = {"id": UNET3D_ID, "version": "1.0.0", "task": "wm-baseline",
                "architecture": "monai.DynUNet", "network": UNET3D_NETWORK,
                "inputs": plan["inputs"], "spacing_mm": plan["spacing_mm"],
                "normalisation": plan["normalisation"], "bias_correction": plan["bias_correction"],
                "classes": ["background", "lesion"],
                "inference": {"roi_size": [INFERENCE_ROI_VOXELS] * 3, "overlap": 0.5},
                "training": training_record(
                    seed, {"cases": [str(f) for f in folders]}, settings, record.seconds,
                    record)}
    return write_bundle(out, metadata, unet3d_weights(network))


def unet3d_lesions(bundle: ModelBundle, contrasts: dict[str, sitk.Image]) -> np.ndarray:
    """Lesion instance ids on FLAIR's grid (no brain mask given, like the shipped model)."""
    network = load_unet3d(bundle)
    model_input = prepare_inputs(contrasts, None, bundle.metadata)
    inference = bundle.metadata["inference"]
    logits = predict_sliding_window(network, torch.from_numpy(model_input.channels)[None],
                                    inference["roi_size"], torch.device("cpu"), [],
                                    batch_size=1, overlap=inference["overlap"])
    probability = torch.softmax(logits.float(), dim=1)[0, 1].numpy()
    flair = contrasts["flair"]
    on_flair = sitk.GetArrayFromImage(resample_like(
        array_to_image(probability, model_input.grid), flair, "linear"))
    return label_components(on_flair > 0.5, CONNECTIVITY, MIN_LESION_UL, flair.GetSpacing()[::-1])


def wm_plan() -> dict[str, Any]:
    """The white-matter trainer's plan (inputs, spacing, normalisation) at its defaults."""
    return wm_training.plan(argparse.Namespace(id=UNET3D_ID, version="1.0.0", slices=5,
                                               features="16,24,32,48,64,16",
                                               bias_correction=False,
                                               chosen_for_inputs=None))


def cortical_plan(patch_size: int) -> dict[str, Any]:
    """The cortical trainer's plan for an MP2RAGE-only model."""
    return cortical_training.plan(argparse.Namespace(id=PLAIN_CORTICAL_ID, version="1.0.0",
                                                     t2star=False, t2star_epi=False,
                                                     patch_size=patch_size))


def plain_loss() -> Any:
    """Dice + cross-entropy on the labels; the trainer's weight channel is ignored."""
    dice_ce = DiceCELoss(to_onehot_y=True, softmax=True)
    return lambda logits, targets: dice_ce(logits, targets[:, :1])


def train_plain_cortical(folders: list[Path], steps: int, out: Path, progress: Progress,
                         seed: int = 0, patch_size: int = 48, batch_size: int = 2,
                         learning_rate: float = 0.5e-3,
                         seconds: float | None = None) -> ModelBundle:
    """The cortical U-Net without CLAIMS's choices, as a bundle the cortical pipeline runs;
    at most ``steps`` steps and ``seconds`` of training."""
    if (out / "metadata.json").is_file():
        return load_bundle(out)
    plan = cortical_plan(patch_size)
    seed_everything(seed)
    cases = [load_cortical_case(f, ["mp2rage"], tuple(plan["spacing_mm"])) for f in folders]
    network = build_network(plan["architecture"], **plan["network"])
    record = fit(network, PatchSampler(cases, patch_size, batch_size, seed), plain_loss(), steps,
                 learning_rate, choose_device("auto"), progress, max_seconds=seconds)
    settings = {"steps": steps, "seconds_budget": seconds,
                "patch_size": patch_size, "batch_size": batch_size,
                "learning_rate": learning_rate,
                "loss": "Dice + cross-entropy, every voxel weighted 1"}
    training = training_record(seed, {"cases": [str(f) for f in folders]}, settings,
                               record.seconds, record)
    return write_bundle(out, {**plan, "training": training}, network.state_dict())
