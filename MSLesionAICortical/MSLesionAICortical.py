"""MSLesionAICortical: cortical lesions on 7 T MP2RAGE (T2* optional), classed leukocortical or
intracortical/subpial as in CLAIMS.

Thin on purpose: the shared panel, logic and self-test are in `MSLesionAILib.slicer_module`,
the work in the `mslesionai cortical` command line; the "Fine-tune on annotated cases" section
runs `mslesionai finetune cortical` on corrected segmentations (`MSLesionAILib.finetune_scene`).
"""

from typing import Annotated

from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModule

from MSLesionAILib import slicer_module as shared

# CLAIMS's minimum lesion volumes (µL); the command line accepts exactly these.
MIN_VOLUMES_UL = [1.0, 3.0, 6.0, 9.0, 15.0]


class MSLesionAICortical(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        shared.describeModule(self.parent, "MS Lesion AI (cortical)", """
Detects multiple sclerosis cortical lesions on 7 T MP2RAGE (T2* GRE / EPI optional) and classes
each one leukocortical or intracortical/subpial (CLAIMS). Lesions touching an optional
white-matter lesion segmentation are flagged, not counted. Edit a lesion's class in the table
and press "Move lesions to their class" to move it between segments. "Fine-tune on annotated
cases" adapts the model to your site from a few corrected results.""")


@parameterNodeWrapper
class MSLesionAICorticalParameterNode:
    """The `mslesionai cortical` options (see `slicer_module`)."""

    mp2rage: vtkMRMLScalarVolumeNode
    t2starGre: vtkMRMLScalarVolumeNode
    t2starEpi: vtkMRMLScalarVolumeNode
    wmLesions: vtkMRMLSegmentationNode
    minVolumeUl: Annotated[float, Choice(MIN_VOLUMES_UL)] = 1.0
    device: Annotated[str, Choice(shared.DEVICES)] = "auto"


class MSLesionAICorticalLogic(shared.LesionModuleLogic):
    taskName = "cortical"
    parameterNodeClass = MSLesionAICorticalParameterNode

    def startFinetune(self, segmentationNodes, base: str, name: str, validationNodes=()):
        """Start fine-tuning ``base`` on corrected segmentations, its threshold chosen on the
        validation ones when there are (`finetune_scene.start`)."""
        from MSLesionAILib import finetune_scene, process

        return finetune_scene.start(segmentationNodes, base, name,
                                    self.runner or process.run_cli,
                                    validation_nodes=validationNodes)


class MSLesionAICorticalWidget(shared.LesionModuleWidget):
    logicClass = MSLesionAICorticalLogic

    def setup(self) -> None:
        super().setup()
        self.jobButtons.append(self.ui.finetuneButton)
        self.modelComboBoxes.append(self.ui.finetuneBaseComboBox)
        self.ui.finetuneButton.connect("clicked(bool)", self.onFinetuneButton)

    def onFinetuneButton(self) -> None:
        self.startOrCancelJob(self.ui.finetuneButton, lambda: self.logic.startFinetune(
            self.ui.finetuneCasesSelector.checkedNodes(), self.ui.finetuneBaseComboBox.currentText,
            self.ui.finetuneNameLineEdit.text.strip(),
            self.ui.finetuneValidationSelector.checkedNodes()), self.onFinetuned)

    def onFinetuned(self, job) -> None:
        """Add the new model to the model lists and select it for the next run."""
        bundle = job.finish()
        self.updateModelChoices()
        self.ui.modelComboBox.setCurrentIndex(self.ui.modelComboBox.findText(bundle.id))
        from MSLesionAILib import finetune_scene
        self.ui.statusLabel.text = finetune_scene.finished_message(bundle)


class MSLesionAICorticalTest(shared.LesionModuleTest):
    logicClass = MSLesionAICorticalLogic
