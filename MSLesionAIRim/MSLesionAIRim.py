"""MSLesionAIRim: paramagnetic rim lesions (RimNet, Deep-PRL): every lesion rim+ or rim−, the
PRL count and the chronic-active flag; or the lesion at a clicked point.

Thin on purpose: the shared panel, logic and self-test are in `MSLesionAILib.slicer_module`,
the work in the `mslesionai rim` command line.
"""

from typing import Annotated

from slicer import vtkMRMLMarkupsFiducialNode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModule

from MSLesionAILib import slicer_module as shared
from MSLesionAILib.labels import PARAMAGNETIC_PHASE


class MSLesionAIRim(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        shared.describeModule(self.parent, "MS Lesion AI (rim lesions)", """
Classifies multiple sclerosis white-matter lesions as paramagnetic rim lesions (rim+) or not
on unwrapped phase with FLAIR (RimNet) or MP2RAGE (Deep-PRL); gives the PRL count and the
"4 or more PRL" flag. Say whether veins and iron rims are bright (positive) or dark (negative)
on your phase: scanners differ. Without a lesion segmentation, lesions are segmented first.
With a point (placed with the button beside "Classify at point"), only the lesion there is
classified. Edit the rim status in the table and press "Move lesions to their class" to move a
lesion between segments.""")


@parameterNodeWrapper
class MSLesionAIRimParameterNode:
    """The `mslesionai rim` options (see `slicer_module`); operating point 0: the model's."""

    phase: vtkMRMLScalarVolumeNode
    paramagneticPhase: Annotated[str, Choice(list(PARAMAGNETIC_PHASE))] = PARAMAGNETIC_PHASE[0]
    flair: vtkMRMLScalarVolumeNode
    mp2rage: vtkMRMLScalarVolumeNode
    t2star: vtkMRMLScalarVolumeNode
    lesionMask: vtkMRMLSegmentationNode
    t1: vtkMRMLScalarVolumeNode
    t2: vtkMRMLScalarVolumeNode
    point: vtkMRMLMarkupsFiducialNode
    operatingPoint: Annotated[float, WithinRange(0.0, 1.0)] = 0.0
    register: bool = False
    device: Annotated[str, Choice(shared.DEVICES)] = "auto"


class MSLesionAIRimLogic(shared.LesionModuleLogic):
    taskName = "rim"
    parameterNodeClass = MSLesionAIRimParameterNode

    def arguments(self, parameters):
        inputs, options = super().arguments(parameters)
        options["operating-point"] = options["operating-point"] or None  # 0: the model's own
        if inputs["lesion-mask"] or options.get("point"):  # no white-matter step to read them
            inputs["t1"] = inputs["t2"] = None
        return inputs, options


class MSLesionAIRimWidget(shared.LesionModuleWidget):
    logicClass = MSLesionAIRimLogic


class MSLesionAIRimTest(shared.LesionModuleTest):
    logicClass = MSLesionAIRimLogic
