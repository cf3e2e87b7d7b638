"""Teaching sample data: phantom cases generated once into a cache with their truth as a
reference segmentation, the shipped real case, and the registration with Slicer's Sample Data
module (against a stand-in for it: the real one needs the Slicer application)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio

from conftest import REAL_CASE
from MSLesionAILib import mrml, sample_data, workflow
from MSLesionAILib.labels import CORTICAL_SEGMENTS, RIM_SEGMENTS, WM_LESION_SEGMENT
from MSLesionAILib.results import ijk_to_lps_matrix, write_seg_nrrd
from MSLesionAILib.sample_data import (
    SEGMENTATION_FILE,
    VOLUME_FILE,
    PhantomSample,
    phantom_reference,
    sample_files,
)

SMALL_WM = PhantomSample("test WM phantom", "wm", seed=90001, crop_mm=60.0)


def _reference_voxels(path: Path) -> tuple[np.ndarray, dict]:
    """A .seg.nrrd's labels (numpy z, y, x) and its slicerio description, read independently."""
    segmentation = slicerio.read_segmentation(str(path))
    return np.transpose(segmentation["voxels"], (2, 1, 0)), segmentation


@pytest.fixture(scope="module")
def small_wm_cache(tmp_path_factory) -> Path:
    """A cache holding the small WM phantom sample (generated once for these tests)."""
    cache = tmp_path_factory.mktemp("cache")
    sample_files(SMALL_WM, cache)
    return cache


def test_phantom_sample_is_generated_once_with_its_truth_as_reference(small_wm_cache,
                                                                      monkeypatch):
    files = SMALL_WM.files(small_wm_cache)
    assert [(f.path.name, f.node_name, f.file_type) for f in files] == [
        ("flair.nii.gz", "phantom_wm_flair", VOLUME_FILE),
        ("t1.nii.gz", "phantom_wm_t1", VOLUME_FILE),
        ("t2.nii.gz", "phantom_wm_t2", VOLUME_FILE),
        ("reference.seg.nrrd", "phantom_wm_reference", SEGMENTATION_FILE)]
    assert all(f.path.is_file() and f.path.is_relative_to(small_wm_cache) for f in files)
    truth = sitk.ReadImage(str(files[0].path.parent / "truth" / "wm_lesions.nii.gz"))
    labels, segmentation = _reference_voxels(files[-1].path)
    assert sitk.GetArrayFromImage(truth).max() > 0, "the test case should have lesions"
    np.testing.assert_array_equal(labels, (sitk.GetArrayFromImage(truth) > 0).astype(np.uint8))
    np.testing.assert_allclose(segmentation["ijkToLPS"],
                               ijk_to_lps_matrix(sitk.ReadImage(str(files[0].path))), atol=1e-4)
    assert [s["name"] for s in segmentation["segments"]] == [WM_LESION_SEGMENT[0]]

    def no_second_generation(*_args, **_kwargs):
        raise AssertionError("the cached case was generated again")

    monkeypatch.setattr("MSLesionAILib.phantom.generate_case", no_second_generation)
    assert sample_files(SMALL_WM, small_wm_cache) == files


def test_phantom_reference_uses_the_modules_classes():
    ids = np.zeros((4, 4, 6), np.uint16)
    ids[1, 1, 0:2], ids[1, 1, 2:4], ids[2, 2, 4:6] = 1, 2, 3
    grid = sitk.GetImageFromArray(ids)
    cortical = SimpleNamespace(kind="cortical", truth={"cortical_lesions": grid}, lesions=[
        {"lesion_id": 1, "family": "cortical", "type": "leukocortical", "rim": 0},
        {"lesion_id": 2, "family": "cortical", "type": "subpial", "rim": 0},
        {"lesion_id": 3, "family": "cortical", "type": "intracortical", "rim": 0},
        {"lesion_id": 1, "family": "wm", "type": "deep", "rim": 1}])
    labels, _, segments = phantom_reference(cortical)
    assert [labels[1, 1, 0], labels[1, 1, 2], labels[2, 2, 4]] == [1, 2, 2]
    assert [(s.value, s.name) for s in segments] == [
        (1, CORTICAL_SEGMENTS["leukocortical"][0]),
        (2, CORTICAL_SEGMENTS["intracortical_subpial"][0])]
    rim = SimpleNamespace(kind="rim", truth={"wm_lesions": grid}, lesions=[
        {"lesion_id": k, "family": "wm", "type": "deep", "rim": int(k == 2)} for k in (1, 2, 3)])
    labels, _, segments = phantom_reference(rim)
    assert [labels[1, 1, 0], labels[1, 1, 2], labels[2, 2, 4], labels[0, 0, 0]] == [2, 1, 2, 0]
    assert {s.value: s.name for s in segments} == {1: RIM_SEGMENTS[1][0], 2: RIM_SEGMENTS[0][0]}


