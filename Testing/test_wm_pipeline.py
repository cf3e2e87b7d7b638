"""The white-matter pipeline and its command on a tiny oblique synthetic case, the training
smoke run, and the shipped bundle on a cropped phantom case."""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from MSLesionAILib import pipelines
from MSLesionAILib.bundles import load_bundle, write_bundle
from MSLesionAILib.cli import main
from MSLesionAILib.errors import BundleError
from MSLesionAILib.geometry import ras_to_index_zyx, same_grid
from MSLesionAILib.imageio import array_to_image
from MSLesionAILib.labels import TISSUE_NAMES, WM_LESION_SEGMENT, WM_LOCATIONS, Tissue
from MSLesionAILib.metrics.overlap import dice
from MSLesionAILib.mrml import read_seg_nrrd
from MSLesionAILib.networks import build_network
from MSLesionAILib.phantom.site import thick_slices
from MSLesionAILib.pipelines import wm
from MSLesionAILib.training.wm import plan

SIZE = 40
SPACING_MM = (1.8, 1.8, 2.0)              # 72 x 72 x 80 mm: brain-sized, anisotropic
LESIONS_ZYX = {(20, 20, 12): 3.0, (14, 26, 26): 2.5, (27, 15, 25): 2.0}   # centre: radius (voxels)


def oblique_direction() -> tuple[float, ...]:
    a, b = np.deg2rad(25), np.deg2rad(10)
    about_s = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    about_r = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return tuple((about_s @ about_r).ravel())


def _image(voxels: np.ndarray, path: Path, origin=(-30.0, 20.0, -35.0)) -> Path:
    image = sitk.GetImageFromArray(voxels)
    image.SetSpacing(SPACING_MM)
    image.SetOrigin(origin)
    image.SetDirection(oblique_direction())
    sitk.WriteImage(image, str(path))
    return path


def make_case(folder: Path, with_lesions: bool = True) -> Path:
    """A tiny oblique "brain" (a ball of white matter), bright FLAIR lesions, truth/ as the
    phantom writes it."""
    rng = np.random.default_rng(0)
    (folder / "truth").mkdir(parents=True)
    z, y, x = np.mgrid[:SIZE, :SIZE, :SIZE]
    brain = (z - 20) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 < 17**2
    lesions = np.zeros(brain.shape, np.uint16)
    for number, (centre, radius) in enumerate(LESIONS_ZYX.items(), start=1):
        inside = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2
        lesions[inside & with_lesions] = number
    noise = rng.normal(0, 0.03, brain.shape)
    flair = (brain * (1.0 + noise) + 2.5 * (lesions > 0)) * brain
    for name, voxels in (("flair", flair), ("t1", brain * (1.5 - 0.4 * (lesions > 0) + noise)),
                         ("t2", brain * (1.0 + 1.2 * (lesions > 0) + noise))):
        _image(voxels.astype(np.float32), folder / f"{name}.nii.gz")
    _image(brain.astype(np.uint8), folder / "brainmask.nii.gz")
    _image(lesions, folder / "truth" / "wm_lesions.nii.gz")
    tissue = np.where(brain, Tissue.WHITE_MATTER, Tissue.BACKGROUND).astype(np.uint8)
    _image(tissue, folder / "truth" / "tissue.nii.gz")
    (folder / "case.json").write_text(json.dumps({"seed": 77, "mode": "realistic"}),
                                      encoding="utf-8")
    return folder


class ThresholdNetwork(torch.nn.Module):
    """Stands in for a trained DeepSCAN: lesion where the z-scored FLAIR is above 2,
    white matter wherever the stack is non-zero."""

    slices = 3

    def forward(self, stacks: torch.Tensor) -> torch.Tensor:
        flair = stacks[:, self.slices // 2]
        tissue = torch.full((stacks.shape[0], len(Tissue), *stacks.shape[2:]), -10.0)
        tissue[:, Tissue.WHITE_MATTER] = torch.where(flair != 0, 10.0, -10.0)
        tissue[:, Tissue.BACKGROUND] = -tissue[:, Tissue.WHITE_MATTER]
        return torch.cat([20 * (flair[:, None] - 2.0), tissue], 1)


def tiny_metadata(**network: object) -> dict:
    args = argparse.Namespace(id="wm-tiny", version="0.0.1", slices=3,
                              features="4,4,4,4,4,4", bias_correction=False,
                              chosen_for_inputs=None)
    metadata = plan(args)
    metadata["spacing_mm"] = [2.0, 2.0, 2.0]    # a coarse grid keeps the tests fast
    metadata["network"].update(network)
    return metadata


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_case(tmp_path_factory.mktemp("wm") / "case")


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory):
    metadata = tiny_metadata()
    torch.manual_seed(0)
    network = build_network("deepscan", **metadata["network"])
    return write_bundle(tmp_path_factory.mktemp("bundles") / "tiny", metadata,
                        network.state_dict())


