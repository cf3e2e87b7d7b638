"""MSLesionAICortical: cortical lesions on 7 T MP2RAGE (T2* optional), classed leukocortical or
intracortical/subpial as in CLAIMS.

Thin on purpose: the shared panel, logic and self-test are in `MSLesionAILib.slicer_module`,
the work in the `mslesionai cortical` command line.
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
and press "Move lesions to their class" to move it between segments.""")


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


class MSLesionAICorticalWidget(shared.LesionModuleWidget):
    logicClass = MSLesionAICorticalLogic


class MSLesionAICorticalTest(shared.LesionModuleTest):
    logicClass = MSLesionAICorticalLogic
