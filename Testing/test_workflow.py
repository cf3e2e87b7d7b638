"""Each module's flow end to end on a real `slicer-core` scene, with a fake command line.

`FakeRun` stands in for ``mslesionai TASK``: it reads the exported reference input, finds the
bright blobs of a small phantom and writes them with `results.write_result`, exactly the files
a real pipeline writes. The real pipelines plug in through `process.run_cli`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MSLesionAILib import mrml, tasks, workflow
from MSLesionAILib.errors import Cancelled, MSLesionAIError
from MSLesionAILib.labels import RIM_SEGMENTS, TISSUE_NAMES, Tissue
from MSLesionAILib.lesions import label_components, lesion_measures, wm_lesion_locations
from MSLesionAILib.results import LesionResult, Segment, write_result

slicer = pytest.importorskip("slicer")

TASK_PARAMS = [pytest.param(task, id=task.name) for task in tasks.TASKS.values()]

BLOBS = [np.s_[2:6, 3:9, 3:8], np.s_[6:8, 10:13, 10:14], np.s_[2:4, 12:14, 2:4]]
VENTRICLE_SLAB = np.s_[0:2, :, :]
VENTRICLES = Segment(len(tasks.WM.lesion_segments) + 1, TISSUE_NAMES[Tissue.VENTRICLES], (0, 0, 1))


def phantom() -> sitk.Image:
    """Three bright blobs (ids 1, 2, 3 by size) and a ventricle slab, oblique and anisotropic."""
    voxels = np.random.default_rng(1).uniform(0.0, 0.1, (10, 16, 18)).astype(np.float32)
    voxels[VENTRICLE_SLAB] = 0.4
    for blob in BLOBS:
        voxels[blob] = 1.0
    image = sitk.GetImageFromArray(voxels)
    image.SetSpacing((0.9, 1.2, 2.5))
    image.SetDirection(sitk.Euler3DTransform((0, 0, 0), 0.2, 0.3, -0.4).GetMatrix())
    image.SetOrigin((-20.0, 15.0, 3.0))
    return image


def fake_result(task: tasks.Task, image: sitk.Image) -> LesionResult:
    """What a pipeline would answer: blobs are lesions, classes alternate, tissue for wm."""
    voxels = sitk.GetArrayFromImage(image)
    ids = label_components(voxels > 0.7, task.connectivity)
    class_values = list(task.class_segments)
    segments = [Segment(i, name, (1.0, 0.5, 0.0))
                for i, name in enumerate(task.lesion_segments, start=1)]
    class_index = np.array([0] + [1 + k % len(class_values) for k in range(ids.max())])
    class_labels = class_index[ids].astype(np.uint8)
    rows = lesion_measures(ids, image)
    ventricles = (voxels > 0.3) & (voxels < 0.7)
    locations = wm_lesion_locations(ids, np.where(ventricles, Tissue.VENTRICLES, 0),
                                    image.GetSpacing()[::-1])
    for row in rows:
        row["probability"] = 0.9
        row["location"] = locations[row["lesion_id"]]
        if task.class_column:  # rim_positive is written as 0/1, a cortical class as a word
            value = class_values[class_index[row["lesion_id"]] - 1]
            row[task.class_column] = int(value) if value.isdigit() else value
    if task is tasks.WM:
        segments.append(VENTRICLES)
        class_labels[ventricles] = VENTRICLES.value
    return LesionResult(task.name, image, ids, class_labels, segments, list(rows[0]), rows,
                        {"lesion_count": len(rows)})


def flagged_cortical_result(task: tasks.Task, image: sitk.Image) -> LesionResult:
    """A cortical result as the pipeline writes it when given a white-matter lesion mask:
    lesion 3 touches a white-matter lesion, so it is flagged and in a segment of its own."""
    cortical = pytest.importorskip("MSLesionAILib.pipelines.cortical")
    result = fake_result(task, image)
    labels = result.class_labels.copy()
    labels[result.lesion_ids == 3] = cortical.WM_OVERLAP_VALUE
    for row in result.rows:
        row["overlaps_wm_lesion"] = int(row["lesion_id"] == 3)
    return LesionResult(task.name, image, result.lesion_ids, labels, cortical.segments(True),
                        list(result.rows[0]), result.rows, result.summary)


class FakeRun:
    """A `process.Run` that writes its result folder when waited for."""

    def __init__(self, task: tasks.Task, args: list[str], exit_code: int = 0,
                 make_result=fake_result) -> None:
        self.task, self.args, self.exit_code = task, args, exit_code
        self.make_result = make_result
        self.inputs: dict[str, sitk.Image] = {}
        self.result: LesionResult | None = None

    def option(self, name: str) -> str:
        """The value of ``--name value`` or ``--name=value``."""
        for arg, following in zip(self.args, [*self.args[1:], ""], strict=True):
            if arg == f"--{name}":
                return following
            if arg.startswith(f"--{name}="):
                return arg.split("=", 1)[1]
        raise KeyError(name)

    def poll(self) -> int | None:
        return None

    def progress(self) -> list[tuple[float, str]]:
        return [(0.5, "segmenting")]

    def wait(self) -> int:
        if self.exit_code == 0:
            self.inputs = {name: sitk.ReadImage(self.option(name)) for name in self.given_inputs()}
            self.result = self.make_result(self.task, self.inputs[self.task.reference_input])
            out = Path(self.option("out"))
            out.mkdir()
            write_result(self.result, out)
        return self.exit_code

    def given_inputs(self) -> list[str]:
        return [a[2:] for a, b in zip(self.args, self.args[1:], strict=False)
                if a.startswith("--") and b.endswith(".nrrd")]

    def cancel(self) -> None:
        self.exit_code = workflow.EXIT_CANCELLED

    def error(self) -> str:
        return "mslesionai: error: flair: is constant (every voxel is 0.0); nothing to analyse"


class FakeRunner:
    def __init__(self, task: tasks.Task, exit_code: int = 0, make_result=fake_result) -> None:
        self.task, self.exit_code, self.runs = task, exit_code, []
        self.make_result = make_result

    def __call__(self, args):
        self.runs.append(FakeRun(self.task, list(args), self.exit_code, self.make_result))
        return self.runs[-1]


def add_inputs(scene, task: tasks.Task) -> dict:
    """The reference input in a patient folder, plus the task's second input."""
    reference = mrml.volume_from_image(scene, phantom(), task.reference_input.upper())
    hierarchy = scene.GetSubjectHierarchyNode()
    patient = hierarchy.CreateFolderItem(hierarchy.GetSceneItemID(), "patient")
    hierarchy.CreateItem(patient, reference)
    second = list(task.input_patterns)[1]
    return {task.reference_input: reference,
            second: mrml.volume_from_image(scene, phantom(), second.upper())}


