"""MSLesionAI: white-matter lesions and brain tissue from FLAIR (T1, T2 optional), DeepSCAN-style.

Thin on purpose: the shared panel, logic and self-test are in `MSLesionAILib.slicer_module`,
the work in the `mslesionai wm` command line.
"""

from typing import Annotated

import slicer
from slicer import vtkMRMLScalarVolumeNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModule

from MSLesionAILib import slicer_module as shared


class MSLesionAI(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        shared.describeModule(self.parent, "MS Lesion AI (white matter)", """
Segments multiple sclerosis white-matter lesions and brain tissue from FLAIR (T1 and T2
optional), and lists every lesion with its volume, location (periventricular, juxtacortical,
infratentorial, deep white matter), probability and uncertainty. Click a table row to centre
the views on that lesion; after correcting the segmentation, press "Update table".""")
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    """The phantom cases and the real case in the Sample Data module (once the library's
    packages are installed: generating a case needs them)."""
    from MSLesionAILib.dependencies import missing_requirements, read_requirements

    if not missing_requirements(read_requirements()):
        from MSLesionAILib.sample_data import register_sample_data

        register_sample_data()


@parameterNodeWrapper
class MSLesionAIParameterNode:
    """The `mslesionai wm` options (see `slicer_module`)."""

    flair: vtkMRMLScalarVolumeNode
    t1: vtkMRMLScalarVolumeNode
    t2: vtkMRMLScalarVolumeNode
    brainMask: vtkMRMLScalarVolumeNode
    minVolumeUl: Annotated[float, WithinRange(0.0, 1000.0)] = 3.0
    device: Annotated[str, Choice(shared.DEVICES)] = "auto"


class MSLesionAILogic(shared.LesionModuleLogic):
    taskName = "wm"
    parameterNodeClass = MSLesionAIParameterNode


class MSLesionAIWidget(shared.LesionModuleWidget):
    logicClass = MSLesionAILogic


class MSLesionAITest(shared.LesionModuleTest):
    logicClass = MSLesionAILogic