@pytest.fixture
def threshold_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipelines.wm, "load_network", lambda bundle, device: ThresholdNetwork())


def run_cli(*args: object) -> int:
    return main(["--progress", "none", "wm", *[str(a) for a in args]])


def test_outputs_are_in_flairs_oblique_geometry_and_the_table_matches_the_labelmap(
        case, tiny_bundle, threshold_network, tmp_path) -> None:
    out = tmp_path / "out"
    assert run_cli("--flair", case / "flair.nii.gz", "--t1", case / "t1.nii.gz", "--t2",
                   case / "t2.nii.gz", "--out", out, "--model", tiny_bundle.path) == 0
    flair = sitk.ReadImage(str(case / "flair.nii.gz"))
    lesions = sitk.ReadImage(str(out / "wm_lesions.nii.gz"))
    tissue = sitk.ReadImage(str(out / "wm_tissue.nii.gz"))
    assert same_grid(lesions, flair) and same_grid(tissue, flair)
    ids = sitk.GetArrayFromImage(lesions)
    with open(out / "lesions.csv", encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == wm.COLUMNS
    assert len(rows) == len(LESIONS_ZYX) == ids.max()
    voxel_ul = float(np.prod(SPACING_MM))
    for row in rows:
        lesion_id = int(row["lesion_id"])
        assert int(row["voxels"]) == np.count_nonzero(ids == lesion_id)
        assert float(row["volume_ul"]) == pytest.approx(int(row["voxels"]) * voxel_ul, rel=1e-3)
        centre_zyx = ras_to_index_zyx(flair, [float(row[k]) for k in
                                              ("centroid_r", "centroid_a", "centroid_s")])
        nearest = min(LESIONS_ZYX, key=lambda c: np.linalg.norm(np.subtract(c, centre_zyx)))
        assert np.linalg.norm(np.subtract(nearest, centre_zyx)) < 1.0   # RAS centroid is right
        assert row["location"] == "deep" and row["class"] == "wm"
        assert 0.5 < float(row["probability"]) <= 1.0
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(case / "truth" / "wm_lesions.nii.gz")))
    assert dice(truth > 0, ids > 0) > 0.6      # through two resamplings at 2 mm
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["lesion_count"] == len(rows)
    assert summary["count_by_location"]["deep"] == len(rows)
    assert summary["total_lesion_volume_ul"] == pytest.approx(
        sum(float(r["volume_ul"]) for r in rows), abs=0.01)
    assert summary["model"]["sha256"] == tiny_bundle.weights_sha256
    assert summary["inputs"] == {name: str((case / f"{name}.nii.gz").resolve())
                                 for name in ("flair", "t1", "t2")}
    assert {"preprocessing", "inference", "postprocessing"} <= set(summary["timings_s"])
    assert summary["warnings"] == []           # 1.8-2 mm is close to the model's 2 mm
    assert summary["inference_pass_weights"] == {            # 2 mm / 1.8 mm: not thick
        "axial": 1.0, "coronal": 1.0, "sagittal": 1.0}
    assert summary["bias_field_correction"] == "none"
    assert summary["volume_ul_by_location"] == {**dict.fromkeys(WM_LOCATIONS, 0.0),
                                                "deep": summary["total_lesion_volume_ul"]}
    labels, segments = read_seg_nrrd(out / "wm.seg.nrrd")
    assert [segment.name for segment in segments] == [WM_LESION_SEGMENT[0],  # lesion first
                                                      *TISSUE_NAMES.values()]
    labels = sitk.GetArrayFromImage(labels)
    np.testing.assert_array_equal(labels == segments[0].value, ids > 0)  # over the tissue
    tissue = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "wm_tissue.nii.gz")))
    np.testing.assert_array_equal(labels[ids == 0], tissue[ids == 0])