def scene_state(scene) -> list[tuple[str, int]]:
    nodes = scene.GetNodes()
    return [(nodes.GetItemAsObject(i).GetID(), nodes.GetItemAsObject(i).GetMTime())
            for i in range(nodes.GetNumberOfItems())]


@pytest.mark.parametrize("task", TASK_PARAMS)
def test_module_flow_creates_result_nodes_matching_the_files(scene, task):
    inputs = add_inputs(scene, task)
    reference = inputs[task.reference_input]
    before = {node.GetID(): node.GetMTime() for node in inputs.values()}
    voxels_before = slicer.util.arrayFromVolume(reference).copy()
    runner = FakeRunner(task)

    nodes = workflow.run(task, inputs, {"device": "cpu", "model": None, "fast": True}, runner)

    run = runner.runs[0]
    assert run.args[0] == task.name and "--device=cpu" in run.args
    assert not any(a.startswith("--model") for a in run.args) and "--fast" in run.args
    assert sorted(run.given_inputs()) == sorted(inputs)
    title = f"{reference.GetName()} {task.title}"
    assert nodes.segmentation.GetName() == title
    assert nodes.table.GetName() == f"{title} table"
    assert nodes.table.GetAttribute(tasks.TASK_ATTRIBUTE) == task.name
    assert mrml.result_nodes(nodes.table).segmentation is nodes.segmentation

    result = run.result
    segmentation = nodes.segmentation.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == len(result.segments)
    grid = mrml.image_from_volume(reference)
    for segment in result.segments:
        segment_id = segmentation.GetSegmentIdBySegmentName(segment.name)
        mask = mrml.segment_mask(nodes.segmentation, segment_id, grid)
        np.testing.assert_array_equal(mask, result.class_labels == segment.value)
        visible = nodes.segmentation.GetDisplayNode().GetSegmentVisibility(segment_id)
        assert visible == (segment.name in task.lesion_segments)
    assert workflow.table_mismatches(task, nodes) == []
    columns, rows = mrml.rows_from_table(nodes.table)
    assert columns == result.columns
    assert [row["lesion_id"] for row in rows] == [1, 2, 3]
    for row, expected in zip(rows, result.rows, strict=True):
        assert row == pytest.approx(expected)

    hierarchy = scene.GetSubjectHierarchyNode()
    parent_of = lambda node: hierarchy.GetItemParent(hierarchy.GetItemByDataNode(node))  # noqa: E731
    assert parent_of(nodes.segmentation) == parent_of(reference) != hierarchy.GetSceneItemID()
    assert {node.GetID(): node.GetMTime() for node in inputs.values()} == before
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(reference), voxels_before)
    assert not Path(run.option("out")).parent.exists()  # temporary files removed


