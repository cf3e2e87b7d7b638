"""The per-patient report, from synthetic result folders written by `results.write_result`.

The folders follow the pipelines' contract (files, table columns, summary inputs), with lesions
placed where the tests know them, on an oblique grid, so the page's numbers, tables and
pictures can be checked against what was written; one test opens the page in real Chromium.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from conftest import REPO, rotation_direction
from MSLesionAILib import mrml
from MSLesionAILib.cli import main
from MSLesionAILib.errors import MSLesionAIError
from MSLesionAILib.geometry import index_zyx_to_ras, voxel_volume_ul
from MSLesionAILib.labels import CORTICAL_SEGMENTS, RIM_SEGMENTS, WM_LESION_SEGMENT
from MSLesionAILib.report import browser
from MSLesionAILib.report.build import write_report
from MSLesionAILib.report.scene import write_scene_report
from MSLesionAILib.results import LesionResult, Segment, read_table_csv, write_result

SHAPE_ZYX = (24, 64, 64)
WM_LESIONS = [  # centre (z, y, x), radius in voxels, location
    ((12, 20, 20), 4, "periventricular"), ((12, 44, 20), 3, "periventricular"),
    ((8, 20, 44), 3, "juxtacortical"), ((16, 44, 44), 2, "infratentorial"),
    ((6, 32, 32), 2, "deep")]
YELLOW, ORANGE, GREEN, RED = (WM_LESION_SEGMENT[1], CORTICAL_SEGMENTS["leukocortical"][1],
                              CORTICAL_SEGMENTS["intracortical_subpial"][1], RIM_SEGMENTS[1][1])


GRID_DIRECTION = rotation_direction(20.0)  # oblique; a test also uses a flipped one


def _grid() -> sitk.Image:
    grid = sitk.Image(SHAPE_ZYX[::-1], sitk.sitkFloat32)
    grid.SetSpacing((0.9, 0.9, 1.5))
    grid.SetDirection(GRID_DIRECTION)
    grid.SetOrigin((-30.0, 20.0, -15.0))
    return grid


def _spheres(lesions: list[tuple[tuple[int, int, int], int]]) -> np.ndarray:
    """Instance labels: lesion k (1-based, in list order) is a ball (in voxels) at its centre."""
    z, y, x = np.indices(SHAPE_ZYX)
    ids = np.zeros(SHAPE_ZYX, np.uint16)
    for k, (centre, radius) in enumerate(lesions, start=1):
        ids[(z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius ** 2] = k
    return ids


def _rows(ids: np.ndarray, grid: sitk.Image) -> list[dict]:
    rows = []
    for k in range(1, int(ids.max()) + 1):
        voxels = np.argwhere(ids == k)
        r, a, s = index_zyx_to_ras(grid, voxels.mean(axis=0))[0]
        rows.append({"lesion_id": k, "volume_ul": round(len(voxels) * voxel_volume_ul(grid), 3),
                     "voxels": len(voxels), "centroid_r": r, "centroid_a": a, "centroid_s": s})
    return rows


def _image(ids: np.ndarray, grid: sitk.Image, lesion_value: float, seed: int) -> sitk.Image:
    """A 'brain' of grey level 100 with noise, lesions at ``lesion_value``."""
    noise = np.random.default_rng(seed).normal(0, 5, SHAPE_ZYX)
    voxels = np.where(ids > 0, lesion_value, 100.0) + noise
    image = sitk.GetImageFromArray(voxels.astype(np.float32))
    image.CopyInformation(grid)
    return image


def _write(folder: Path, name: str, ids: np.ndarray, classes: np.ndarray, segments, columns,
           rows, inputs: dict[str, Path], summary: dict | None = None) -> Path:
    result = LesionResult(name, _grid(), ids, classes.astype(np.uint8), segments, columns, rows,
                          {"inputs": {k: str(v) for k, v in inputs.items()}, **(summary or {})})
    folder.mkdir(parents=True)
    write_result(result, folder)
    return folder


def write_wm(root: Path, image_path: Path | None = None) -> Path:
    ids = _spheres([(centre, radius) for centre, radius, _ in WM_LESIONS])
    flair = root / "flair.nii.gz"
    sitk.WriteImage(_image(ids, _grid(), 220.0, 1), str(flair))
    rows = [{**row, "class": "wm", "location": location, "probability": 0.9,
             "uncertainty": 0.05} for row, (_, _, location) in zip(_rows(ids, _grid()),
                                                                  WM_LESIONS, strict=True)]
    columns = ["lesion_id", "class", "volume_ul", "voxels", "centroid_r", "centroid_a",
               "centroid_s", "location", "probability", "uncertainty"]
    return _write(root / "wm", "wm", ids, ids > 0, [Segment(1, *WM_LESION_SEGMENT)], columns,
                  rows, {"flair": image_path or flair},
                  {"model": {"id": "wm-deepscan", "version": "1.0"},
                   "warnings": ["FLAIR resampled from 3.0 mm slices"]})


def write_cortical(root: Path, neighbour_offset_yx: tuple[int, int] = (-6, -8)) -> Path:
    """Two leukocortical lesions, one intracortical/subpial lesion next to the first (offset in
    voxels on the same slice), one lesion touching a WM lesion (flagged, not counted)."""
    first = (12, 32, 32)
    neighbour = (12, first[1] + neighbour_offset_yx[0], first[2] + neighbour_offset_yx[1])
    ids = _spheres([(first, 4), (neighbour, 2), ((6, 14, 48), 2), ((18, 50, 14), 2)])
    mp2rage = root / "mp2rage.nii.gz"
    sitk.WriteImage(_image(ids, _grid(), 40.0, 2), str(mp2rage))
    classes = ["leukocortical", "intracortical_subpial", "leukocortical", "leukocortical"]
    rows = [{**row, "class": name, "probability": 0.8, "overlaps_wm_lesion": int(k == 4)}
            for k, (row, name) in enumerate(zip(_rows(ids, _grid()), classes, strict=True), 1)]
    labels = np.array([0, 1, 2, 1, 3])[ids]
    segments = [Segment(1, *CORTICAL_SEGMENTS["leukocortical"]),
                Segment(2, *CORTICAL_SEGMENTS["intracortical_subpial"]),
                Segment(3, *WM_LESION_SEGMENT)]
    columns = ["lesion_id", "class", "volume_ul", "voxels", "centroid_r", "centroid_a",
               "centroid_s", "probability", "overlaps_wm_lesion"]
    return _write(root / "cortical", "cortical", ids, labels, segments, columns, rows,
                  {"mp2rage": mp2rage})


def write_rim(root: Path, rim_positive: int) -> Path:
    """Five candidates, the first ``rim_positive`` of them with a rim on phase."""
    centres = [(12, 16, 16), (12, 16, 48), (12, 48, 16), (12, 48, 48), (6, 32, 32)]
    ids = _spheres([(centre, 4) for centre in centres])
    shells = _spheres([(centre, 6) for centre in centres[:rim_positive]])
    noise = np.random.default_rng(3).normal(0, 0.05, SHAPE_ZYX)
    phase = sitk.GetImageFromArray((np.where((shells > 0) & (ids == 0), -1.0, 0.0) + noise)
                                   .astype(np.float32))
    phase.CopyInformation(_grid())
    sitk.WriteImage(phase, str(root / "phase.nii.gz"))
    rows = [{**row, "rim_probability": 0.9 if k <= rim_positive else 0.1,
             "rim_positive": int(k <= rim_positive), "split_from": ""}
            for k, row in enumerate(_rows(ids, _grid()), start=1)]
    labels = np.where(ids > 0, np.where(ids <= rim_positive, 1, 2), 0)
    columns = ["lesion_id", "volume_ul", "voxels", "centroid_r", "centroid_a", "centroid_s",
               "rim_probability", "rim_positive", "split_from"]
    segments = [Segment(1, *RIM_SEGMENTS[1]), Segment(2, *RIM_SEGMENTS[0])]
    return _write(root / "rim", "rim", ids, labels, segments, columns, rows,
                  {"phase": root / "phase.nii.gz"},
                  {"prl_count": rim_positive, "candidates": 5,
                   "excluded": {"too_small": 2, "min_volume_ul": 12.3}})


class _Page(HTMLParser):
    """Tables (as lists of rows of cell text) and image sources of an HTML page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _counts(table: list[list[str]]) -> dict[str, tuple[int, float]]:
    return {row[0]: (int(row[1]), float(row[2])) for row in table[1:]}


