"""Fine-tuning on cases corrected in the scene (the cortical panel's section), on a real
`slicer-core` scene: the exported case folders are what the fine-tuning command's loader reads,
voxel for voxel; unusable choices are refused in one error; a real, tiny fine-tuning run goes
through the command-line runner and gives a new model found by its id."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from MSLesionAILib import finetune_scene, mrml
from MSLesionAILib.bundles import find_bundle
from MSLesionAILib.errors import InputError
from MSLesionAILib.imageio import array_to_image
from MSLesionAILib.labels import (
    CORTICAL_CLASSES,
    CORTICAL_SEGMENTS,
    INTRACORTICAL_SUBPIAL,
    LEUKOCORTICAL,
    WM_LESION_SEGMENT,
)
from MSLesionAILib.process import run_cli
from MSLesionAILib.results import Segment, read_table_csv

pytest.importorskip("slicer")
cortical_data = pytest.importorskip("MSLesionAILib.training.cortical_data")
CLASS_VALUES = pytest.importorskip("MSLesionAILib.pipelines.cortical").CLASS_VALUES

SHAPE_ZYX = (20, 24, 28)
SPACING_MM = (0.5, 0.5, 0.5)  # the shipped model's: the loader's grid is the MP2RAGE's
LESIONS = [(np.s_[4:9, 5:10, 6:11], LEUKOCORTICAL),
           (np.s_[12:15, 12:16, 3:6], INTRACORTICAL_SUBPIAL),
           (np.s_[15:18, 18:21, 20:24], INTRACORTICAL_SUBPIAL)]


def class_labels() -> np.ndarray:
    labels = np.zeros(SHAPE_ZYX, np.uint8)
    for box, name in LESIONS:
        labels[box] = CLASS_VALUES[name]
    return labels


def volume(scene, name: str, seed: int, folder: int):
    voxels = np.random.default_rng(seed).uniform(50, 100, SHAPE_ZYX)
    voxels[class_labels() > 0] = 160
    image = sitk.GetImageFromArray(voxels.astype(np.float32))
    image.SetSpacing(SPACING_MM)
    image.SetOrigin((-6.0, 10.0, 4.0))
    node = mrml.volume_from_image(scene, image, name)
    scene.GetSubjectHierarchyNode().CreateItem(folder, node)
    return node


def corrected_case(scene, t2star: bool = True):
    """A patient folder with an MP2RAGE (and a T2* GRE and EPI) and a cortical segmentation
    drawn on the MP2RAGE, made as a cortical result's is."""
    hierarchy = scene.GetSubjectHierarchyNode()
    patient = hierarchy.CreateFolderItem(hierarchy.GetSceneItemID(), "patient")
    mp2rage = volume(scene, "MP2RAGE UNI", 1, patient)
    if t2star:
        volume(scene, "T2star GRE", 2, patient)
        volume(scene, "T2star EPI", 3, patient)
    return segmentation_on(scene, mp2rage, "MP2RAGE cortical lesions")


def segmentation_on(scene, mp2rage, node_name: str):
    """A cortical segmentation of the test lesions drawn on ``mp2rage``."""
    segments = [Segment(CLASS_VALUES[name], *CORTICAL_SEGMENTS[name]) for name in CORTICAL_CLASSES]
    labels = array_to_image(class_labels(), mrml.image_from_volume(mp2rage))
    return mrml.segmentation_from_labelmap(scene, labels, segments, node_name, mp2rage)


def test_an_exported_case_loads_with_voxel_exact_labels(scene, tmp_path):
    segmentation = corrected_case(scene)
    [case] = finetune_scene.annotated_cases([segmentation])
    assert case.mp2rage.GetName() == "MP2RAGE UNI"
    assert {name: node.GetName() for name, node in case.optional_contrasts.items()} == {
        "t2star_gre": "T2star GRE", "t2star_epi": "T2star EPI"}

    folder = finetune_scene.export_case(case, tmp_path / "case_01")

    assert cortical_data.case_folders([tmp_path]) == [folder]
    for name, node in case.optional_contrasts.items():   # each contrast in its own file
        np.testing.assert_array_equal(
            sitk.GetArrayFromImage(sitk.ReadImage(str(folder / f"{name}.nii.gz"))),
            sitk.GetArrayFromImage(mrml.image_from_volume(node)))
    loaded = cortical_data.load_case(folder, ["mp2rage"], SPACING_MM)
    np.testing.assert_array_equal(loaded.labels, class_labels())
    rows = read_table_csv(folder / "truth" / "lesions.csv")
    assert [(row["lesion_id"], row["type"]) for row in rows] == [
        ("1", "leukocortical"), ("2", "intracortical"), ("3", "intracortical")]


def test_a_flagged_white_matter_lesion_segment_is_exported_to_train_with_weight_0(scene,
                                                                                   tmp_path):
    segmentation = corrected_case(scene, t2star=False)
    grid = mrml.image_from_volume(mrml.segmentation_reference_volume(segmentation))
    flagged = np.zeros(SHAPE_ZYX, bool)
    flagged[2:5, 15:19, 15:20] = True  # a result's lesion touching a white-matter lesion
    segmentation.GetSegmentation().AddEmptySegment("wm", WM_LESION_SEGMENT[0])
    mrml.set_segment_masks(segmentation, {"wm": flagged}, grid)
    [case] = finetune_scene.annotated_cases([segmentation])

    folder = finetune_scene.export_case(case, tmp_path / "case_01")

    loaded = cortical_data.load_case(folder, ["mp2rage"], SPACING_MM)
    np.testing.assert_array_equal(loaded.weights == 0, flagged)
    np.testing.assert_array_equal(loaded.labels, class_labels())