def test_a_segmentation_input_is_exported_as_a_mask_of_its_lesion_segments(scene):
    inputs = add_inputs(scene, tasks.RIM)
    wm = workflow.run(tasks.WM, {"flair": inputs["phase"]}, runner=FakeRunner(tasks.WM))
    runner = FakeRunner(tasks.RIM)

    workflow.run(tasks.RIM, {"phase": inputs["phase"], "lesion-mask": wm.segmentation},
                 runner=runner)

    mask = sitk.GetArrayFromImage(runner.runs[0].inputs["lesion-mask"])
    np.testing.assert_array_equal(mask, runner.runs[0].result.lesion_ids > 0)


def test_an_input_aligned_by_a_transform_is_exported_aligned(scene):
    inputs = add_inputs(scene, tasks.WM)
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    five_mm_right = np.eye(4)
    five_mm_right[0, 3] = 5.0
    transform.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(five_mm_right))
    inputs["t1"].SetAndObserveTransformNodeID(transform.GetID())
    runner = FakeRunner(tasks.WM)

    workflow.run(tasks.WM, inputs, runner=runner)

    exported = runner.runs[0].inputs
    shift_lps = np.subtract(exported["t1"].GetOrigin(), exported["flair"].GetOrigin())
    np.testing.assert_allclose(shift_lps, [-5.0, 0.0, 0.0], atol=1e-9)


def test_a_second_run_creates_new_nodes(scene):
    inputs = add_inputs(scene, tasks.WM)
    first = workflow.run(tasks.WM, inputs, runner=FakeRunner(tasks.WM))
    first_state = [(node.GetName(), node.GetMTime()) for node in first.nodes()]
    second = workflow.run(tasks.WM, inputs, runner=FakeRunner(tasks.WM))
    assert set(second.nodes()).isdisjoint(first.nodes())
    assert second.segmentation.GetName() == "FLAIR WM lesions_1"
    assert [(node.GetName(), node.GetMTime()) for node in first.nodes()] == first_state
    assert all(scene.IsNodePresent(node) for node in first.nodes())