def test_a_case_without_lesions_gives_an_empty_table_zero_counts_and_a_spacing_warning(
        tiny_bundle, threshold_network, tmp_path, capsys) -> None:
    case = make_case(tmp_path / "clean", with_lesions=False)
    coarse = write_bundle(tmp_path / "coarse", {**tiny_bundle.metadata, "spacing_mm": [4.0] * 3},
                          tiny_bundle.load_state_dict())
    out = tmp_path / "out"
    assert run_cli("--flair", case / "flair.nii.gz", "--brain-mask", case / "brainmask.nii.gz",
                   "--out", out, "--model", coarse.path) == 0
    assert (out / "lesions.csv").read_text(encoding="utf-8").strip() == ",".join(wm.COLUMNS)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["lesion_count"] == 0 and summary["total_lesion_volume_ul"] == 0
    assert set(summary["count_by_location"].values()) == {0}
    [warning] = [w for w in summary["warnings"] if "--flair" in w and "spacing" in w]
    assert f"mslesionai: warning: {warning}" in capsys.readouterr().err.splitlines()
    assert summary["brain_mask_method"] == "given"
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(out / "wm_lesions.nii.gz"))).max() == 0


def test_a_brain_mask_cut_through_the_brain_is_used_with_a_warning(case, tiny_bundle,
                                                                   threshold_network,
                                                                   tmp_path) -> None:
    mask = sitk.ReadImage(str(case / "brainmask.nii.gz"))
    half = mask[:, :, : mask.GetSize()[2] * 3 // 5]   # the upper slices cropped away
    sitk.WriteImage(half, str(tmp_path / "half.nii.gz"))
    out = tmp_path / "out"
    assert run_cli("--flair", case / "flair.nii.gz", "--brain-mask", tmp_path / "half.nii.gz",
                   "--out", out, "--model", tiny_bundle.path) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    [warning] = [w for w in summary["warnings"] if w.startswith("--brain-mask")]
    assert "looks cropped" in warning and "nothing beyond it counts as brain" in warning


def test_a_brain_mask_filling_the_field_of_view_is_used(case, tiny_bundle, threshold_network,
                                                       tmp_path) -> None:
    """A mask of ones everywhere (a skull-stripped FLAIR's whole grid) is a mask, not a
    constant image to refuse."""
    flair = sitk.ReadImage(str(case / "flair.nii.gz"))
    whole = sitk.Image(flair.GetSize(), sitk.sitkUInt8) + 1
    whole.CopyInformation(flair)
    sitk.WriteImage(whole, str(tmp_path / "whole.nii.gz"))
    out = tmp_path / "out"
    assert run_cli("--flair", case / "flair.nii.gz", "--brain-mask", tmp_path / "whole.nii.gz",
                   "--out", out, "--model", tiny_bundle.path) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["brain_mask_method"] == "given"


def test_a_t1_far_from_the_models_spacing_gets_a_warning(case, tiny_bundle, threshold_network,
                                                         tmp_path) -> None:
    t1 = sitk.ReadImage(str(case / "t1.nii.gz"))
    spacing = np.array(t1.GetSpacing()) * (1, 1, 3)  # thick slices: 3 times FLAIR's
    size = np.ceil(np.array(t1.GetSize()) / (1, 1, 3)).astype(int).tolist()
    thick = sitk.Resample(t1, size, sitk.Transform(), sitk.sitkLinear, t1.GetOrigin(),
                          spacing.tolist(), t1.GetDirection())
    sitk.WriteImage(thick, str(tmp_path / "t1_thick.nii.gz"))
    out = tmp_path / "out"
    assert run_cli("--flair", case / "flair.nii.gz", "--t1", tmp_path / "t1_thick.nii.gz",
                   "--out", out, "--model", tiny_bundle.path) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert [w.split(":")[0] for w in summary["warnings"]] == ["--t1"]


def test_flair_alone_runs_with_a_real_tiny_network(case, tiny_bundle, tmp_path) -> None:
    out = tmp_path / "out"
    assert run_cli("--flair", case / "flair.nii.gz", "--out", out, "--model",
                   tiny_bundle.path, "--connectivity", "6") == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert set(summary["inputs"]) == {"flair"} and summary["connectivity"] == 6
    assert summary["warnings"] == [wm.FLAIR_ONLY_WARNING]
    tissue = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "wm_tissue.nii.gz")))
    assert tissue.max() <= max(Tissue)


