"""The phantom's truth matches its images: files, ids, volumes, geometry, types, rims."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from MSLesionAILib.cli import main
from MSLesionAILib.geometry import same_grid
from MSLesionAILib.labels import (
    INFRATENTORIAL,
    INTRACORTICAL,
    LEUKOCORTICAL,
    PERIVENTRICULAR,
    SUBPIAL,
    Tissue,
)
from MSLesionAILib.phantom import generate_case, write_case
from MSLesionAILib.phantom.contrasts import draw_tissue_values, synthesize
from MSLesionAILib.phantom.epi import PHASE_ENCODING_AXIS, distort
from MSLesionAILib.phantom.rim import MIN_RIM_LESION_UL, _edge_vein, _Site
from MSLesionAILib.phantom.veins import VeinCanvas

FACES = ndimage.generate_binary_structure(3, 1)
SMALL = {"spacing_mm": 1.5, "crop_mm": 60.0}


@pytest.fixture(scope="module")
def wm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    case = generate_case(7, "wm", wm_lesion_count=40, **SMALL)
    return write_case(case, tmp_path_factory.mktemp("phantom") / "wm")


@pytest.fixture(scope="module")
def cortical_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    case = generate_case(3, "cortical", crop_mm=36.0, cortical_lesion_count=40)
    return write_case(case, tmp_path_factory.mktemp("phantom") / "cortical")


@pytest.fixture(scope="module")
def rim_case():
    return generate_case(11, "rim", wm_lesion_count=60, spacing_mm=1.0, crop_mm=70.0)


def read(folder: Path, name: str) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(folder / name)))


def rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "truth" / "lesions.csv", encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def test_case_folder_has_the_files_of_its_kind(wm_folder: Path, cortical_folder: Path) -> None:
    names = {p.relative_to(wm_folder).as_posix() for p in wm_folder.rglob("*") if p.is_file()}
    assert names == {"flair.nii.gz", "t1.nii.gz", "t2.nii.gz", "brainmask.nii.gz", "case.json",
                     "truth/wm_lesions.nii.gz", "truth/cortical_lesions.nii.gz",
                     "truth/tissue.nii.gz", "truth/lesions.csv"}
    assert {p.name for p in cortical_folder.glob("*.nii.gz")} == {
        "mp2rage.nii.gz", "t2star.nii.gz", "t2star_epi.nii.gz", "brainmask.nii.gz"}
    with open(wm_folder / "truth" / "lesions.csv", encoding="utf-8") as stream:
        assert stream.readline().strip() == ("lesion_id,family,type,rim,volume_ul,centroid_r,"
                                             "centroid_a,centroid_s,confluent_group")


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    small = {"spacing_mm": 2.0, "crop_mm": 40.0, "wm_lesion_count": 10}
    first = write_case(generate_case(5, "wm", **small), tmp_path / "a")
    again = write_case(generate_case(5, "wm", **small), tmp_path / "b")
    other = write_case(generate_case(6, "wm", **small), tmp_path / "c")
    for path in first.rglob("*"):
        if path.is_file():
            relative = path.relative_to(first)
            assert path.read_bytes() == (again / relative).read_bytes(), relative
    assert (first / "flair.nii.gz").read_bytes() != (other / "flair.nii.gz").read_bytes()


def test_every_table_lesion_is_in_its_labelmap_with_its_volume(wm_folder: Path,
                                                              cortical_folder: Path) -> None:
    for folder in (wm_folder, cortical_folder):
        table = rows(folder)
        assert table, folder
        for family, image in (("wm", "wm_lesions"), ("cortical", "cortical_lesions")):
            labels = read(folder, f"truth/{image}.nii.gz")
            voxel_ul = float(np.prod(sitk.ReadImage(str(folder / "flair.nii.gz" if (
                folder / "flair.nii.gz").exists() else folder / "mp2rage.nii.gz")).GetSpacing()))
            listed = {int(r["lesion_id"]): float(r["volume_ul"]) for r in table
                      if r["family"] == family}
            present = set(np.unique(labels)) - {0}
            assert present == set(listed)
            counts = np.bincount(labels.ravel())
            for lesion_id, volume_ul in listed.items():
                assert abs(counts[lesion_id] * voxel_ul - volume_ul) <= voxel_ul


def test_each_lesion_is_one_piece_and_confluent_groups_touch(wm_folder: Path) -> None:
    labels = read(wm_folder, "truth/wm_lesions.nii.gz")
    for lesion_id in np.unique(labels)[1:]:
        assert ndimage.label(labels == lesion_id, np.ones((3, 3, 3)))[1] == 1
    groups: dict[str, list[int]] = {}
    for row in rows(wm_folder):
        if row["confluent_group"] != "0":
            groups.setdefault(row["confluent_group"], []).append(int(row["lesion_id"]))
    assert groups, "a 40-lesion case should have a confluent group"
    components = ndimage.label(labels > 0, np.ones((3, 3, 3)))[0]
    for members in groups.values():
        assert len(members) >= 2
        assert len({components[labels == m][0] for m in members}) == 1


def test_all_files_share_one_oblique_grid(wm_folder: Path) -> None:
    images = [sitk.ReadImage(str(p)) for p in sorted(wm_folder.rglob("*.nii.gz"))]
    assert all(same_grid(images[0], image) for image in images[1:])
    direction = np.array(images[0].GetDirection()).reshape(3, 3)
    assert np.abs(direction - np.round(direction)).max() > 0.05  # not axis-aligned
    recorded = json.loads((wm_folder / "case.json").read_text(encoding="utf-8"))["geometry"]
    assert np.allclose(direction.ravel(), recorded["direction"], atol=1e-6)
    assert np.allclose(images[0].GetOrigin(), recorded["origin_lps"], atol=1e-4)


def test_centroids_are_in_slicer_ras(wm_folder: Path) -> None:
    image = sitk.ReadImage(str(wm_folder / "truth" / "wm_lesions.nii.gz"))
    labels = sitk.GetArrayFromImage(image)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    for row in rows(wm_folder)[:10]:
        index_xyz = np.argwhere(labels == int(row["lesion_id"])).mean(0)[::-1]
        lps = np.array(image.GetOrigin()) + direction @ (index_xyz * image.GetSpacing())
        ras = lps * np.array([-1, -1, 1])
        listed = [float(row[f"centroid_{axis}"]) for axis in "ras"]
        assert np.allclose(ras, listed, atol=0.01)


def test_wm_types_obey_their_definitions(wm_folder: Path) -> None:
    labels = read(wm_folder, "truth/wm_lesions.nii.gz")
    tissue = read(wm_folder, "truth/tissue.nii.gz")
    spacing = sitk.ReadImage(str(wm_folder / "flair.nii.gz")).GetSpacing()[::-1]
    to_ventricles = ndimage.distance_transform_edt(tissue != Tissue.VENTRICLES, sampling=spacing)
    seen = set()
    for row in rows(wm_folder):
        lesion = labels == int(row["lesion_id"])
        assert np.isin(tissue[lesion], (Tissue.WHITE_MATTER, Tissue.INFRATENTORIAL)).all()
        seen.add(row["type"])
        if row["type"] == PERIVENTRICULAR:
            assert to_ventricles[lesion].min() <= 3.0 + max(spacing)
        if row["type"] == INFRATENTORIAL:
            assert (tissue[lesion] == Tissue.INFRATENTORIAL).mean() > 0.5
    assert PERIVENTRICULAR in seen and len(seen) >= 3


def test_cortical_types_obey_their_definitions(cortical_folder: Path) -> None:
    labels = read(cortical_folder, "truth/cortical_lesions.nii.gz")
    tissue = read(cortical_folder, "truth/tissue.nii.gz")
    spacing = sitk.ReadImage(str(cortical_folder / "mp2rage.nii.gz")).GetSpacing()
    assert all(0.5 <= s <= 0.7 for s in spacing)
    outside = np.isin(tissue, (Tissue.CSF, Tissue.BACKGROUND))
    seen = set()
    for row in rows(cortical_folder):
        if row["family"] != "cortical":
            continue
        lesion = labels == int(row["lesion_id"])
        ring = ndimage.binary_dilation(lesion, FACES) & ~lesion
        inside = tissue[lesion]
        seen.add(row["type"])
        assert 1.0 <= float(row["volume_ul"]) <= 60.0
        if row["type"] == LEUKOCORTICAL:
            assert (inside == Tissue.CORTICAL_GM).any() and (inside == Tissue.WHITE_MATTER).any()
        elif row["type"] == INTRACORTICAL:
            assert (inside == Tissue.CORTICAL_GM).all()
            assert not outside[ring].any() and not (tissue[ring] == Tissue.WHITE_MATTER).any()
        else:
            assert row["type"] == SUBPIAL
            assert (inside == Tissue.CORTICAL_GM).all() and outside[ring].any()
    assert seen == {LEUKOCORTICAL, INTRACORTICAL, SUBPIAL}


def test_rim_lesions_are_large_enough_and_bright_at_their_border(rim_case) -> None:
    labels = sitk.GetArrayFromImage(rim_case.truth["wm_lesions"])
    phase = sitk.GetArrayFromImage(rim_case.images["phase"])
    rim_rows = [r for r in rim_case.lesions if r["rim"] == 1]
    assert rim_rows and len(rim_rows) < len(rim_case.lesions)
    assert all(r["volume_ul"] >= MIN_RIM_LESION_UL for r in rim_rows)

    def border_minus_core(lesion_id: int) -> float:
        lesion = labels == lesion_id
        border = lesion & ~ndimage.binary_erosion(lesion)
        return float(phase[border].mean() - phase[lesion & ~border].mean()) if (
            lesion & ~border).any() else 0.0

    rim_scores = [border_minus_core(r["lesion_id"]) for r in rim_rows]
    other_scores = [border_minus_core(r["lesion_id"]) for r in rim_case.lesions
                    if r["rim"] == 0 and r["volume_ul"] >= MIN_RIM_LESION_UL]
    assert np.median(rim_scores) > np.median(other_scores)


def test_cases_without_rims_keep_the_phantom4_mimics() -> None:
    """Cortical (and WM) cases draw no phantom.5 rim mimic, so their bytes stay phantom.4's:
    these are the mimics phantom.4 drew for this case."""
    case = generate_case(3, "cortical", crop_mm=40.0, wm_lesion_count=12)
    mimics = [r["phase_mimic"] for r in case.parameters["lesions"] if r["family"] == "wm"]
    assert mimics == PHANTOM4_CORTICAL_MIMICS


PHANTOM4_CORTICAL_MIMICS = [
    "none", "touching_vein", "core", "none", "touching_vein", "core", "diffuse", "none", "core",
    "touching_vein", "central_vein", "touching_vein", "none", "central_vein", "touching_vein",
    "none", "central_vein"]


def test_rim_cases_carry_the_phantom5_mimics_and_rim_depths(rim_case) -> None:
    lesions = [r for r in rim_case.parameters["lesions"] if r["family"] == "wm"]
    negative = {r["phase_mimic"] for r in lesions if not r["rim"]}
    assert {"edge_vein", "paramagnetic"} <= negative
    positive = [r for r in lesions if r["rim"]]
    assert "paramagnetic" not in {r["phase_mimic"] for r in positive}
    assert all(-0.5 <= r["rim_details"]["depth_mm"] <= 1.0 for r in positive)


def test_edge_vein_hugs_the_border_and_then_leaves_it() -> None:
    """A vein along the border, not a shell: most of it within a voxel or so of the border,
    nothing deep inside, and its ends run on away from the lesion."""
    grid = sitk.Image(40, 40, 40, sitk.sitkFloat32)
    canvas = VeinCanvas(SimpleNamespace(grid=grid, tissue=np.zeros((40, 40, 40), np.uint8)))
    distance_mm = np.linalg.norm(np.indices((40, 40, 40)) - 19.5, axis=0)
    lesion = distance_mm <= 6.0
    box = (slice(0, 40),) * 3
    radii = _Site(lesion, box, canvas).border_mm(np.eye(3))
    assert np.allclose(radii, 6.0, atol=0.6)
    _edge_vein(np.random.default_rng(0), _Site(lesion, box, canvas), np.zeros(lesion.shape))
    drawn = distance_mm[canvas.lines > 0]
    assert np.mean(np.abs(drawn - 6.0) <= 1.5) > 0.6
    assert drawn.min() > 6.0 - 1.5 and drawn.max() > 6.0 + 1.5


def test_command_writes_one_folder_per_seed_and_a_dataset_manifest(tmp_path: Path) -> None:
    options = ["--kind", "wm", "--spacing-mm", "2", "--crop-mm", "40", "--progress", "none"]
    assert main(["--progress", "none", "phantom", str(tmp_path / "cases"), "--seed", "1", "2",
                 *options[:-2]]) == 0
    assert sorted(p.name for p in (tmp_path / "cases").iterdir()) == ["case_0001", "case_0002"]
    assert main(["--progress", "none", "phantom-dataset", str(tmp_path / "set"), "--n", "2",
                 "--seed", "10", *options[:-2]]) == 0
    manifest = json.loads((tmp_path / "set" / "manifest.json").read_text(encoding="utf-8"))
    assert [c["seed"] for c in manifest["cases"]] == [10, 11]
    assert all((tmp_path / "set" / c["folder"] / "flair.nii.gz").exists()
               for c in manifest["cases"])
    started = time.perf_counter()
    assert main(["phantom", str(tmp_path / "cases"), "--seed", "3"]) != 0  # never overwrites
    assert time.perf_counter() - started < 5.0  # refused before generating a whole brain


@pytest.mark.parametrize("argv", [["--seed", "-1"], ["--seed", "1.5"],
                                  ["--seed", "1", "--spacing-mm", "nan"],
                                  ["--seed", "1", "--spacing-mm", "0.01"],
                                  ["--seed", "1", "--spacing-mm", "1", "1"]])
def test_seeds_and_voxel_sizes_no_phantom_can_have_are_refused_in_one_line(tmp_path, capsys,
                                                                          argv) -> None:
    try:
        code = main(["--progress", "none", "phantom", *argv, "--", str(tmp_path / "case")])
    except SystemExit as refused:   # by the parser
        code = refused.code
    assert code != 0
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert any(refusal in error for refusal in (
        "is not a seed", "is not a voxel size of 0.3–5.0 mm", "is not one or three voxel sizes"))
    assert not (tmp_path / "case").exists()


@pytest.mark.parametrize("command", [["phantom", "--seed", "1", "2", "OUT"],
                                     ["phantom", "--seed", "1", "--spacing-mm", "1", "OUT"],
                                     ["phantom-dataset", "--n", "1", "--spacing-mm", "1", "OUT"],
                                     ["phantom", "OUT", "--seed", "1", "--spacing-mm", "1mm"],
                                     ["phantom-dataset", "OUT", "--n", "1", "--seed", "abc"],
                                     ["phantom-calibrate", "--seed", "abc"]])
def test_out_dir_after_an_option_of_several_values_is_named_as_the_cause_and_only_then(
        tmp_path, monkeypatch, capsys, command) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["--progress", "none", *command])
    hinted = "give OUT_DIR first" in capsys.readouterr().err
    assert hinted == (command[-1] == "OUT")


def test_randomised_all_kind_has_every_contrast_on_one_anisotropic_grid() -> None:
    case = generate_case(21, "all", mode="randomised", spacing_mm=(1.2, 1.2, 2.4), crop_mm=50.0)
    assert set(case.images) == {"flair", "t1", "t2", "mp2rage", "t2star", "t2star_epi", "phase"}
    grids = [*case.images.values(), case.brainmask, *case.truth.values()]
    assert all(same_grid(grids[0], image) for image in grids[1:])
    assert np.allclose(grids[0].GetSpacing(), (1.2, 1.2, 2.4))
    phase = sitk.GetArrayFromImage(case.images["phase"])
    assert np.isfinite(phase).all() and phase.min() < 0 < phase.max()
    realistic = generate_case(21, "all", spacing_mm=(1.2, 1.2, 2.4), crop_mm=50.0)
    assert case.parameters["tissue_values"] != realistic.parameters["tissue_values"]


def test_whole_brain_fits_in_its_oblique_field_of_view() -> None:
    for seed in (1, 2):
        case = generate_case(seed, "wm", mode="randomised", spacing_mm=2.5, wm_lesion_count=0)
        brain = sitk.GetArrayFromImage(case.brainmask)
        assert brain.sum() * 2.5**3 > 1.0e6  # a whole brain (µL), not a crop
        faces = [brain[0], brain[-1], brain[:, 0], brain[:, -1], brain[:, :, 0], brain[:, :, -1]]
        assert not any(face.any() for face in faces)


def test_a_cortical_lesion_replaces_grey_matter_not_csf() -> None:
    """Voxels: half CSF / half grey matter, then pure grey matter; the lesion fills both."""
    fractions = {"csf": np.array([0.5, 0.0]), "gm": np.array([0.5, 1.0]),
                 "wm": np.zeros(2), "deep_gm": np.zeros(2), "infratentorial": np.zeros(2)}
    anatomy = SimpleNamespace(fractions=fractions)
    values = {"csf": 0.1, "gm": 0.7, "deep_gm": 0.8, "wm": 1.0, "dawm": 0.0,
              "wm_lesion": 0.6, "cortical_lesion": 0.6, "vein": 0.9}
    none, ones = np.zeros(2), np.ones(2)

    def image(cortical_fraction: np.ndarray) -> np.ndarray:
        return synthesize(anatomy, values, none, cortical_fraction, none, ones, none)

    np.testing.assert_allclose(image(ones), [0.5 * 0.1 + 0.5 * 0.6, 0.6], rtol=1e-6)
    assert (image(ones) < image(none)).all()  # darker than grey matter, the CSF share kept


def test_realistic_cortical_lesions_are_as_visible_as_rated_ones(cortical_folder: Path) -> None:
    """Raters draw a 7 T cortical lesion only where it shows (CLAIMS: on two slices), so every
    realistic one is at least 5 % darker than cortex on MP2RAGE and brighter on T2*."""
    record = json.loads((cortical_folder / "case.json").read_text())
    severities = [row["severity"] for row in record["lesions"] if row["family"] == "cortical"]
    rng = np.random.default_rng(0)
    draws = [draw_tissue_values(rng, "realistic", ("mp2rage", "t2star")) for _ in range(200)]
    darker = min(1 - d["mp2rage"]["cortical_lesion"] / d["mp2rage"]["gm"] for d in draws)
    brighter = min(d["t2star"]["cortical_lesion"] / d["t2star"]["gm"] - 1 for d in draws)
    assert severities and darker * min(severities) >= 0.05
    assert brighter * min(severities) > 0.02


def test_the_t2star_epi_is_the_gre_with_flatter_contrast_on_the_same_grid(
        cortical_folder: Path) -> None:
    gre, epi = (sitk.ReadImage(str(cortical_folder / f"{name}.nii.gz"))
                for name in ("t2star", "t2star_epi"))
    assert same_grid(gre, epi)
    tissue = read(cortical_folder, "truth/tissue.nii.gz")

    def contrast(image: sitk.Image) -> float:
        """Grey over white matter, less one."""
        voxels = sitk.GetArrayFromImage(image).astype(float)
        return (voxels[tissue == Tissue.CORTICAL_GM].mean()
                / voxels[tissue == Tissue.WHITE_MATTER].mean() - 1)

    assert 0 < contrast(epi) < contrast(gre)
    record = json.loads((cortical_folder / "case.json").read_text(encoding="utf-8"))
    assert 0 < record["scanner"]["t2star_epi"]["echo_time_ratio"] < 1


def test_epi_distortion_moves_along_the_phase_encoding_axis_only_and_keeps_the_signal() -> None:
    image = np.zeros((30, 40, 30), np.float32)
    image[10:20, 15:25, 10:20] = 1.0
    moved = distort(image, (1.0, 1.0, 1.0), 2.0, np.random.default_rng(0))
    assert not np.allclose(moved, image)
    # Each line along the phase-encoding axis keeps its signal: none moves to another line.
    np.testing.assert_allclose(moved.sum(axis=PHASE_ENCODING_AXIS),
                               image.sum(axis=PHASE_ENCODING_AXIS), atol=0.5)