def test_cancel_leaves_the_scene_as_it_was(scene):
    inputs = add_inputs(scene, tasks.CORTICAL)
    state = scene_state(scene)
    job = workflow.start(tasks.CORTICAL, inputs, runner=FakeRunner(tasks.CORTICAL))
    assert job.run.progress() == [(0.5, "segmenting")]
    job.cancel()
    with pytest.raises(Cancelled):
        job.finish()
    assert scene_state(scene) == state
    assert not job.folder.exists()


def test_a_failed_run_reports_the_command_line_error_and_adds_nothing(scene):
    inputs = add_inputs(scene, tasks.WM)
    state = scene_state(scene)
    with pytest.raises(MSLesionAIError, match="wm: mslesionai: error: flair: is constant"):
        workflow.run(tasks.WM, inputs, runner=FakeRunner(tasks.WM, exit_code=2))
    assert scene_state(scene) == state


def test_inputs_are_auto_selected_by_volume_name(scene):
    names = ["3D FLAIR", "T1 MPRAGE", "T2 TSE", "brain mask", "phase unwrapped", "T2star GRE"]
    volumes = [scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name) for name in names]

    def chosen(task):
        return {option: node.GetName()
                for option, node in workflow.match_inputs(task, volumes).items()}

    assert chosen(tasks.WM) == {"flair": "3D FLAIR", "t1": "T1 MPRAGE", "t2": "T2 TSE",
                                   "brain-mask": "brain mask"}
    assert chosen(tasks.RIM) == {"phase": "phase unwrapped", "flair": "3D FLAIR",
                                    "t2star": "T2star GRE", "t1": "T1 MPRAGE", "t2": "T2 TSE"}


def test_the_mp2rage_uniform_image_and_a_brain_mask_are_chosen_over_look_alikes(scene):
    names = ["lesion mask", "sub-01_inv-1_MP2RAGE", "MP2RAGE_INV2", "sub-01_UNIT1",
             "brain mask", "3D FLAIR"]
    volumes = [scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name) for name in names]
    assert workflow.match_inputs(tasks.CORTICAL, volumes)["mp2rage"].GetName() == "sub-01_UNIT1"
    assert workflow.match_inputs(tasks.WM, volumes)["brain-mask"].GetName() == "brain mask"


def test_a_t1_map_is_not_taken_for_the_t1_weighted_image(scene):
    names = ["MP2RAGE T1map", "3D FLAIR", "sub-01_T1w"]
    volumes = [scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name) for name in names]
    assert workflow.match_inputs(tasks.WM, volumes)["t1"].GetName() == "sub-01_T1w"
    assert "t1" not in workflow.match_inputs(tasks.WM, volumes[:2])


def test_look_alike_names_and_label_maps_are_not_taken_for_images(scene):
    """From a review: names that merely contain "t1"/"t2"/"mag", a T1 map, a second FLAIR and
    a label map had been chosen as image inputs."""
    volumes = [scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name) for name in (
        "patient2_phase", "FLAIR", "T2 FLAIR", "patient2_T2star_mag", "MP2RAGE_T1map",
        "MP2RAGE_UNI_Images", "T2s", "patient1_QSM")]
    volumes.append(scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "patient2_T2_lesions"))

    def chosen(task):
        return {option: node.GetName()
                for option, node in workflow.match_inputs(task, volumes).items()}

    assert chosen(tasks.RIM) == {"phase": "patient2_phase", "flair": "FLAIR",
                                 "mp2rage": "MP2RAGE_UNI_Images",
                                 "t2star": "patient2_T2star_mag"}
    assert chosen(tasks.WM) == {"flair": "FLAIR"}
    volumes += [scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
                for name in ("sT1W_3D_TFE", "AXT2")]                      # scanner names
    assert chosen(tasks.WM) == {"flair": "FLAIR", "t1": "sT1W_3D_TFE", "t2": "AXT2"}