def test_a_bundle_trained_with_bias_correction_removes_a_smooth_field_before_normalising(
        case, tiny_bundle, tmp_path) -> None:
    """A multiplicative field across the head (exp of -0.4 to 0.4) barely changes what the
    network sees when the bundle says `bias_correction`; without it, it does."""
    flair = sitk.ReadImage(str(case / "flair.nii.gz"), sitk.sitkFloat32)
    voxels = sitk.GetArrayFromImage(flair)
    field = np.exp(np.linspace(-0.4, 0.4, voxels.shape[2]))[None, None, :]
    shaded = array_to_image((voxels * field).astype(np.float32), flair)

    def change(bias_correction: bool) -> float:
        metadata = {**tiny_metadata(), "bias_correction": bias_correction}
        clean, biased = (wm.prepare_inputs({"flair": image}, None, metadata)
                         for image in (flair, shaded))
        inside = clean.normalisation_mask
        return float(np.abs(biased.channels[0] - clean.channels[0])[inside].mean())

    assert change(True) < 0.5 * change(False)
    corrected = write_bundle(tmp_path / "n4", {**tiny_bundle.metadata, "bias_correction": True},
                             tiny_bundle.load_state_dict())
    sitk.WriteImage(shaded, str(tmp_path / "shaded.nii.gz"))
    assert run_cli("--flair", tmp_path / "shaded.nii.gz", "--out", tmp_path / "out",
                   "--model", corrected.path) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["bias_field_correction"] == "N4 inside the normalisation mask"


def test_thick_flair_slices_weigh_the_pass_in_their_plane_more(case, tiny_bundle,
                                                                 tmp_path) -> None:
    thick = thick_slices(sitk.ReadImage(str(case / "flair.nii.gz")), 3 * SPACING_MM[0], axis=2)
    sitk.WriteImage(thick, str(tmp_path / "flair.nii.gz"))     # 1.8 x 1.8 x 5.4 mm: 3:1
    out = tmp_path / "out"
    assert run_cli("--flair", tmp_path / "flair.nii.gz", "--out", out, "--model",
                   tiny_bundle.path) == 0
    weights = json.loads((out / "summary.json").read_text(encoding="utf-8"))[
        "inference_pass_weights"]
    assert sum(weights.values()) == pytest.approx(4.0, abs=0.002)   # one extra weight at 3:1
    assert weights["axial"] == pytest.approx(1 + np.cos(np.deg2rad(10)) ** 2, abs=0.002)


def test_the_bundles_normalisation_is_applied_and_an_unknown_one_is_refused(case) -> None:
    flair = {"flair": sitk.ReadImage(str(case / "flair.nii.gz"), sitk.sitkFloat32)}
    metadata = tiny_metadata()

    def clipped_share(clip_percentiles) -> float:
        """The share of normalisation-mask voxels at the channel's top value."""
        normalisation = {**metadata["normalisation"], "clip_percentiles": clip_percentiles}
        model_input = wm.prepare_inputs(flair, None, {**metadata,
                                                      "normalisation": normalisation})
        inside = model_input.channels[0][model_input.normalisation_mask]
        return float(np.mean(inside >= inside.max() - 1e-5))

    assert clipped_share([0.5, 99.5]) < 0.01 < 0.04 < clipped_share([5, 95])
    with pytest.raises(BundleError, match="normalisation 'minmax' is not one"):
        wm.prepare_inputs(flair, None, {**metadata, "normalisation": {"method": "minmax"}})


def test_an_intensity_offset_or_a_normalised_file_reaches_the_network_unchanged(case) -> None:
    """Files whose background is not 0 (an offset, or already z-scored: negative background)
    give the scanner file's foreground mask and normalised channels."""
    images = {name: sitk.ReadImage(str(case / f"{name}.nii.gz"), sitk.sitkFloat32)
              for name in ("flair", "t1")}
    expected = wm.prepare_inputs(images, None, tiny_metadata())
    for shift in (lambda image: image + 500.0, lambda image: (image - 0.4) / 0.45):
        shifted = wm.prepare_inputs({name: shift(image) for name, image in images.items()},
                                    None, tiny_metadata())
        assert np.array_equal(shifted.normalisation_mask, expected.normalisation_mask)
        np.testing.assert_allclose(shifted.channels, expected.channels, atol=1e-3)


