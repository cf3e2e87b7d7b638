"""The widget, logic and self-test the three Slicer modules share (inside Slicer only).

Each module file only declares its parameter node, whose fields are the CLI options of its
pipeline in camelCase (``brainMask`` is ``--brain-mask``; a node field is an input, any other
field an option), and subclasses these classes with its task's name. The library's heavy
modules are imported inside the methods, after `dependencies.ensure_dependencies` has run, so
that Slicer starts even before the first use.
"""

from __future__ import annotations

from typing import Any

import qt
import slicer
import vtk
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from .dependencies import ensure_dependencies, missing_requirements, read_requirements
from .tasks import TASKS, Task, match_inputs, option_name, parameter_name

POLL_INTERVAL_MS = 200
AUTO_MODEL = "auto"
REPORT_FOLDER_SETTING = "MSLesionAI/reportFolder"
# The panel's devices: `devices.DEVICE_CHOICES` less "mps" (that module imports torch).
DEVICES = ["auto", "cpu", "cuda"]
ACKNOWLEDGEMENT = (
    "Methods from DeepSCAN (McKinley et al. 2021), CLAIMS (La Rosa et al. 2022), RimNet "
    "(Barquero et al. 2020) and Deep-PRL (Spagnolo et al.). Research software, not a medical "
    "device; the shipped models were trained on synthetic phantoms: read their model cards.")


def describeModule(parent: Any, title: str, helpText: str) -> None:
    """The module's title, category, help and acknowledgement."""
    parent.title = title
    parent.categories = ["MS Lesion AI"]
    parent.contributors = ["MSLesionAI contributors"]
    parent.helpText = helpText.strip()
    parent.acknowledgementText = ACKNOWLEDGEMENT


def pointText(markupsNode: Any, frameNode: Any = None) -> str | None:
    """The last placed control point of a markups node (the panel's place button adds one; a
    point still being placed, or missing, is not placed) as ``R,A,S`` (mm), None when there is
    none: in ``frameNode``'s own coordinates (before its parent transform), else in world
    coordinates.

    The command line reads a point in the coordinates of the reference volume's exported image,
    which are the volume's own: a point picked on a transformed volume is moved back there.
    """
    from . import mrml

    placed = [index for index in range(markupsNode.GetNumberOfControlPoints())
              if markupsNode.GetNthControlPointPositionStatus(index)
              == markupsNode.PositionDefined]
    if not placed:
        return None
    position = [0.0, 0.0, 0.0]
    markupsNode.GetNthControlPointPositionWorld(placed[-1], position)
    position = mrml.transform_point(position, to_node=frameNode)
    return ",".join(f"{value:.3f}" for value in position)


class LesionModuleLogic(ScriptedLoadableModuleLogic):
    """Runs the module's pipeline on scene nodes through `workflow` (no Qt needed)."""

    taskName = ""
    parameterNodeClass: Any = None

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.runner = None  # the real command line unless a test sets another `Runner`

    @property
    def task(self) -> Task:
        return TASKS[self.taskName]

    def getParameterNode(self):
        return self.parameterNodeClass(super().getParameterNode())

    def arguments(self, parameters) -> tuple[dict, dict]:
        """Inputs (nodes) and options (values) by CLI name, from the parameter node; a point
        (markups node) in the reference input's coordinates (see `pointText`)."""
        inputs, options, points = {}, {}, {}
        for name in type(parameters).__annotations__:
            value = getattr(parameters, name)
            isNode = hasattr(value, "IsA")
            if isNode and value.IsA("vtkMRMLMarkupsNode"):
                points[option_name(name)] = value
                options[option_name(name)] = None  # below, once the reference input is known
            elif isNode or value is None:
                inputs[option_name(name)] = value
            else:
                options[option_name(name)] = value
        reference = inputs.get(self.task.reference_input)
        for option, markupsNode in points.items():
            options[option] = pointText(markupsNode, reference)
        return inputs, options

    def start(self, parameters, model: str = AUTO_MODEL):
        from . import process, workflow

        inputs, options = self.arguments(parameters)
        options["model"] = None if model == AUTO_MODEL else model
        return workflow.start(self.task, inputs, options, self.runner or process.run_cli)

    def run(self, inputs: dict, options: dict | None = None):
        """Run to completion: for scripts and self-tests."""
        from . import process, workflow

        return workflow.run(self.task, inputs, options, self.runner or process.run_cli)


class LesionModuleWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: inputs bound to the parameter node, Apply that turns into Cancel, progress,
    the result table (a click on a row centres the slice views on that lesion), the editing
    buttons and Report.

    One job runs at a time: the button that started it (``jobButtons``) turns into Cancel, the
    others are disabled, and ``jobFinished(job)`` takes its result once it has ended.
    """

    logicClass: Any = None

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.job = None
        self.jobButton = self.jobButtonText = self.jobFinished = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self.timer = qt.QTimer()
        self.timer.setInterval(POLL_INTERVAL_MS)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath(f"UI/{self.moduleName}.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = self.logicClass()
        self.jobButtons = [self.ui.applyButton]
        self.modelComboBoxes = [self.ui.modelComboBox]
        self.ui.resultTableSelector.addAttribute("vtkMRMLTableNode", "MSLesionAI.task",
                                                 self.logic.taskName)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.resultTableSelector.connect("currentNodeChanged(vtkMRMLNode*)",
                                            self.onResultTableChanged)
        self.ui.tableView.connect("clicked(QModelIndex)", self.onTableClicked)
        self.ui.tableView.connect("selectionChanged()", self.onTableSelectionChanged)
        self.ui.updateTableButton.connect("clicked(bool)", self.onUpdateTable)
        self.ui.applyClassesButton.connect("clicked(bool)", self.onApplyClasses)
        self.ui.applyClassesButton.visible = self.logic.task.class_column is not None
        self.ui.reportButton.connect("clicked(bool)", self.onReportButton)
        self.timer.connect("timeout()", self.onPoll)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAddedEvent, self.onNodeAdded)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.removeObservers()
        self.cancelJob()

    def enter(self) -> None:
        self.initializeParameterNode()
        self.updateModelChoices()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event) -> None:
        self.cancelJob()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    @vtk.calldata_type(vtk.VTK_OBJECT)
    def onNodeAdded(self, caller, event, node) -> None:
        """A volume loaded while the module is open fills an empty input its name matches,
        once the loader is done with it (some name a node after adding it). Only the new
        volume: an input the user cleared stays empty when other nodes (results) arrive."""
        if self.parent.isEntered and node.IsA("vtkMRMLScalarVolumeNode"):
            qt.QTimer.singleShot(0, lambda: self.chooseNewVolume(node))

    def chooseNewVolume(self, volume) -> None:
        if self._parameterNode and volume.GetScene() is not None:   # not removed since
            self.chooseInputsByName(self._parameterNode, [volume])

    def initializeParameterNode(self) -> None:
        """Bind the parameter node; empty volume inputs get volumes chosen by name."""
        parameters = self.logic.getParameterNode()
        self.chooseInputsByName(
            parameters, list(slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode").values()))
        self.setParameterNode(parameters)

    def chooseInputsByName(self, parameters, volumes: list) -> None:
        """Fill each empty volume input with the volume its name pattern matches."""
        for option, volume in match_inputs(self.logic.task, volumes).items():
            if getattr(parameters, parameter_name(option)) is None:
                setattr(parameters, parameter_name(option), volume)

    def updateModelChoices(self) -> None:
        """Add the installed bundles of this task that the model lists lack, the user's model
        folder included (reading bundles needs the library's packages: only once they are
        installed)."""
        if missing_requirements([*read_requirements(), "torch"]):
            return
        from .bundles import list_bundles
        from .finetune_scene import use_user_model_dir

        use_user_model_dir()
        for bundle in list_bundles():
            for comboBox in self.modelComboBoxes:
                if bundle.task == self.logic.taskName and comboBox.findText(bundle.id) < 0:
                    comboBox.addItem(bundle.id)

    def setParameterNode(self, parameters) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode = parameters
        if parameters:
            self._parameterNodeGuiTag = parameters.connectGui(self.ui)

    # --- running ------------------------------------------------------------------------

    def onApplyButton(self) -> None:
        self.startOrCancelJob(self.ui.applyButton, lambda: self.logic.start(
            self._parameterNode, self.ui.modelComboBox.currentText), self.showResult)

    def startOrCancelJob(self, button, start, finished) -> None:
        """Cancel the running job, or run ``start()`` (a `workflow.Job`-like object) and
        hand the job to ``finished`` once it has ended."""
        if self.job:
            self.cancelJob()
            self.ui.statusLabel.text = "Cancelled."
            return
        with slicer.util.tryWithErrorDisplay("Failed to start.", waitCursor=True):
            if not ensure_dependencies():
                return
            self.job = start()
            self.jobButton, self.jobButtonText, self.jobFinished = button, button.text, finished
            for other in self.jobButtons:
                other.enabled = other is button
            button.text = "Cancel"
            self.ui.progressBar.value = 0
            self.timer.start()

    def onPoll(self) -> None:
        for fraction, message in self.job.run.progress():
            self.ui.progressBar.value = int(100 * fraction)
            self.ui.statusLabel.text = message
        if self.job.run.poll() is None:
            return
        job, finished = self.job, self.jobFinished
        self.stopPolling()
        with slicer.util.tryWithErrorDisplay(f"{self.moduleName} failed.", waitCursor=True):
            finished(job)

    def showResult(self, job) -> None:
        from . import workflow

        nodes = job.finish()
        slicer.util.setSliceViewerLayers(background=job.reference, fit=True)
        self.ui.resultTableSelector.setCurrentNode(nodes.table)
        self.ui.statusLabel.text = workflow.finished_message(nodes.summary)

    def cancelJob(self) -> None:
        if self.job:
            self.job.cancel()
        self.stopPolling()

    def stopPolling(self) -> None:
        self.timer.stop()
        if self.jobButton:
            self.jobButton.text = self.jobButtonText
        for button in self.jobButtons:
            button.enabled = True
        self.job = self.jobButton = self.jobButtonText = self.jobFinished = None

    # --- results and editing ------------------------------------------------------------

    def onResultTableChanged(self, tableNode) -> None:
        self.ui.tableView.setMRMLTableNode(tableNode)
        self.ui.reportButton.enabled = tableNode is not None
        self.updateSummary()

    def onTableClicked(self, index) -> None:
        """Centre the views on the lesion of the clicked row (again when it was already
        selected): the table node's row, whatever order the view shows the rows in."""
        from . import mrml

        row = self.ui.tableView.sortFilterProxyModel().mapToSource(index).row()
        mrml.jump_to_lesion(self.ui.resultTableSelector.currentNode(), row)

    def onTableSelectionChanged(self) -> None:
        """A row reached with the arrow keys centres the views too; none after a new table."""
        index = self.ui.tableView.currentIndex()
        if index.isValid():
            self.onTableClicked(index)

    def onUpdateTable(self) -> None:
        self.editResult("update_table")

    def onApplyClasses(self) -> None:
        self.editResult("apply_table_classes")

    def editResult(self, functionName: str) -> None:
        from . import mrml, workflow

        table = self.ui.resultTableSelector.currentNode()
        if table:
            with slicer.util.tryWithErrorDisplay("Could not update the result.", waitCursor=True):
                getattr(workflow, functionName)(self.logic.task, mrml.result_nodes(table))
            self.updateSummary()

    def onReportButton(self) -> None:
        """Write the selected result's report as a new file in a folder the user picks, and
        open it."""
        settings = qt.QSettings()
        folder = qt.QFileDialog.getExistingDirectory(
            slicer.util.mainWindow(), "Folder for the new report",
            settings.value(REPORT_FOLDER_SETTING, slicer.app.defaultScenePath))
        if not folder:
            return
        with slicer.util.tryWithErrorDisplay("Could not write the report.", waitCursor=True):
            if not ensure_dependencies():
                return
            from .report.scene import write_result_report

            path = write_result_report(self.ui.resultTableSelector.currentNode(), folder)
            settings.setValue(REPORT_FOLDER_SETTING, folder)
            self.ui.statusLabel.text = f"Report written: {path}"
            qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(str(path)))

    def updateSummary(self) -> None:
        from . import workflow

        table = self.ui.resultTableSelector.currentNode()
        self.ui.summaryLabel.text = workflow.summary_line(self.logic.task, table) if table else ""


class LesionModuleTest(ScriptedLoadableModuleTest):
    """Runs the module's real pipeline on a small phantom case and checks that the result
    nodes agree with each other (`workflow.table_mismatches`, as the headless tests do)."""

    logicClass: Any = None

    def runTest(self) -> None:
        slicer.mrmlScene.Clear()
        self.test_phantomCase()

    def test_phantomCase(self) -> None:
        from . import mrml, workflow
        from .phantom import generate_case

        logic = self.logicClass()
        self.assertTrue(ensure_dependencies())
        case = generate_case(0, logic.taskName, crop_mm=64.0)
        inputs = {option: mrml.volume_from_image(slicer.mrmlScene, case.images[option], option)
                  for option in logic.task.input_patterns if option in case.images}
        self.delayDisplay(f"Running {logic.taskName} on a phantom case")
        nodes = logic.run(inputs, {"device": "cpu"})
        self.assertEqual(workflow.table_mismatches(logic.task, nodes), [])
        segmentation = nodes.segmentation.GetSegmentation()
        for name in logic.task.lesion_segments:
            self.assertTrue(segmentation.GetSegmentIdBySegmentName(name), name)
        self.delayDisplay("Test passed")