def test_a_results_volume_or_a_hidden_one_is_not_taken_for_an_input(scene):
    """A result's lesion-id labelmap is named after its reference volume."""
    ids = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "3D FLAIR wm lesion ids")
    ids.SetAttribute(tasks.ROLE_ATTRIBUTE, "lesion ids")
    hidden = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "hidden FLAIR")
    hidden.SetHideFromEditors(True)
    flair = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "3D FLAIR")
    assert workflow.match_inputs(tasks.WM, [ids, hidden, flair]) == {"flair": flair}


def test_option_values_that_look_like_options_stay_values():
    args = workflow.option_arguments({"point": "-12.5,3,40", "register": True,
                                      "operating-point": None, "model": ""})
    assert args == ["--point=-12.5,3,40", "--register"]
    parser = argparse.ArgumentParser()
    parser.add_argument("--point")
    parser.add_argument("--register", action="store_true")
    assert parser.parse_args(args).point == "-12.5,3,40"


def test_missing_reference_input_is_refused_before_anything_runs(scene):
    runner = FakeRunner(tasks.RIM)
    with pytest.raises(MSLesionAIError, match="phase: required"):
        workflow.start(tasks.RIM, {"phase": None, "flair": None}, runner=runner)
    assert runner.runs == []


# --- the editing loop -----------------------------------------------------------------------

def edit(nodes, task, change) -> None:
    """Edit the lesion segments as the Segment Editor would: ``change(classes)`` in place."""
    grid = mrml.image_from_volume(nodes.lesion_ids)
    classes = workflow.lesion_classes(task, nodes.segmentation, grid)
    change(classes)
    mrml.set_segment_masks(nodes.segmentation, {
        nodes.segmentation.GetSegmentation().GetSegmentIdBySegmentName(name): classes == index
        for index, name in enumerate(task.lesion_segments, start=1)}, grid)


def test_update_table_after_deleting_painting_and_splitting_lesions(scene):
    task = tasks.WM
    nodes = workflow.run(task, add_inputs(scene, task), runner=FakeRunner(task))
    _, before = mrml.rows_from_table(nodes.table)

    def change(classes):
        classes[BLOBS[1]] = 0             # lesion 2 was a false positive
        classes[8:10, 1:3, 1:3] = 1       # a missed lesion, painted
        classes[2:6, 3:9, 5] = 0          # lesion 1 split in two (x = 3..4 | 6..7)

    edit(nodes, task, change)
    assert workflow.table_mismatches(task, nodes) == [
        "the lesion segments differ from the lesions of the table"]
    workflow.update_table(task, nodes)
    assert workflow.table_mismatches(task, nodes) == []

    _, after = mrml.rows_from_table(nodes.table)
    by_id = {row["lesion_id"]: row for row in after}
    assert sorted(by_id) == [1, 3, 4, 5]                 # 2 deleted; new lesions get new ids
    assert by_id[3] == pytest.approx(before[2])          # unchanged: same id, same values
    assert by_id[1]["voxels"] == 4 * 6 * 2 and by_id[1]["probability"] == 0.9
    assert {by_id[4]["voxels"], by_id[5]["voxels"]} == {4 * 6 * 2, 2 * 2 * 2}
    painted = 4 if by_id[4]["voxels"] == 8 else 5
    assert by_id[painted]["location"] == "deep"          # far from the ventricles
    assert by_id[9 - painted]["location"] == by_id[1]["location"] == "periventricular"
    assert np.isnan(by_id[5]["probability"]) and np.isnan(by_id[4]["probability"])
    ids = slicer.util.arrayFromVolume(nodes.lesion_ids)
    assert sorted(np.unique(ids)) == [0, 1, 3, 4, 5]