def test_no_cases_or_segmentations_without_cortical_segments_are_refused_in_one_error(scene):
    with pytest.raises(InputError, match="no annotated cases"):
        finetune_scene.annotated_cases([])
    good = corrected_case(scene, t2star=False)
    wm = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "FLAIR WM lesions")
    wm.GetSegmentation().AddEmptySegment("wm", WM_LESION_SEGMENT[0])
    empty = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "empty")
    with pytest.raises(InputError) as error:
        finetune_scene.annotated_cases([good, wm, empty])
    message = str(error.value)
    assert "FLAIR WM lesions lacks the cortical lesion segments 'leukocortical lesion'" in message
    assert "; empty lacks" in message and "MP2RAGE cortical lesions" not in message
    assert finetune_scene.annotated_cases([good])[0].optional_contrasts == {}


def test_a_validation_case_of_a_training_mp2rage_is_refused(scene, tmp_path, monkeypatch):
    """The same segmentation in both lists, or a copy of it: both are drawn on the MP2RAGE of
    a case to train on."""
    monkeypatch.setenv("MSLESIONAI_MODEL_DIRS", str(tmp_path))
    trained, other = corrected_case(scene, t2star=False), corrected_case(scene, t2star=False)
    other.SetName("other corrected case")
    copy = segmentation_on(scene, mrml.segmentation_reference_volume(trained), "edited copy")
    started = []
    for validation, named in (([other, trained], "MP2RAGE cortical lesions"),
                              ([copy], "edited copy")):
        with pytest.raises(InputError, match=f"fine-tuning: {named} drawn on the MP2RAGE of a "
                                             "case to train on"):
            finetune_scene.start([trained], validation_nodes=validation,
                                 runner=started.append)
    assert finetune_scene.annotated_cases([other])   # a case of its own is a validation case
    assert not started and not list(tmp_path.iterdir())


def test_new_bundle_folders_never_reuse_a_folder_or_an_installed_id(tmp_path, monkeypatch):
    monkeypatch.setenv("MSLESIONAI_MODEL_DIRS", str(tmp_path))
    (tmp_path / "site").mkdir()
    assert finetune_scene.new_bundle_folder(tmp_path, "site") == tmp_path / "site-2"
    assert finetune_scene.new_bundle_folder(tmp_path, "cortical-claims").name == (
        "cortical-claims-2")
    with pytest.raises(InputError, match="model name 'my model'"):
        finetune_scene.new_bundle_folder(tmp_path, "my model")


def test_the_default_user_model_folder_is_put_on_the_search_path(tmp_path, monkeypatch):
    monkeypatch.delenv("MSLESIONAI_MODEL_DIRS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    folder = finetune_scene.use_user_model_dir()
    assert folder == tmp_path / "mslesionai" / "models"
    assert finetune_scene.use_user_model_dir() == folder  # now read from the variable


def test_a_tiny_real_finetuning_run_gives_a_model_found_by_its_id(scene, tmp_path, monkeypatch):
    monkeypatch.setenv("MSLESIONAI_MODEL_DIRS", str(tmp_path / "models"))
    segmentation = corrected_case(scene, t2star=False)

    job = finetune_scene.start([segmentation], None, "site", run_cli,
                               {"steps": 2, "batch-size": 1, "patch-size": 16})
    bundle = job.finish()

    assert bundle.path == tmp_path / "models" / "site" and bundle.id == "site"
    assert bundle.metadata["parent"]["id"] == "cortical-claims"
    assert bundle.metadata["fine_tuning"]["data"]["cases"] == 1
    assert find_bundle("site", "cortical").path == bundle.path
    assert job.run.progress() and not job.folder.exists()
    threshold = bundle.metadata["postprocessing"]["threshold"]
    assert threshold == find_bundle("cortical-claims", "cortical").metadata["postprocessing"][
        "threshold"]
    assert (f"keeps its parent's lesion threshold ({threshold}), not chosen on these cases"
            in finetune_scene.finished_message(bundle))


def test_validation_cases_choose_the_new_models_threshold(scene, tmp_path, monkeypatch):
    monkeypatch.setenv("MSLESIONAI_MODEL_DIRS", str(tmp_path / "models"))
    trained, validation = corrected_case(scene, t2star=False), corrected_case(scene, t2star=False)

    job = finetune_scene.start([trained], None, "site", run_cli,
                               {"steps": 2, "batch-size": 1, "patch-size": 16}, [validation])
    bundle = job.finish()

    post = bundle.metadata["postprocessing"]
    selection = post["threshold_selection"]
    assert selection["validation_cases"] == ["case_01"] and "threshold_source" not in post
    assert post["threshold"] == selection["threshold"]
    f1 = selection["f1_by_threshold"][str(post["threshold"])]
    assert f1 == max(selection["f1_by_threshold"].values())
    assert (f"Its lesion threshold, {post['threshold']}, was chosen on the 1 validation case "
            f"(lesion F1 {f1})") in finetune_scene.finished_message(bundle)