def test_an_offset_t1_with_a_smaller_field_of_view_than_flair_changes_nothing(
        case, tiny_bundle) -> None:
    """A T1 on its own grid is padded with its own background where its field of view ends
    inside FLAIR's, so an intensity offset does not leave a step there. Registration is not
    bit-reproducible under float rounding (about 0.0005 mean difference from that alone; the
    step, when the padding was 0, made 0.007)."""
    flair = sitk.ReadImage(str(case / "flair.nii.gz"), sitk.sitkFloat32)
    t1 = sitk.ReadImage(str(case / "t1.nii.gz"), sitk.sitkFloat32)[:, :, 8:]  # cuts the brain
    maps = [wm.predict_maps(flair, t1=image, bundle=tiny_bundle, device=torch.device("cpu"))
            for image in (t1, t1 + 500.0)]
    assert np.abs(maps[1].probability - maps[0].probability).mean() < 0.002


def test_the_same_images_stored_in_another_axis_order_reach_the_network_unchanged(case) -> None:
    """Permuted and flipped storage (another converter's convention) is the same anatomy: the
    canonical grid and the network's input do not depend on it."""
    images = {name: sitk.ReadImage(str(case / f"{name}.nii.gz"), sitk.sitkFloat32)
              for name in ("flair", "t1")}
    expected = wm.prepare_inputs(images, None, tiny_metadata())
    stored = wm.prepare_inputs(
        {name: sitk.Flip(sitk.PermuteAxes(image, [2, 0, 1]), [True, False, True])
         for name, image in images.items()}, None, tiny_metadata())
    assert same_grid(stored.grid, expected.grid)
    np.testing.assert_allclose(stored.channels, expected.channels, atol=1e-4)


def test_a_t1_that_does_not_overlap_flair_is_refused_with_one_line(
        case, tiny_bundle, tmp_path, capsys) -> None:
    t1 = sitk.ReadImage(str(case / "t1.nii.gz"))
    far = _image(sitk.GetArrayFromImage(t1), tmp_path / "far_t1.nii.gz", origin=(400, 0, 0))
    code = run_cli("--flair", case / "flair.nii.gz", "--t1", far, "--out", tmp_path / "out",
                   "--model", tiny_bundle.path)
    error = capsys.readouterr().err.strip()
    assert code != 0 and len(error.splitlines()) == 1
    assert "--t1" in error and "overlap" in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("spacing_mm", "problem"), [(1.0, "smaller than a brain"),
                                                     (45.0, "larger than a head")])
def test_a_flair_that_is_not_brain_sized_is_refused(tiny_bundle, tmp_path, capsys, spacing_mm,
                                                    problem) -> None:
    image = sitk.GetImageFromArray(np.random.default_rng(0).random((10, 10, 10), np.float32))
    image.SetSpacing([spacing_mm] * 3)
    sitk.WriteImage(image, str(tmp_path / "flair.nii.gz"))
    assert run_cli("--flair", tmp_path / "flair.nii.gz", "--out", tmp_path / "out", "--model",
                   tiny_bundle.path)
    assert problem in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_flair_whose_brain_is_a_few_voxels_is_refused_before_the_network(
        tiny_bundle, tmp_path, capsys) -> None:
    """A brain-sized field of view holding one small bright cube: its crop would reach the
    network as slices of a voxel or two."""
    voxels = np.zeros((80, 80, 80), np.float32)
    voxels[40:43, 40:43, 40:43] = 1.0
    sitk.WriteImage(sitk.GetImageFromArray(voxels), str(tmp_path / "flair.nii.gz"))
    code = run_cli("--flair", tmp_path / "flair.nii.gz", "--out", tmp_path / "out", "--model",
                   tiny_bundle.path)
    error = capsys.readouterr().err.strip()
    assert code != 0 and len(error.splitlines()) == 1 and not (tmp_path / "out").exists()
    assert re.search(r"--flair: the brain found spans only [34] × [34] × [34] mm", error)


@pytest.mark.parametrize("orientation", ["LPS", "RAS", "PIL", "ASL"])
@pytest.mark.parametrize(("cut", "expected"), [
    (None, []), ((2, "high", 30), ["left"]), ((0, "low", 10), []),   # a 9 cm² inferior cap
    ((0, "low", 14), ["inferior"]), ((1, "low", 15), ["anterior"]), ("air", [])])
