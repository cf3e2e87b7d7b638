"""The rim pipeline end to end through the command line, and a training smoke run, on a tiny
synthetic case (three lesions, one with a paramagnetic rim on phase)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from test_rim_candidates import _ball
from test_wm_pipeline import ThresholdNetwork, tiny_metadata

from conftest import rotation_direction
from MSLesionAILib import bundles, pipelines
from MSLesionAILib.bundles import list_bundles, load_bundle, write_bundle
from MSLesionAILib.cli import main
from MSLesionAILib.geometry import index_zyx_to_ras, resample_like, same_grid
from MSLesionAILib.networks import build_network, load_network
from MSLesionAILib.pipelines.rim import COLUMNS, phase_warnings
from MSLesionAILib.rim_candidates import LARGE_VOLUME_UL
from MSLesionAILib.training._loop import training_stages

SIZE = 48
LESIONS_ZYX = {1: ((24, 24, 14), 4.0, 1), 2: ((24, 24, 32), 3.5, 0), 3: ((14, 30, 24), 3.0, 0)}


def _image(voxels: np.ndarray, path: Path) -> sitk.Image:
    image = sitk.GetImageFromArray(voxels)
    image.SetSpacing((0.8, 0.8, 0.8))
    image.SetOrigin((-20.0, 15.0, -10.0))
    sitk.WriteImage(image, str(path))
    return image


def make_case(folder: Path, seed: int = 0) -> Path:
    """A tiny "brain" with three lesions; lesion 1 has a positive phase rim."""
    rng = np.random.default_rng(seed)
    (folder / "truth").mkdir(parents=True)
    z, y, x = np.mgrid[:SIZE, :SIZE, :SIZE]
    brain = (z - 24) ** 2 + (y - 24) ** 2 + (x - 24) ** 2 < 21**2
    lesions = np.zeros((SIZE,) * 3, np.uint16)
    phase = rng.normal(0, 0.02, lesions.shape)
    for lesion_id, (centre, radius, rim) in LESIONS_ZYX.items():
        distance = np.sqrt((z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2)
        lesions[distance <= radius] = lesion_id
        if rim:
            phase += 0.3 * np.exp(-((distance - radius) ** 2) / 1.5)
    flair = np.where(brain, 1.0, 0.0) + 0.8 * (lesions > 0) + rng.normal(0, 0.03, lesions.shape)
    for name, voxels in (("phase", phase), ("flair", flair), ("mp2rage", 1.0 - 0.5 * flair)):
        _image((voxels * brain).astype(np.float32), folder / f"{name}.nii.gz")
    _image(brain.astype(np.uint8), folder / "brainmask.nii.gz")
    _image(lesions, folder / "truth" / "wm_lesions.nii.gz")
    with open(folder / "truth" / "lesions.csv", "w", encoding="utf-8", newline="") as stream:
        stream.write("lesion_id,family,type,rim\n")
        for lesion_id, (_, _, rim) in LESIONS_ZYX.items():
            stream.write(f"{lesion_id},wm,wm,{rim}\n")
    (folder / "case.json").write_text(json.dumps({"seed": seed}), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_case(tmp_path_factory.mktemp("rim") / "case")


@pytest.fixture(scope="module")
def trained_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rim_train")
    train, validation = make_case(root / "train", 1), make_case(root / "validation", 2)
    out = root / "bundle"
    code = main(["--progress", "none", "train", "rim", "--arch", "deep_prl", "--data",
                 str(train), "--validation", str(validation), "--out", str(out),
                 "--steps", "2", "--batch-size", "4", "--copies", "0", "1"])
    assert code == 0
    return out


def test_training_smoke_writes_a_loadable_bundle(trained_bundle: Path) -> None:
    bundle = load_bundle(trained_bundle)
    assert bundle.task == "rim" and bundle.metadata["architecture"] == "deep_prl"
    assert 0.0 <= bundle.metadata["operating_point"]["threshold"] <= 1.0
    assert bundle.metadata["training"]["data"]["validation_rim_positive"] == 1
    settings = bundle.metadata["training"]["settings"]  # what reproduces the training
    assert settings["shift_vox"] == [2, 2] and settings["focal_gamma"] == 2.0
    load_network(bundle, __import__("torch").device("cpu"))


def test_continued_training_records_each_stage_it_stands_on(trained_bundle: Path,
                                                             tmp_path: Path) -> None:
    first = load_bundle(trained_bundle)
    data = first.metadata["training"]["data"]
    out = tmp_path / "continued"
    assert main(["--progress", "none", "train", "rim", "--arch", "deep_prl", "--data",
                 *data["training_cases"], "--validation", *data["validation_cases"],
                 "--out", str(out), "--steps", "1", "--batch-size", "4", "--copies", "0", "1",
                 "--init", str(trained_bundle)]) == 0
    continued = load_bundle(out)
    assert continued.metadata["parent"]["sha256"] == first.weights_sha256
    assert continued.metadata["parent"]["patches"] == first.metadata["patches"]
    stages = training_stages(continued.metadata)
    assert [stage["steps_done"] for stage in stages] == [1, 2]
    assert stages[1]["seconds"] == first.metadata["training"]["seconds"]
    assert stages[1]["device"] == "cpu"
    assert stages[1]["threads"] == first.metadata["training"]["threads"] >= 1


def test_a_candidate_mask_channel_ignores_a_touching_neighbour(case: Path, trained_bundle: Path,
                                                               tmp_path: Path) -> None:
    """With every lesion in Deep-PRL's mask channel, a lesion drawn touching lesion 1 (its own
    id in the labelmap, so a candidate of its own) moves lesion 1's P(rim+); with the candidate
    alone in the channel it does not, nor do the labelmap's own numbers (the channel is drawn
    from the candidates, numbered as the table's rows). Same weights and images throughout."""
    truth = sitk.ReadImage(str(case / "truth" / "wm_lesions.nii.gz"))
    voxels = sitk.GetArrayFromImage(truth)
    touching = voxels.copy()
    touching[(_ball(voxels.shape, (24, 24, 21), 3.0)) & (voxels == 0)] = 4
    renumbered = np.array([0, 3, 1, 2], voxels.dtype)[voxels]
    masks = {}
    for name, labels in (("alone", voxels), ("touched", touching), ("renumbered", renumbered)):
        image = sitk.GetImageFromArray(labels)
        image.CopyInformation(truth)
        masks[name] = tmp_path / f"{name}.nii.gz"
        sitk.WriteImage(image, str(masks[name]))
    candidate = tmp_path / "candidate_bundle"
    shutil.copytree(trained_bundle, candidate)
    original = load_bundle(candidate)
    bundles.update_metadata(original, patches={**original.metadata["patches"],
                                               "mask_lesions": "candidate"})
    lesion_1 = _truth_centres_ras(truth)[0]

    def probability(bundle: Path, mask: str) -> float:
        out = tmp_path / f"{bundle.name}_{mask}"
        assert _rim(case, out, "--lesion-mask", str(masks[mask]), bundle=bundle) == 0
        rows = _table(out)
        nearest = np.linalg.norm(_centroids_ras(rows) - lesion_1, axis=1).argmin()
        return float(rows[nearest]["rim_probability"])

    alone = probability(candidate, "alone")
    assert probability(candidate, "touched") == alone == probability(candidate, "renumbered")
    assert probability(trained_bundle, "touched") != probability(trained_bundle, "alone")