def test_rim_reference_segmentation_is_written_with_both_segments(tmp_path):
    ids = np.zeros((4, 4, 4), np.uint16)
    ids[1, 1, 1], ids[2, 2, 2] = 1, 2
    rim = SimpleNamespace(kind="rim", truth={"wm_lesions": sitk.GetImageFromArray(ids)},
                          lesions=[{"lesion_id": 1, "family": "wm", "rim": 1},
                                   {"lesion_id": 2, "family": "wm", "rim": 0}])
    labels, ids_image, segments = phantom_reference(rim)
    write_seg_nrrd(tmp_path / "reference.seg.nrrd", labels, ids_image, segments)
    voxels, segmentation = _reference_voxels(tmp_path / "reference.seg.nrrd")
    assert [(s["labelValue"], s["name"]) for s in segmentation["segments"]] == [
        (1, RIM_SEGMENTS[1][0]), (2, RIM_SEGMENTS[0][0])]
    assert (voxels[1, 1, 1], voxels[2, 2, 2]) == (1, 2)


def test_shipped_case_reference_is_its_consensus_mask(tmp_path):
    files = sample_files("MSLesionAI patient07 (Lesjak 2017)", tmp_path)
    assert [f.path for f in files[:3]] == [REAL_CASE / f"{c}.nii.gz" for c in ("flair", "t1", "t2")]
    mask = sitk.ReadImage(str(REAL_CASE / "wm_lesions_gt.nii.gz"))
    labels, segmentation = _reference_voxels(files[3].path)
    assert files[3].path.is_relative_to(tmp_path)
    np.testing.assert_array_equal(labels, sitk.GetArrayFromImage(mask) > 0)
    np.testing.assert_allclose(segmentation["ijkToLPS"], ijk_to_lps_matrix(mask), atol=1e-4)


def test_sample_volumes_are_auto_selected_by_the_modules(small_wm_cache):
    """Node names follow the modules' name patterns, so loading a sample fills the panel."""
    scene = pytest.importorskip("slicer").vtkMRMLScene()
    files = SMALL_WM.files(small_wm_cache)
    nodes = [mrml.volume_from_image(scene, sitk.ReadImage(str(f.path)), f.node_name)
             for f in files if f.file_type == VOLUME_FILE]
    chosen = workflow.match_inputs(workflow.WM, nodes[::-1])
    assert {option: node.GetName() for option, node in chosen.items()} == {
        "flair": "phantom_wm_flair", "t1": "phantom_wm_t1", "t2": "phantom_wm_t2"}
    names = {kind: [f"phantom_{kind}_{contrast}" for contrast in contrasts]
             for kind, contrasts in (("rim", ("flair", "t1", "mp2rage", "t2star", "phase")),
                                     ("cortical", ("mp2rage", "t2star")))}
    for kind, option_contrasts in (("rim", {"phase": "phase", "flair": "flair", "t1": "t1",
                                            "mp2rage": "mp2rage", "t2star": "t2star"}),
                                   ("cortical", {"mp2rage": "mp2rage", "t2star-gre": "t2star"})):
        fake = [SimpleNamespace(GetName=lambda n=n: n, GetHideFromEditors=lambda: False,
                                GetAttribute=lambda name: None, IsA=lambda name: False)
                for n in names[kind]]
        chosen = workflow.match_inputs(workflow.TASKS[kind], fake)
        assert {o: n.GetName() for o, n in chosen.items()} == {
            option: f"phantom_{kind}_{contrast}" for option, contrast in option_contrasts.items()}