def test_a_field_of_view_that_cuts_the_brain_is_warned_about_naming_the_side(
        orientation, cut, expected) -> None:
    """A 60 mm ball of brain on a 1 mm LPS grid (numpy z, y, x: superior, posterior, left),
    cut through one face (numpy axis, which end is removed, where), then stored in another
    orientation: the side is named in the patient's terms. A 9 cm² cap is no cut; network
    "brain" on a face where the image is air is none either."""
    z, y, x = np.mgrid[:70, :70, :70]
    brain = (z - 35) ** 2 + (y - 35) ** 2 + (x - 35) ** 2 < 30**2
    flair = brain.astype(np.float32)
    if cut == "air":
        brain = np.ones_like(brain)
    elif cut is not None:
        axis, end, where = cut
        keep = [slice(None)] * 3
        keep[axis] = slice(where, None) if end == "low" else slice(None, where)
        brain, flair = brain[tuple(keep)], flair[tuple(keep)]
    image = sitk.DICOMOrient(sitk.GetImageFromArray(flair), orientation)
    stored = sitk.DICOMOrient(sitk.GetImageFromArray(brain.astype(np.uint8)), orientation)
    warnings = wm.cut_brain_warnings(sitk.GetArrayFromImage(stored) > 0, image)
    sides = re.findall(r"cuts the brain on the (.*) sides?:", " ".join(warnings))
    assert sides == ([" and ".join(expected)] if expected else [])


def test_tampered_weights_are_refused(tiny_bundle, tmp_path) -> None:
    copy = write_bundle(tmp_path / "copy", tiny_bundle.metadata, tiny_bundle.load_state_dict())
    weights = copy.path / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(copy.path).load_state_dict()