def _png(source: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert source.startswith(prefix)
    data = base64.b64decode(source[len(prefix):], validate=True)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def _near(pixels: np.ndarray, color, tolerance: float = 40.0) -> np.ndarray:
    """Mask of pixels within ``tolerance`` (0..255 scale) of an RGB colour given in 0..1."""
    return np.linalg.norm(pixels.astype(float) - 255 * np.asarray(color), axis=-1) < tolerance


@pytest.fixture
def patient(tmp_path) -> list[Path]:
    return [write_wm(tmp_path), write_cortical(tmp_path), write_rim(tmp_path, rim_positive=4)]


def test_counts_volumes_and_tables_match_the_result_folders(patient, tmp_path):
    out = tmp_path / "report.html"
    write_report(patient[::-1], out, patient="case 07")
    text = out.read_text(encoding="utf-8")
    page = _Page(text)
    wm_counts, wm_table, cortical_counts, cortical_table, rim_counts, rim_table = page.tables
    wm_rows = read_table_csv(patient[0] / "lesions.csv")
    volume = {loc: sum(float(r["volume_ul"]) for r in wm_rows if r["location"] == loc)
              for loc in ("periventricular", "juxtacortical", "infratentorial", "deep")}
    counts = _counts(wm_counts)
    assert {k: v[0] for k, v in counts.items()} == {
        "periventricular": 2, "juxtacortical": 1, "infratentorial": 1, "deep white matter": 1,
        "all": 5}
    assert counts["periventricular"][1] == pytest.approx(volume["periventricular"], abs=0.05)
    assert counts["all"][1] == pytest.approx(sum(volume.values()), abs=0.05)
    assert [row[0] for row in wm_table[1:]] == [r["lesion_id"] for r in wm_rows]
    assert {k: v[0] for k, v in _counts(cortical_counts).items()} == {
        "leukocortical": 2, "intracortical/subpial": 1, "touching a WM lesion (not counted)": 1,
        "all": 3}
    assert len(cortical_table) == 1 + 4
    assert {k: v[0] for k, v in _counts(rim_counts).items()} == {"rim+": 4, "rim−": 1, "all": 5}
    assert [row[-2] for row in rim_table[1:]] == ["rim+"] * 4 + ["rim−"]
    assert "MSLesionAI report — case 07" in text
    assert "FLAIR resampled from 3.0 mm slices" in text and "wm-deepscan 1.0" in text
    assert "Excluded: too small 2, min volume (µL) 12.3" in text


@pytest.mark.parametrize(("rim_positive", "flag"), [(3, "&lt; 4 PRL"),
                                                    (4, "≥ 4 PRL: chronic active")])
def test_prl_count_and_the_four_prl_flag(tmp_path, rim_positive, flag):
    out = tmp_path / "report.html"
    write_report([write_rim(tmp_path, rim_positive)], out)
    card = re.search(r"<div class='card'>.*?</div></div>", out.read_text(encoding="utf-8")).group(0)
    assert f"<div class='number'>{rim_positive}</div>" in card
    assert flag in card


def test_a_rim_result_at_a_point_shows_no_patient_flag(tmp_path):
    folder = write_rim(tmp_path, rim_positive=4)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    summary["point"] = {"ras": [0.0, 0.0, 0.0], "lesion_id": 1, "note": ""}
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    write_report([folder], tmp_path / "report.html")
    card = re.search(r"<div class='card'>.*?</div></div>",
                     (tmp_path / "report.html").read_text(encoding="utf-8")).group(0)
    assert "not a patient PRL count" in card and "chronic active" not in card


def test_page_is_self_contained_and_its_pictures_are_pngs_of_the_lesions(patient, tmp_path):
    out = tmp_path / "report.html"
    write_report(patient, out)
    text = out.read_text(encoding="utf-8")
    assert not re.search(r"<(link|script)\b|\b(src|href)=['\"](?!data:)", text)
    wm, cortical, rim = (np.asarray(_png(source)) for source in _Page(text).images)
    assert _near(wm, YELLOW).sum() > 50            # five outlined lesions, one panel each
    assert wm.shape[1] > 5 * 100
    assert _near(cortical, ORANGE).sum() > 20 and _near(cortical, GREEN).sum() > 20
    assert _near(rim, RED).sum() > 50              # rim+ outlines ...
    assert not _near(rim, RIM_SEGMENTS[0][1]).any()  # ... and no rim− lesion shown


# Stored as most NIfTI files are (i towards R, j towards A), turned 20° about S.
RAS_STORED = tuple((np.diag([-1.0, -1.0, 1.0]) @ np.reshape(rotation_direction(20.0), (3, 3)))
                   .ravel())


@pytest.mark.parametrize("direction", [GRID_DIRECTION, RAS_STORED], ids=["LPS", "RAS"])
def test_lightbox_is_radiological_with_anterior_up(tmp_path, monkeypatch, direction):
    """A small green lesion next to the large orange one, in the same slice: in the large
    lesion's panel it must appear where radiological convention puts it (patient's right on
    the left, anterior up), whichever way the grid is stored."""
    monkeypatch.setattr(sys.modules[__name__], "GRID_DIRECTION", direction)
    folder = write_cortical(tmp_path, neighbour_offset_yx=(-6, -8))
    rows = read_table_csv(folder / "lesions.csv")
    first, neighbour = (np.array([float(r[f"centroid_{c}"]) for c in "ras"]) for r in rows[:2])
    right_mm, anterior_mm = neighbour[:2] - first[:2]
    assert min(abs(right_mm), abs(anterior_mm)) > 3  # the picture must show both offsets
    out = tmp_path / "report.html"
    write_report([folder], out)
    pixels = np.asarray(_png(_Page(out.read_text(encoding="utf-8")).images[0]))
    panel = pixels[:, : pixels.shape[1] // 6]  # first column: the largest lesion
    orange, green = (np.argwhere(_near(panel, color)).mean(axis=0) for color in (ORANGE, GREEN))
    rows_down, columns_right = green - orange
    assert np.sign(columns_right) == -np.sign(right_mm) and abs(columns_right) > 5
    assert np.sign(rows_down) == -np.sign(anterior_mm) and abs(rows_down) > 5


@pytest.mark.parametrize("recorded", ["moved", "flag"])
def test_missing_input_image_is_named_and_can_be_given(tmp_path, recorded):
    """The image named in summary.json has moved, or the summary records only that the input
    was given (``"flair": true``) instead of its path."""
    folder = write_wm(tmp_path, image_path=tmp_path / "moved" / "flair.nii.gz")
    if recorded == "flag":
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        summary["inputs"] = {"flair": True, "t1": False}
        (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    first, second = tmp_path / "first.html", tmp_path / "second.html"
    write_report([folder], first)
    page = first.read_text(encoding="utf-8")
    assert "give it with --image flair=PATH" in page
    assert ("moved/flair.nii.gz not found" in page) == (recorded == "moved")
    assert not _Page(page).images
    write_report([folder], second, images={"flair": tmp_path / "flair.nii.gz"})
    assert len(_Page(second.read_text(encoding="utf-8")).images) == 1


def test_command_line_writes_once_and_refuses_to_overwrite(patient, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", *map(str, patient), "--out", str(out), "--patient", "p1"]) == 0
    assert out.exists() and "p1" in out.read_text(encoding="utf-8")
    assert main(["report", str(patient[0]), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["report", str(patient[0]), "--out", str(tmp_path / "x.html"),
                 "--image", "flair"]) == 2
    assert "expected CONTRAST=PATH" in capsys.readouterr().err
    assert main(["report", str(patient[0]), str(patient[0]),
                 "--out", str(tmp_path / "y.html")]) == 2
    assert "more than one wm result" in capsys.readouterr().err
    assert main(["report", str(patient[0]), "--out", str(tmp_path / "z.html"),
                 "--max-lesions", "0"]) == 2
    assert "--max-lesions: 0" in capsys.readouterr().err


def test_report_from_scene_nodes_shows_the_users_edits(scene, tmp_path):
    """The module's Report button: result nodes (here loaded from a folder), after the user
    turned a rim− lesion into rim+ in the table, give a page with 5 PRL."""
    folder = write_rim(tmp_path, rim_positive=4)
    phase = mrml.volume_from_image(scene, sitk.ReadImage(str(tmp_path / "phase.nii.gz")), "phase")
    nodes = mrml.load_result_folder(scene, folder, phase, "phase rim lesions")
    columns, rows = mrml.rows_from_table(nodes.table)
    rows[4]["rim_positive"] = 1
    mrml.fill_table(nodes.table, columns, rows)
    out = tmp_path / "scene.html"
    write_scene_report([("rim", nodes, {"phase": phase})], out, patient="scene")
    text = out.read_text(encoding="utf-8")
    assert "<div class='number'>5</div>" in text and "chronic active" in text
    assert "Slicer scene: phase rim lesions table" in text
    assert _near(np.asarray(_png(_Page(text).images[0])), RED).sum() > 50


def test_without_chromium_the_page_is_written_and_the_missing_pdf_explained(
        tmp_path, monkeypatch):
    monkeypatch.setattr(browser, "find_chromium", lambda: None)
    folder = write_rim(tmp_path, rim_positive=1)
    with pytest.raises(MSLesionAIError, match="r.html written, but not the PDF: no Chromium"):
        write_report([folder], tmp_path / "r.html", pdf=True)
    assert (tmp_path / "r.html").exists() and not (tmp_path / "r.pdf").exists()


@pytest.fixture(scope="module")
def chromium() -> str:
    script = REPO / "Testing" / "ensure_chromium.sh"
    completed = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=900)
    if completed.returncode != 0:
        pytest.skip("Chromium is not installed and could not be installed: "
                    + (completed.stderr.strip().splitlines() or ["no reason given"])[-1])
    return completed.stdout.strip().splitlines()[-1]


def test_pictures_render_in_headless_chromium_and_the_pdf_is_written(chromium, patient, tmp_path):
    out = tmp_path / "report.html"
    html_path, pdf_path = write_report(patient, out, pdf=True)
    assert pdf_path.read_bytes().startswith(b"%PDF") and pdf_path.stat().st_size > 20_000
    shot = np.asarray(Image.open(browser.screenshot(html_path, tmp_path / "shot.png",
                                                    window_size=(1200, 1500))).convert("RGB"))
    assert shot.shape[:2] == (1500, 1200)
    # The lightboxes are black panels with coloured outlines on a white page: a broken or
    # missing picture leaves no black block and no outline colour in the screenshot.
    dark = shot.max(axis=-1) < 40
    rows_mostly_dark = (dark.mean(axis=1) > 0.5).sum()
    assert rows_mostly_dark > 100, f"only {rows_mostly_dark} rows of the screenshot are a picture"
    assert _near(shot, YELLOW).sum() > 30


def _name_input(result_folder: Path, name: str, image: Path) -> None:
    """Record ``image`` as an input of a result folder, as the pipelines do."""
    path = result_folder / "summary.json"
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary["inputs"][name] = str(image)
    path.write_text(json.dumps(summary), encoding="utf-8")


def test_results_made_from_different_images_of_one_contrast_are_warned_about(tmp_path):
    """A wm and a rim folder that name different FLAIRs are of different patients or sessions;
    the same FLAIR written again elsewhere (as a Slicer scene export does) is not."""
    wm = write_wm(tmp_path)
    rim = write_rim(tmp_path, rim_positive=1)
    other = tmp_path / "other"
    other.mkdir()
    sitk.WriteImage(_image(_spheres([((6, 20, 20), 3)]), _grid(), 220.0, 5),
                    str(other / "flair.nii.gz"))
    sitk.WriteImage(sitk.ReadImage(str(tmp_path / "flair.nii.gz")), str(other / "copy.nii.gz"))
    pages = {}
    for brain_mask, result in ((tmp_path / "flair.nii.gz", wm), (other / "flair.nii.gz", rim)):
        _name_input(result, "brain_mask", brain_mask)   # each pipeline's mask on its own grid
    for name in ("copy.nii.gz", "flair.nii.gz"):
        _name_input(rim, "flair", other / name)
        write_report([wm, rim], tmp_path / f"{name}.html")
        pages[name] = (tmp_path / f"{name}.html").read_text(encoding="utf-8")
    assert "different" not in pages["copy.nii.gz"]
    warning = (f"the wm and rim results were made from different flair images "
               f"({tmp_path / 'flair.nii.gz'}, {other / 'flair.nii.gz'})")
    assert warning in html.unescape(pages["flair.nii.gz"])