def test_registration_with_slicer_sample_data(tmp_path, monkeypatch):
    registered, loaded = [], []
    module = types.ModuleType("SampleData")
    module.SampleDataLogic = SimpleNamespace(
        registerCustomSampleDataSource=lambda **kwargs: registered.append(kwargs))
    monkeypatch.setitem(sys.modules, "SampleData", module)
    # What an earlier registration left in Slicer's list (this category's only).
    earlier = {"MSLesionAI": ["an earlier registration"], "General": ["MRHead"]}
    monkeypatch.setitem(sys.modules, "slicer", SimpleNamespace(
        modules=SimpleNamespace(sampleDataSources=earlier)))

    sample_data.register_sample_data(tmp_path, loader=lambda *args: loaded.append(args))
    assert earlier == {"General": ["MRHead"]}

    assert [r["sampleName"] for r in registered] == sample_data.sample_names()
    for source in registered:
        sample = sample_data.get_sample(source["sampleName"])
        files = sample.files(tmp_path)
        assert source["category"] == "MSLesionAI"
        assert source["uris"] == [f.path.resolve().as_uri() for f in files]
        assert source["nodeNames"] == [f.node_name for f in files]
        assert source["loadFileType"][-1] == SEGMENTATION_FILE
        assert len(set(source["fileNames"])) == len(files)
        source["customDownloader"](object())
    assert loaded == [(name, tmp_path) for name in sample_data.sample_names()]
    all_file_names = [name for source in registered for name in source["fileNames"]]
    assert len(set(all_file_names)) == len(all_file_names)  # one Slicer cache for all


class _Dialog:
    """Stands in for Slicer's QProgressDialog; ``cancel_at`` percent presses Cancel."""

    def __init__(self, cancel_at: int | None) -> None:
        self.cancel_at, self.values, self.closed = cancel_at, [], False
        self.labelText = ""

    @property
    def wasCanceled(self) -> bool:  # noqa: N802 (Qt's name)
        return self.cancel_at is not None and max(self.values, default=0) >= self.cancel_at

    @property
    def value(self) -> int:
        return self.values[-1]

    @value.setter
    def value(self, percent: int) -> None:
        self.values.append(percent)

    def close(self) -> None:
        self.closed = True


def _stand_in_slicer(monkeypatch, dialog: _Dialog) -> list[tuple]:
    loaded = []
    util = SimpleNamespace(createProgressDialog=lambda **_kwargs: dialog,
                           loadNodeFromFile=lambda *args: loaded.append(args) or args[2]["name"])
    monkeypatch.setitem(sys.modules, "slicer", SimpleNamespace(
        util=util, app=SimpleNamespace(processEvents=lambda: None)))
    monkeypatch.setattr(sample_data, "SAMPLES", (SMALL_WM,))
    return loaded


def test_load_sample_generates_with_progress_then_loads_each_file(tmp_path, monkeypatch):
    dialog = _Dialog(cancel_at=None)
    loaded = _stand_in_slicer(monkeypatch, dialog)
    nodes = sample_data.load_sample(SMALL_WM.name, tmp_path)
    assert nodes == [f.node_name for f in SMALL_WM.files(tmp_path)]
    assert [(Path(path).name, file_type) for path, file_type, _ in loaded] == [
        ("flair.nii.gz", VOLUME_FILE), ("t1.nii.gz", VOLUME_FILE), ("t2.nii.gz", VOLUME_FILE),
        ("reference.seg.nrrd", SEGMENTATION_FILE)]
    assert dialog.closed and dialog.values[-1] == 100 and len(dialog.values) > 3


def test_cancel_during_generation_loads_nothing_and_leaves_no_files(tmp_path, monkeypatch):
    dialog = _Dialog(cancel_at=1)
    loaded = _stand_in_slicer(monkeypatch, dialog)
    assert sample_data.load_sample(SMALL_WM.name, tmp_path) == []
    assert dialog.closed and not loaded
    assert not SMALL_WM.folder(tmp_path).exists()


def test_samples_drawn_differently_are_cached_apart(tmp_path):
    whole = PhantomSample("whole", "wm", seed=90001)
    assert SMALL_WM.folder(tmp_path) != whole.folder(tmp_path)
    assert PhantomSample("other seed", "wm", seed=90002).folder(tmp_path) != whole.folder(tmp_path)


def test_cache_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MSLESIONAI_CACHE", str(tmp_path / "c"))
    assert sample_data.cache_directory() == tmp_path / "c" / "sample_data"
    monkeypatch.delenv("MSLESIONAI_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert sample_data.cache_directory() == tmp_path / "x" / "mslesionai" / "sample_data"
