"""The modules' Report button without Qt: a result made in a real `slicer-core` scene (with the
fake command line of `test_workflow`) is reported to a new file, never over an existing one."""

from __future__ import annotations

from datetime import datetime

import pytest
from test_workflow import FakeRunner, add_inputs

from MSLesionAILib import tasks, workflow
from MSLesionAILib.report.scene import new_report_path, write_result_report

pytest.importorskip("slicer")


def test_report_of_a_result_is_a_new_file_with_its_lesions_drawn_on_its_input(scene, tmp_path):
    task = tasks.CORTICAL
    inputs = add_inputs(scene, task)
    hierarchy = scene.GetSubjectHierarchyNode()
    patient = hierarchy.GetItemParent(hierarchy.GetItemByDataNode(inputs["mp2rage"]))
    hierarchy.SetItemName(patient, "Jane Roe")
    nodes = workflow.run(task, inputs, runner=FakeRunner(task))

    first = write_result_report(nodes.table, tmp_path)
    second = write_result_report(nodes.table, tmp_path)

    assert first != second and first.parent == second.parent == tmp_path
    assert first.name.startswith("MP2RAGE_cortical_lesions report ")
    text = first.read_text(encoding="utf-8")
    assert "<title>MSLesionAI report — Jane Roe</title>" in text  # the patient folder
    assert f"Slicer scene: {nodes.table.GetName()}" in text
    assert "lesions, on mp2rage, with the segmentation outlined" in text  # the reference input


def test_default_report_names_never_reuse_an_existing_file(tmp_path):
    now = datetime(2025, 3, 4, 9, 7)
    path = new_report_path(tmp_path, "FLAIR: WM lesions / run 2", now)
    assert path == tmp_path / "FLAIR_WM_lesions_run_2 report 2025-03-04 0907.html"
    path.write_text("", encoding="utf-8")
    again = new_report_path(tmp_path, "FLAIR: WM lesions / run 2", now)
    assert again.name == "FLAIR_WM_lesions_run_2 report 2025-03-04 0907 (2).html"