def _shipped_rim_bundle(architecture: str | None = None) -> Path:
    """The preferred shipped rim bundle, or the first of ``architecture``."""
    shipped = [b for b in list_bundles() if b.task == "rim"
               and architecture in (None, b.metadata["architecture"])]
    if not shipped:
        pytest.skip(f"no shipped {architecture or 'rim'} bundle yet")
    return shipped[0].path


def _rim(case: Path, out: Path, *extra: str, bundle: Path | None = None) -> int:
    return main(["--progress", "none", "rim", "--phase", str(case / "phase.nii.gz"),
                 "--flair", str(case / "flair.nii.gz"), "--mp2rage",
                 str(case / "mp2rage.nii.gz"), "--out", str(out), "--device", "cpu",
                 "--model", str(bundle or _shipped_rim_bundle()), *extra])


def _point(point_ras: np.ndarray) -> str:
    """``--point=R,A,S``: the ``=`` keeps a negative R from reading as an option."""
    return "--point=" + ",".join(f"{v:.2f}" for v in point_ras)


def _table(out: Path) -> list[dict[str, str]]:
    with open(out / "lesions.csv", encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def _truth_centres_ras(reference: sitk.Image) -> np.ndarray:
    """The centres of `LESIONS_ZYX` (the truth lesions' centres of mass), RAS mm."""
    centres = np.array([centre for centre, _, _ in LESIONS_ZYX.values()], float)
    return index_zyx_to_ras(reference, centres)


def _centroids_ras(rows: list[dict[str, str]]) -> np.ndarray:
    return np.array([[float(r[f"centroid_{axis}"]) for axis in "ras"] for r in rows])


def _assert_rows_are_the_truth_lesions(rows: list[dict[str, str]], reference: sitk.Image,
                                       tolerance_mm: float) -> None:
    """One row per truth lesion, its centroid within ``tolerance_mm`` of that lesion's centre."""
    assert len(rows) == len(LESIONS_ZYX)
    distances = np.linalg.norm(_centroids_ras(rows)[:, None] - _truth_centres_ras(reference),
                               axis=2)
    assert sorted(distances.argmin(axis=1).tolist()) == list(range(len(LESIONS_ZYX)))
    assert distances.min(axis=1).max() < tolerance_mm


@pytest.mark.parametrize("architecture", ["deep_prl", "rimnet"])
def test_lesion_mask_gives_one_row_per_candidate(case: Path, tmp_path: Path,
                                                 architecture: str) -> None:
    """Each architecture's shipped bundle end to end (Deep-PRL reads MP2RAGE, RimNet FLAIR)."""
    out = tmp_path / "out"
    assert _rim(case, out, "--lesion-mask", str(case / "truth" / "wm_lesions.nii.gz"),
                bundle=_shipped_rim_bundle(architecture)) == 0
    rows, summary = _table(out), json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["model"]["architecture"] == architecture
    assert list(rows[0]) == COLUMNS and len(rows) == 3 == summary["candidates"]
    ids = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "rim_lesions.nii.gz")))
    assert sorted(np.unique(ids[ids > 0]).tolist()) == [int(r["lesion_id"]) for r in rows]
    assert all(0.0 <= float(r["rim_probability"]) <= 1.0 for r in rows)
    assert summary["prl_count"] == sum(int(r["rim_positive"]) for r in rows)
    assert summary["chronic_active"] is False
    assert (out / "rim.seg.nrrd").is_file()