@pytest.mark.parametrize("task", TASK_PARAMS[1:])
def test_editing_the_class_in_the_table_moves_the_lesion_between_segments(scene, task):
    nodes = workflow.run(task, add_inputs(scene, task), runner=FakeRunner(task))
    columns, rows = mrml.rows_from_table(nodes.table)
    first, second = list(task.class_segments)
    assert [str(row[task.class_column]) for row in rows] == [first, second, first]

    nodes.table.SetCellText(1, columns.index(task.class_column), first)  # the user's correction
    workflow.apply_table_classes(task, nodes)

    grid = mrml.image_from_volume(nodes.lesion_ids)
    classes = workflow.lesion_classes(task, nodes.segmentation, grid)
    assert (classes[BLOBS[1]] == 1).all()  # lesion 2 now in the first class's segment
    assert (classes[BLOBS[0]] == 1).all() and (classes[BLOBS[2]] == 1).all()
    assert nodes.segmentation.GetSegmentation().GetNumberOfLayers() == 1
    workflow.update_table(task, nodes)
    assert [str(row[task.class_column]) for row in mrml.rows_from_table(nodes.table)[1]] == [
        first] * 3


def test_rim_summary_gives_the_prl_count_and_the_chronic_active_flag(scene):
    task = tasks.RIM
    nodes = workflow.run(task, add_inputs(scene, task), runner=FakeRunner(task))
    positive, negative = RIM_SEGMENTS[1][0], RIM_SEGMENTS[0][0]
    assert workflow.summary_line(task, nodes.table) == (
        f"3 lesions, 410.4 µL; {positive}: 2, {negative}: 1; 2 PRL (not chronic active: ≥ 4)")


def test_a_rim_result_at_a_point_gives_no_patient_count_or_flag(scene):
    task = tasks.RIM

    def one_lesion_at_a_point(task, image):
        result = fake_result(task, image)
        result.summary["point"] = {"ras": [0.0, 0.0, 0.0], "lesion_id": 1, "note": ""}
        return result

    nodes = workflow.run(task, add_inputs(scene, task),
                         runner=FakeRunner(task, make_result=one_lesion_at_a_point))
    line = workflow.summary_line(task, nodes.table)
    assert line.endswith("; one lesion classified at a point: not a patient PRL count")
    assert "chronic active" not in line


def test_a_rim_split_group_loses_the_lesions_deleted_since_the_run(scene):
    task = tasks.RIM

    def split_result(task, image):
        result = fake_result(task, image)
        for row in result.rows:      # the three lesions were one component
            row["split_from"] = "1+2+3"
        result.columns.append("split_from")
        return result

    nodes = workflow.run(task, add_inputs(scene, task),
                         runner=FakeRunner(task, make_result=split_result))

    def delete_lesion_2(classes):
        classes[BLOBS[1]] = 0

    edit(nodes, task, delete_lesion_2)
    workflow.update_table(task, nodes)
    assert [(row["lesion_id"], row["split_from"])
            for row in mrml.rows_from_table(nodes.table)[1]] == [(1, "1+3"), (3, "1+3")]
    edit(nodes, task, lambda classes: classes.__setitem__(BLOBS[2], 0))   # and lesion 3
    workflow.update_table(task, nodes)
    [row] = mrml.rows_from_table(nodes.table)[1]
    assert row["split_from"] == "" or np.isnan(row["split_from"])  # an empty column: NaN


def test_a_painted_cortical_lesion_takes_the_class_of_its_segment(scene):
    task = tasks.CORTICAL
    nodes = workflow.run(task, add_inputs(scene, task), runner=FakeRunner(task))

    def paint(classes):
        classes[8:10, 1:3, 1:3] = 2

    edit(nodes, task, paint)
    workflow.update_table(task, nodes)
    new = mrml.rows_from_table(nodes.table)[1][-1]
    assert new["lesion_id"] == 4 and new["class"] == "intracortical_subpial"