def test_training_samples_with_the_contrast_dropout_given(case, tmp_path, monkeypatch,
                                                          capsys) -> None:
    from MSLesionAILib.training import wm as wm_training

    given = []

    class RecordingSampler(wm_training.SliceSampler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            given.append(self.contrast_dropout)

    monkeypatch.setattr(wm_training, "SliceSampler", RecordingSampler)
    common = ["--progress", "none", "train", "wm", "--data", str(case.parent), "--steps", "1",
              "--batch-size", "2", "--crop", "32", "--slices", "3", "--features",
              "4,4,4,4,4,4"]
    assert main([*common, "--out", str(tmp_path / "a"), "--contrast-dropout", "0.6"]) == 0
    assert given and set(given) == {0.6}
    bundle = load_bundle(tmp_path / "a")
    assert bundle.metadata["training"]["settings"]["augmentation"]["contrast_dropout"] == 0.6
    assert "dropped with chance 0.6;" in (bundle.path / "MODEL_CARD.md").read_text(
        encoding="utf-8")
    with pytest.raises(SystemExit):
        main([*common, "--out", str(tmp_path / "x"), "--contrast-dropout", "1.5"])
    assert ("argument --contrast-dropout: '1.5' is not a probability (0 to 1)"
            in capsys.readouterr().err)
    assert not (tmp_path / "x").exists()


def test_a_bundle_trained_for_flair_alone_is_measured_with_flair_alone(case, tmp_path,
                                                                      monkeypatch) -> None:
    """--chosen-for-inputs is recorded and named in the model card, and the held-out figures
    after training run the pipeline without the case's T1 and T2."""
    from MSLesionAILib.training import wm as wm_training

    given, run = [], wm.run

    def recording_run(flair, t1, t2, **kwargs):
        given.append((t1 is not None, t2 is not None))
        return run(flair, t1, t2, **kwargs)

    monkeypatch.setattr(wm_training.wm_pipeline, "run", recording_run)
    assert main(["--progress", "none", "train", "wm", "--data", str(case.parent), "--steps", "1",
                 "--batch-size", "2", "--crop", "32", "--slices", "3", "--features",
                 "4,4,4,4,4,4", "--chosen-for-inputs", "flair", "--eval", str(case.parent),
                 "--out", str(tmp_path / "flair")]) == 0
    bundle = load_bundle(tmp_path / "flair")
    assert bundle.metadata["chosen_for_inputs"] == ["flair"] and given == [(False, False)]
    assert "Chosen automatically only when FLAIR alone is given" in (
        bundle.path / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert main(["--progress", "none", "train", "wm", "--data", str(case.parent),
                 "--chosen-for-inputs", "t1", "--out", str(tmp_path / "t1")]) == 2
    assert not (tmp_path / "t1").exists()


def test_training_smoke_writes_a_loadable_reproducible_bundle(case, tmp_path) -> None:
    common = ["--progress", "none", "train", "wm", "--data", str(case.parent), "--steps", "2",
              "--batch-size", "2", "--crop", "32", "--slices", "3", "--features",
              "4,4,4,4,4,4", "--seed", "3"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--out", str(tmp_path / "b")]) == 0
    first, second = load_bundle(tmp_path / "a"), load_bundle(tmp_path / "b")
    assert first.metadata["training"]["seed"] == 3
    assert first.metadata["training"]["data"]["seeds"] == [77]
    augmentation = first.metadata["training"]["settings"]["augmentation"]
    assert augmentation["blur"] == {"prob": 0.4, "sigma_x": [0.0, 1.2], "sigma_y": [0.2, 1.5],
                                    "sigma_z": [0.2, 1.5]}
    assert augmentation["contrast_dropout"] == 0.3
    assert first.weights_sha256 == second.weights_sha256      # same seed, same weights
    parallel = [*common, "--workers", "2", "--device", "cpu"]  # batches drawn in 2 processes
    assert main([*parallel, "--out", str(tmp_path / "w1")]) == 0
    assert main([*parallel, "--out", str(tmp_path / "w2")]) == 0
    checksums = {load_bundle(tmp_path / name).weights_sha256 for name in ("w1", "w2")}
    assert len(checksums) == 1
    assert main([*common, "--out", str(tmp_path / "c"), "--init", str(first.path),
                 "--max-minutes", "0"]) == 0                 # no time: the start's weights
    continued = load_bundle(tmp_path / "c")
    assert continued.weights_sha256 == first.weights_sha256
    assert continued.metadata["parent"]["sha256"] == first.weights_sha256
    assert "Started from" in (continued.path / "MODEL_CARD.md").read_text(encoding="utf-8")
    state = first.load_state_dict()                          # the checksum verifies
    network = build_network("deepscan", **first.metadata["network"])
    network.load_state_dict(state)
    assert "Bias field: not corrected" in (first.path / "MODEL_CARD.md").read_text(
        encoding="utf-8")
    assert main([*common, "--out", str(tmp_path / "n4"), "--bias-correction"]) == 0
    corrected = load_bundle(tmp_path / "n4")
    assert corrected.metadata["bias_correction"] is True
    assert "Bias field: N4-corrected" in (corrected.path / "MODEL_CARD.md").read_text(
        encoding="utf-8")
    assert main(["--progress", "none", "train", "wm-measure", "--bundle", str(first.path),
                 "--phantom", str(case.parent)]) == 0
    measured = load_bundle(first.path)
    figures = measured.metadata["metrics"]["heldout_phantom"]["mean"]
    assert 0 <= figures["dice"] <= 1 and 0 <= figures["brain_mask_dice"] <= 1
    assert measured.weights_sha256 == first.weights_sha256
    assert "heldout_phantom" in (first.path / "MODEL_CARD.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(("contrasts", "model_id", "min_dice"),
                         [(("flair", "t1", "t2"), "wm-deepscan", 0.5),
                          (("flair",), "wm-deepscan-flair", 0.4)])
def test_the_shipped_bundle_chosen_for_the_inputs_finds_lesions_on_a_cropped_phantom_case(
        tmp_path, contrasts, model_id, min_dice) -> None:
    """All three contrasts go to the general model, FLAIR alone to the one trained more often
    without T1 and T2, which finds less (docs/wm.md)."""
    phantom = pytest.importorskip("MSLesionAILib.phantom")
    case = phantom.write_case(phantom.generate_case(8101, kind="wm", crop_mm=72,
                                                    spacing_mm=1.0, wm_lesion_count=12),
                              tmp_path / "case")
    out = tmp_path / "out"
    assert run_cli(*[arg for name in contrasts
                     for arg in (f"--{name}", case / f"{name}.nii.gz")], "--out", out) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["model"]["id"] == model_id
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(case / "truth" / "wm_lesions.nii.gz")))
    found = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "wm_lesions.nii.gz")))
    assert dice(truth > 0, found > 0) > min_dice