def test_intensity_scale_and_offset_of_the_structural_images_change_nothing(
        case: Path, tmp_path: Path) -> None:
    """Patches are normalised each on its own percentiles, so another scanner's intensity
    scale or a background above 0 gives the same rim probabilities."""
    shifted = tmp_path / "shifted"
    shutil.copytree(case, shifted)
    for name in ("flair", "mp2rage"):
        image = sitk.ReadImage(str(case / f"{name}.nii.gz"), sitk.sitkFloat32)
        sitk.WriteImage(image * 3.0 + 200.0, str(shifted / f"{name}.nii.gz"))
    for folder in (case, shifted):
        assert _rim(folder, tmp_path / folder.name / "out", "--lesion-mask",
                    str(case / "truth" / "wm_lesions.nii.gz")) == 0
    probabilities = [[row["rim_probability"] for row in _table(tmp_path / name / "out")]
                     for name in (case.name, shifted.name)]
    assert probabilities[0] == probabilities[1] and len(probabilities[0]) == 3


def test_phase_in_the_other_sign_convention_is_negated_back(case: Path, tmp_path: Path) -> None:
    """Scanners differ in the sign of paramagnetic phase. The network is not indifferent to it
    (the rim turned dark changes the probabilities), and `--paramagnetic-phase negative` gives
    exactly the probabilities of the phase in the models' convention."""
    negated = tmp_path / "negated_case"
    shutil.copytree(case, negated)
    phase = sitk.ReadImage(str(case / "phase.nii.gz"), sitk.sitkFloat32)
    sitk.WriteImage(phase * -1.0, str(negated / "phase.nii.gz"))
    runs = {"as given": (case, []), "negated": (negated, []),
            "negated, said so": (negated, ["--paramagnetic-phase", "negative"])}
    probabilities = {}
    for name, (folder, extra) in runs.items():
        out = tmp_path / name
        assert _rim(folder, out, "--lesion-mask", str(case / "truth" / "wm_lesions.nii.gz"),
                    *extra) == 0
        probabilities[name] = [row["rim_probability"] for row in _table(out)]
    assert probabilities["negated, said so"] == probabilities["as given"]
    assert probabilities["negated"] != probabilities["as given"]
    summary = json.loads((tmp_path / "negated, said so" / "summary.json").read_text("utf-8"))
    assert summary["paramagnetic_phase"] == "negative"