def test_a_cortical_lesion_on_a_white_matter_lesion_is_listed_shown_and_not_counted(scene):
    task = tasks.CORTICAL
    assert task.flag.column in pytest.importorskip("MSLesionAILib.pipelines.cortical").COLUMNS
    runner = FakeRunner(task, make_result=flagged_cortical_result)
    nodes = workflow.run(task, add_inputs(scene, task), runner=runner)
    flag_segment = nodes.segmentation.GetSegmentation().GetSegmentIdBySegmentName(
        task.flag.segment)
    assert nodes.segmentation.GetDisplayNode().GetSegmentVisibility(flag_segment)
    assert workflow.table_mismatches(task, nodes) == []
    assert workflow.summary_line(task, nodes.table).endswith(
        "intracortical/subpial lesion: 1, leukocortical lesion: 1, "
        "touching a WM lesion (not counted): 1")

    workflow.update_table(task, nodes)
    columns, rows = mrml.rows_from_table(nodes.table)
    assert [(row["class"], row["overlaps_wm_lesion"]) for row in rows] == [
        ("leukocortical", 0), ("intracortical_subpial", 0), ("leukocortical", 1)]

    nodes.table.SetCellText(2, columns.index("overlaps_wm_lesion"), "0")  # the user's calls
    nodes.table.SetCellText(0, columns.index("overlaps_wm_lesion"), "1")
    workflow.apply_table_classes(task, nodes)
    classes = workflow.lesion_classes(task, nodes.segmentation, mrml.image_from_volume(
        nodes.lesion_ids))
    assert (classes[BLOBS[2]] == 1).all() and (classes[BLOBS[0]] == 3).all()
    assert workflow.summary_line(task, nodes.table).endswith(
        "leukocortical lesion: 1, touching a WM lesion (not counted): 1")
    nodes.table.SetCellText(1, columns.index("overlaps_wm_lesion"), "2")
    with pytest.raises(MSLesionAIError, match="lesion 2: overlaps_wm_lesion '2' is not 0 or 1"):
        workflow.apply_table_classes(task, nodes)


def test_an_unknown_class_value_is_refused_with_the_lesion_named(scene):
    task = tasks.CORTICAL
    nodes = workflow.run(task, add_inputs(scene, task), runner=FakeRunner(task))
    columns, _ = mrml.rows_from_table(nodes.table)
    nodes.table.SetCellText(0, columns.index("class"), "subcortical")
    with pytest.raises(MSLesionAIError, match="lesion 1: class 'subcortical' is not one of"):
        workflow.apply_table_classes(task, nodes)


def test_kept_ids_follow_the_largest_overlap():
    previous = np.array([0, 1, 1, 1, 0, 2, 2, 0, 3])
    components = np.array([0, 1, 1, 2, 0, 3, 3, 3, 0])  # 1 split, 2 grown, 3 deleted
    np.testing.assert_array_equal(workflow.keep_lesion_ids(components, previous),
                                  [0, 1, 1, 4, 0, 2, 2, 2, 0])


def test_summary_line_counts_by_location():
    scene = slicer.vtkMRMLScene()
    rows = [{"lesion_id": 1, "volume_ul": 10.0, "location": "deep"},
            {"lesion_id": 2, "volume_ul": 2.5, "location": "periventricular"},
            {"lesion_id": 3, "volume_ul": 1.0, "location": "deep"}]
    table = mrml.table_from_rows(scene, list(rows[0]), rows, "t")
    assert workflow.summary_line(tasks.WM, table) == (
        "3 lesions, 13.5 µL; deep: 2, periventricular: 1")


def test_the_finished_message_names_the_model_chosen_then_each_warning():
    """With FLAIR alone the automatic choice is another model: the panel says which."""
    summary = {"model": {"id": "wm-deepscan-flair", "version": "1.8.0"},
               "warnings": ["FLAIR only: …", "--flair: spacing …"]}
    assert workflow.finished_message(summary) == (
        "Done with wm-deepscan-flair v1.8.0.\nFLAIR only: …\n--flair: spacing …")
    assert workflow.finished_message({"warnings": []}) == "Done."