def test_empty_mask_gives_an_empty_table(case: Path, tmp_path: Path) -> None:
    mask = sitk.ReadImage(str(case / "truth" / "wm_lesions.nii.gz")) * 0
    sitk.WriteImage(mask, str(tmp_path / "empty.nii.gz"))
    out = tmp_path / "out"
    assert _rim(case, out, "--lesion-mask", str(tmp_path / "empty.nii.gz")) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert _table(out) == [] and summary["prl_count"] == 0 and summary["candidates"] == 0


def test_a_probability_map_as_lesion_mask_is_read_at_one_half_and_said_so(
        case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A segmentation tool's soft output (here 0.6 inside the lesions, 0.2 around them) gives
    the candidates of its 0.5 level, with a warning, not 0 lesions in silence."""
    lesions = sitk.GetArrayFromImage(sitk.ReadImage(str(case / "truth" / "wm_lesions.nii.gz")))
    probability = np.where(lesions > 0, 0.6, 0.0).astype(np.float32)
    probability[(probability == 0) & (np.roll(lesions, 1, axis=2) > 0)] = 0.2
    image = sitk.GetImageFromArray(probability)
    image.CopyInformation(sitk.ReadImage(str(case / "phase.nii.gz")))
    sitk.WriteImage(image, str(tmp_path / "probability.nii.gz"))
    out = tmp_path / "out"
    assert _rim(case, out, "--lesion-mask", str(tmp_path / "probability.nii.gz")) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["candidates"] == len(LESIONS_ZYX)
    assert any("probability map" in w for w in summary["warnings"])
    assert "probability map" in capsys.readouterr().err


def test_point_inside_a_lesion_classifies_that_lesion(case: Path, tmp_path: Path) -> None:
    reference = sitk.ReadImage(str(case / "phase.nii.gz"))
    point = index_zyx_to_ras(reference, np.array(LESIONS_ZYX[2][0], float))[0]
    out = tmp_path / "out"
    assert _rim(case, out, "--lesion-mask", str(case / "truth" / "wm_lesions.nii.gz"),
                _point(point)) == 0
    rows = _table(out)
    assert len(rows) == 1 and rows[0]["note"] == ""
    assert abs(float(rows[0]["centroid_r"]) - point[0]) < 0.5
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["chronic_active"] is None   # one lesion says nothing of the patient


def test_point_without_a_candidate_inside_brain_is_flagged_with_the_reason(
        case: Path, tmp_path: Path) -> None:
    """A patch at the point, and why there is no candidate: no mask was given, a lesion too
    small to be one (2 voxels of 0.8 mm) is there, or no lesion is there."""
    reference = sitk.ReadImage(str(case / "phase.nii.gz"))
    index = (34, 16, 24)
    point = index_zyx_to_ras(reference, np.array(index, float))[0]
    lesions = sitk.GetArrayFromImage(sitk.ReadImage(str(case / "truth" / "wm_lesions.nii.gz")))
    assert not lesions[index]
    with_small = lesions.copy()
    with_small[index[0], index[1], index[2]:index[2] + 2] = lesions.max() + 1
    _image(with_small, tmp_path / "with_small.nii.gz")
    notes = {}
    for name, mask in (("none", []), ("truth", ["--lesion-mask", str(case / "truth" /
                                                                    "wm_lesions.nii.gz")]),
                       ("small", ["--lesion-mask", str(tmp_path / "with_small.nii.gz")])):
        out = tmp_path / name
        assert _rim(case, out, _point(point), "--brain-mask",
                    str(case / "brainmask.nii.gz"), *mask) == 0
        [row] = _table(out)
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        assert row["lesion_id"] == "0" and summary["point"]["lesion_id"] == 0
        notes[name] = row["note"]
    assert notes == {"none": "no lesion mask given: a patch centred at the point",
                     "truth": "no lesion at point",
                     "small": "a lesion under 12.3 µL, too small to be a candidate: a patch "
                              "centred at the point"}


def test_point_outside_lesions_and_brain_is_an_error(case: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    reference = sitk.ReadImage(str(case / "phase.nii.gz"))
    point = index_zyx_to_ras(reference, np.array([1.0, 1.0, 1.0]))[0]
    code = _rim(case, tmp_path / "out", _point(point),
                "--brain-mask", str(case / "brainmask.nii.gz"))
    assert code == 2 and "outside the brain" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_point_in_the_salt_and_pepper_air_of_an_mp2rage_is_outside_the_brain(
        case: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A UNI image that is not skull-stripped is noise over its whole range outside the head.
    Without a brain mask, the brain is the MP2RAGE's foreground less that noise, so a click in
    the air is refused as a click outside the brain, not classified."""
    noisy = tmp_path / "noisy_air"
    shutil.copytree(case, noisy)
    mp2rage = sitk.ReadImage(str(case / "mp2rage.nii.gz"), sitk.sitkFloat32)
    voxels = sitk.GetArrayFromImage(mp2rage)
    brain = sitk.GetArrayFromImage(sitk.ReadImage(str(case / "brainmask.nii.gz"))) > 0
    air = np.random.default_rng(3).uniform(0.0, voxels.max(), voxels.shape)
    _image(np.where(brain, voxels, air).astype(np.float32), noisy / "mp2rage.nii.gz")
    point = index_zyx_to_ras(mp2rage, np.array([2.0, 2.0, 2.0]))[0]
    code = _rim(noisy, tmp_path / "out", _point(point))
    assert code == 2 and "outside the brain" in capsys.readouterr().err


def test_mask_not_overlapping_phase_is_refused(case: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    mask = sitk.ReadImage(str(case / "truth" / "wm_lesions.nii.gz"))
    mask.SetOrigin((500.0, 500.0, 500.0))
    sitk.WriteImage(mask, str(tmp_path / "far.nii.gz"))
    code = _rim(case, tmp_path / "out", "--lesion-mask", str(tmp_path / "far.nii.gz"))
    error = capsys.readouterr().err
    assert code == 2 and "--lesion-mask" in error and "does not overlap" in error
    assert len(error.strip().splitlines()) == 1


@pytest.fixture
def tiny_wm_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the installed white-matter model a tiny bundle in MSLESIONAI_MODEL_DIRS (the only
    one) whose network marks bright FLAIR; the shipped Deep-PRL bundle, to run rim with."""
    rim_bundle = _shipped_rim_bundle("deep_prl")  # found before the shipped ones are hidden
    metadata = tiny_metadata()
    write_bundle(tmp_path / "models" / "wm-tiny", metadata,
                 build_network("deepscan", **metadata["network"]).state_dict())
    monkeypatch.setattr(bundles, "SHIPPED_MODELS_DIR", tmp_path / "no shipped models")
    monkeypatch.setenv("MSLESIONAI_MODEL_DIRS", str(tmp_path / "models"))
    monkeypatch.setattr(pipelines.wm, "load_network", lambda bundle, device: ThresholdNetwork())
    return rim_bundle


def test_without_a_mask_or_point_the_white_matter_pipeline_finds_the_lesions(
        case: Path, tmp_path: Path, tiny_wm_model: Path) -> None:
    """No --lesion-mask, no --point: the installed white-matter model segments the lesions on
    FLAIR first, and summary.json says which model did."""
    out = tmp_path / "out"
    assert _rim(case, out, bundle=tiny_wm_model) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    # FLAIR fed the white-matter model, so it is not reported unused even by Deep-PRL.
    warnings = summary["warnings"]  # the tiny model's 2 mm grid also gives a spacing warning
    assert warnings[0] == "white-matter lesions segmented by model wm-tiny"
    assert f"white-matter step: {pipelines.wm.FLAIR_ONLY_WARNING}" in warnings
    assert all(w.startswith("white-matter step: ") for w in warnings[1:])
    # The tiny model works on a 2 mm grid: its lesions are coarser than the truth.
    _assert_rows_are_the_truth_lesions(_table(out), sitk.ReadImage(str(case / "phase.nii.gz")),
                                       tolerance_mm=1.5)


def test_t1_and_t2_reach_the_white_matter_step_and_are_otherwise_said_to_be_unused(
        case: Path, tmp_path: Path, tiny_wm_model: Path) -> None:
    """--t1/--t2 are read only by the step that segments the lesions (any image will do here:
    the FLAIR stands in for both)."""
    flair = str(case / "flair.nii.gz")
    out = tmp_path / "segmented"
    assert _rim(case, out, "--t1", flair, "--t2", flair, bundle=tiny_wm_model) == 0
    warnings = json.loads((out / "summary.json").read_text(encoding="utf-8"))["warnings"]
    assert f"white-matter step: {pipelines.wm.FLAIR_ONLY_WARNING}" not in warnings
    assert not [w for w in warnings if w.startswith(("--t1", "--t2"))]
    out = tmp_path / "masked"
    assert _rim(case, out, "--t1", flair, "--lesion-mask",
                str(case / "truth" / "wm_lesions.nii.gz"), bundle=tiny_wm_model) == 0
    warnings = json.loads((out / "summary.json").read_text(encoding="utf-8"))["warnings"]
    assert [w for w in warnings if w.startswith("--t1")] == [
        "--t1: read only by the white-matter step, which does not run with --lesion-mask or "
        "--point; ignored"]


def test_the_brain_mask_also_bounds_the_white_matter_step(case: Path, tmp_path: Path,
                                                          tiny_wm_model: Path) -> None:
    brain = sitk.GetArrayFromImage(sitk.ReadImage(str(case / "brainmask.nii.gz")))
    brain[:, :, :20] = 0                                 # lesion 1 (x = 14) outside the brain
    _image(brain, tmp_path / "cut_brain.nii.gz")
    out = tmp_path / "out"
    assert _rim(case, out, "--brain-mask", str(tmp_path / "cut_brain.nii.gz"),
                bundle=tiny_wm_model) == 0
    reference = sitk.ReadImage(str(case / "phase.nii.gz"))
    kept = index_zyx_to_ras(reference, np.array([LESIONS_ZYX[i][0] for i in (2, 3)], float))
    centroids = _centroids_ras(_table(out))
    assert len(centroids) == 2
    assert np.linalg.norm(centroids[:, None] - kept, axis=2).min(axis=1).max() < 1.5


def test_lesions_beyond_a_phase_slab_are_said_to_be_left_out(case: Path,
                                                            tmp_path: Path) -> None:
    phase = sitk.ReadImage(str(case / "phase.nii.gz"))
    slab = tmp_path / "slab"
    shutil.copytree(case, slab)
    sitk.WriteImage(phase[20:, :, :], str(slab / "phase.nii.gz"))   # lesion 1 (x = 14) beyond
    out = tmp_path / "out"
    assert _rim(slab, out, "--lesion-mask", str(case / "truth" / "wm_lesions.nii.gz")) == 0
    warnings = json.loads((out / "summary.json").read_text(encoding="utf-8"))["warnings"]
    lost = [w for w in warnings if "outside the phase image's field of view" in w]
    assert len(lost) == 1 and lost[0].startswith("--lesion-mask: ")
    assert len(_table(out)) == 2
    # A mask inside the phase's field of view on a coarser grid: resampling changes its volume,
    # not its coverage, so no warning.
    truth = sitk.ReadImage(str(case / "truth" / "wm_lesions.nii.gz"))
    coarse = sitk.Resample(truth, [int(n * 0.8 / 1.3) for n in truth.GetSize()],
                           sitk.Transform(), sitk.sitkNearestNeighbor, truth.GetOrigin(),
                           (1.3, 1.3, 1.3), truth.GetDirection())
    sitk.WriteImage(coarse, str(tmp_path / "coarse.nii.gz"))
    assert _rim(case, tmp_path / "coarse", "--lesion-mask", str(tmp_path / "coarse.nii.gz")) == 0
    summary = json.loads((tmp_path / "coarse" / "summary.json").read_text(encoding="utf-8"))
    assert not any("field of view" in w for w in summary["warnings"])


def test_a_brain_mask_warning_is_given_once_not_again_by_the_white_matter_step(
        case: Path, tmp_path: Path, tiny_wm_model: Path) -> None:
    brain = sitk.GetArrayFromImage(sitk.ReadImage(str(case / "brainmask.nii.gz"))).astype(np.int8)
    _image(np.where(brain > 0, 1, -1).astype(np.int8), tmp_path / "signed_brain.nii.gz")
    out = tmp_path / "out"
    assert _rim(case, out, "--brain-mask", str(tmp_path / "signed_brain.nii.gz"),
                bundle=tiny_wm_model) == 0
    warnings = json.loads((out / "summary.json").read_text(encoding="utf-8"))["warnings"]
    assert [w for w in warnings if "--brain-mask" in w] == [
        "--brain-mask: has negative values, read as 0 (outside the mask)"]


def test_a_flair_that_does_not_overlap_the_phase_is_refused_before_segmenting_it(
        case: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Deep-PRL does not read FLAIR, but the white-matter step does: checked all the same."""
    moved = tmp_path / "moved"
    shutil.copytree(case, moved)
    flair = sitk.ReadImage(str(case / "flair.nii.gz"))
    flair.SetOrigin((500.0, 500.0, 500.0))
    sitk.WriteImage(flair, str(moved / "flair.nii.gz"))
    code = _rim(moved, tmp_path / "out", bundle=_shipped_rim_bundle("deep_prl"))
    error = capsys.readouterr().err
    assert code == 2 and "--flair" in error and "does not overlap" in error


def test_a_contrast_the_model_does_not_read_is_named_in_a_warning(case: Path,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _rim(case, out, "--lesion-mask", str(case / "truth" / "wm_lesions.nii.gz"),
                "--t2star", str(case / "flair.nii.gz"),
                bundle=_shipped_rim_bundle("deep_prl")) == 0
    warnings = json.loads((out / "summary.json").read_text(encoding="utf-8"))["warnings"]
    assert [w.split(":")[0] for w in warnings] == ["--flair", "--t2star"]


def _oblique_like(image: sitk.Image, spacing: tuple[float, float, float]) -> sitk.Image:
    """``image`` resampled (linear) onto a grid of ``spacing`` rotated 20° about S, centred
    where ``image`` is and as wide."""
    size = [int(np.ceil(n * old / new))
            for n, old, new in zip(image.GetSize(), image.GetSpacing(), spacing, strict=True)]
    centre = image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in image.GetSize()])
    direction = np.array(rotation_direction()).reshape(3, 3)
    grid = sitk.Image(size, image.GetPixelID())
    grid.SetSpacing(spacing)
    grid.SetDirection(rotation_direction())
    origin = np.array(centre) - direction @ ((np.array(size) - 1) / 2 * np.array(spacing))
    grid.SetOrigin(origin.tolist())
    return resample_like(image, grid)


def test_contrasts_and_mask_on_another_grid_are_brought_into_the_phase_space(
        case: Path, tmp_path: Path) -> None:
    """Phase on an oblique, anisotropic grid; FLAIR, MP2RAGE and the mask on the case's
    axis-aligned 0.8 mm one. They are resampled onto the phase grid (the same table as when
    they come resampled by hand), the candidates are the truth lesions where they are in
    physical space, and the outputs have the phase image's geometry."""
    oblique, by_hand = tmp_path / "oblique_phase", tmp_path / "all_on_the_phase_grid"
    shutil.copytree(case, oblique)
    sitk.WriteImage(_oblique_like(sitk.ReadImage(str(case / "phase.nii.gz")), (0.7, 0.9, 1.1)),
                    str(oblique / "phase.nii.gz"))
    shutil.copytree(oblique, by_hand)
    phase = sitk.ReadImage(str(oblique / "phase.nii.gz"))
    for name, interpolation in (("flair", "linear"), ("mp2rage", "linear"),
                                ("truth/wm_lesions", "nearest")):
        image = sitk.ReadImage(str(case / f"{name}.nii.gz"))
        sitk.WriteImage(resample_like(image, phase, interpolation),
                        str(by_hand / f"{name}.nii.gz"))
    for folder in (oblique, by_hand):
        out = tmp_path / folder.name / "out"
        assert _rim(folder, out, "--lesion-mask",
                    str(folder / "truth" / "wm_lesions.nii.gz")) == 0
        assert same_grid(sitk.ReadImage(str(out / "rim_lesions.nii.gz")), phase)
        assert same_grid(sitk.ReadImage(str(out / "rim.seg.nrrd")), phase)
    rows = _table(tmp_path / oblique.name / "out")
    assert rows == _table(tmp_path / by_hand.name / "out")
    _assert_rows_are_the_truth_lesions(rows, sitk.ReadImage(str(case / "phase.nii.gz")),
                                       tolerance_mm=0.5)


def test_split_and_large_lesions_are_recorded_in_the_table_and_summary(
        case: Path, tmp_path: Path) -> None:
    """A mask of two balls joined by a neck (split in two) and one very large ball."""
    spacing = (0.8, 0.8, 0.8)  # `make_case`'s grid
    large_radius_mm = (3 * LARGE_VOLUME_UL / (4 * np.pi)) ** (1 / 3) + 1.5
    mask = (_ball((SIZE,) * 3, (15, 24, 24), large_radius_mm, spacing)
            | _ball((SIZE,) * 3, (36, 24, 19), 5.0, spacing)
            | _ball((SIZE,) * 3, (36, 24, 29), 5.0, spacing))
    _image(mask.astype(np.uint8), tmp_path / "mask.nii.gz")
    out = tmp_path / "out"
    assert _rim(case, out, "--lesion-mask", str(tmp_path / "mask.nii.gz")) == 0
    # Candidates are numbered by volume: the large ball is 1, the halves of the joined balls
    # are 2 and 3, and each names the rows the component became.
    assert [(r["lesion_id"], r["split_from"], r["note"]) for r in _table(out)] == [
        ("1", "", "large"), ("2", "2+3", ""), ("3", "2+3", "")]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["split"] == [{"into": [2, 3]}]
    assert summary["large"] == [1] and summary["candidates"] == 3
    half = index_zyx_to_ras(sitk.ReadImage(str(case / "phase.nii.gz")),
                            np.array([[36.0, 24.0, 29.0]]))[0]
    assert _rim(case, tmp_path / "one", "--lesion-mask", str(tmp_path / "mask.nii.gz"),
                _point(half)) == 0                      # click on one half: only it is listed
    [row] = _table(tmp_path / "one")
    summary = json.loads((tmp_path / "one" / "summary.json").read_text(encoding="utf-8"))
    assert row["split_from"] == "2+3" and summary["split"] == [{"into": [2, 3]}]


def test_wrapped_phase_is_noticed() -> None:
    z, y, x = np.mgrid[:32, :32, :32]
    smooth = 0.4 * (x + 0.5 * y) - 6.0
    brain = np.ones(smooth.shape, bool)
    assert phase_warnings(smooth, brain) == []
    wrapped = np.angle(np.exp(1j * smooth))
    assert "wrapped" in phase_warnings(wrapped, brain)[0]


def test_veins_on_unwrapped_phase_are_not_taken_for_wraps() -> None:
    rng = np.random.default_rng(0)
    phase = rng.normal(0.0, 0.05, (32, 32, 32)).astype(np.float32)
    phase[::4, ::4, :] = 1.5       # bright veins: big steps from tissue to one end
    phase[2::8, 2::8, :] = -1.0    # and dark ones to the other end
    assert phase_warnings(phase, np.ones(phase.shape, bool)) == []
