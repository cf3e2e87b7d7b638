"""Fine-tuning the cortical model on cases corrected in the Slicer scene (MRML only, no Qt).

A case is a segmentation with the two cortical lesion segments (typically a cortical result the
user corrected in the Segment Editor) and the MP2RAGE it was drawn on: the segmentation's
reference geometry volume, which for a result is the run's MP2RAGE. A T2* GRE and a T2* EPI
named like one (the panel's auto-selection rule) in the MP2RAGE's subject hierarchy folder are
added when there are. `start` exports the cases as the case folders ``mslesionai finetune
cortical`` reads (see `training.cortical_data`), starts it through an injectable `Runner` like
a pipeline run, and returns a job whose `FinetuneJob.finish` gives the new bundle, written to a
new folder of the user's model folder and found there by its id. Validation cases, corrected
segmentations not trained on, choose the new model's lesion threshold for the new site.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import mrml
from .bundles import ModelBundle, find_bundle, list_bundles, load_bundle, model_dirs
from .errors import InputError
from .imageio import array_to_image, write_image
from .labels import CORTICAL_CLASSES, CORTICAL_FAMILY, INTRACORTICAL, LEUKOCORTICAL
from .lesions import label_components
from .process import Run, Runner, ScratchJob, run_cli
from .results import write_table_csv
from .tasks import CORTICAL, match_inputs
from .workflow import lesion_classes, option_arguments

MODEL_DIRS_VARIABLE = "MSLESIONAI_MODEL_DIRS"
# The type written in truth/lesions.csv for each class: the intracortical/subpial segment does
# not tell intracortical from subpial lesions, and either type trains that class.
TRUTH_TYPES = dict(zip(CORTICAL_CLASSES, (LEUKOCORTICAL, INTRACORTICAL), strict=True))
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class AnnotatedCase:
    """A corrected cortical segmentation, the MP2RAGE it was drawn on and the optional
    contrasts found beside it, by bundle input name (``t2star_gre``, ``t2star_epi``)."""

    segmentation: Any
    mp2rage: Any
    optional_contrasts: Mapping[str, Any] = field(default_factory=dict)


class FinetuneJob(ScratchJob):
    """A fine-tuning run in progress; ``out`` is the bundle folder it will write."""

    def __init__(self, run: Run, folder: Path, out: Path) -> None:
        super().__init__(run, folder)  # folder: the exported cases
        self.out = out

    def finish(self) -> ModelBundle:
        """Wait for the run; the new bundle."""
        try:
            self.wait_for_success("fine-tuning")
            return load_bundle(self.out)
        finally:
            self.discard()


def start(segmentation_nodes: Sequence[Any], base: str | None = None, name: str = "",
          runner: Runner = run_cli, options: dict[str, Any] | None = None,
          validation_nodes: Sequence[Any] = ()) -> FinetuneJob:
    """Export the annotated cases and start ``mslesionai finetune cortical`` from the ``base``
    bundle (an id or folder; None or "": the preferred installed cortical model) to a new
    bundle named ``name`` (default: the base's id + ``-finetuned``); ``options`` are further
    command-line options (e.g. ``{"steps": 100}``). The ``validation_nodes``, when given, are
    not trained on: they choose the new model's lesion threshold."""
    cases = annotated_cases(segmentation_nodes)
    validation = annotated_cases(validation_nodes) if validation_nodes else []
    _refuse_shared_cases(cases, validation)
    parent = find_bundle(base or None, CORTICAL.name)
    out = new_bundle_folder(use_user_model_dir(), name or f"{parent.id}-finetuned")
    folder = Path(tempfile.mkdtemp(prefix="mslesionai-finetune-"))
    try:
        args = ["finetune", "cortical", "--cases", str(export_cases(cases, folder / "train")),
                "--from", str(parent.path), "--out", str(out), "--id", out.name,
                *option_arguments(options or {})]
        if validation:
            args += ["--validation", str(export_cases(validation, folder / "validation"))]
        return FinetuneJob(runner(args), folder, out)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def finished_message(bundle: ModelBundle) -> str:
    """The panel's line on a new fine-tuned model: where its lesion threshold comes from.
    Without validation cases it keeps its parent's, chosen on other cases."""
    post = bundle.metadata["postprocessing"]
    threshold, selection = post["threshold"], post.get("threshold_selection")
    first = f"New model {bundle.id} in {bundle.path}: selected as the model. "
    if selection:
        cases = len(selection["validation_cases"])
        return first + (f"Its lesion threshold, {threshold}, was chosen on the {cases} "
                        f"validation case{'s' * (cases != 1)} (lesion F1 "
                        f"{selection['f1_by_threshold'][str(threshold)]}).")
    return first + (f"It keeps its parent's lesion threshold ({threshold}), not chosen on these "
                    "cases: check that its first results neither miss nor over-call lesions, "
                    "or fine-tune again with validation cases.")


def annotated_cases(segmentation_nodes: Sequence[Any]) -> list[AnnotatedCase]:
    """The cases of the chosen segmentations; one error naming every segmentation that cannot
    be used (or saying that none was chosen)."""
    if not segmentation_nodes:
        raise InputError("fine-tuning: no annotated cases; choose the corrected cortical "
                         "segmentations to train on")
    problems = [problem for node in segmentation_nodes if (problem := _case_problem(node))]
    if problems:
        raise InputError("fine-tuning: " + "; ".join(problems))
    cases = []
    for node in segmentation_nodes:
        mp2rage = mrml.segmentation_reference_volume(node)
        cases.append(AnnotatedCase(node, mp2rage, _optional_contrasts_beside(mp2rage)))
    return cases


def export_cases(cases: Sequence[AnnotatedCase], folder: Path) -> Path:
    """``folder`` holding each case as ``case_01``, ``case_02``…"""
    for number, case in enumerate(cases, start=1):
        export_case(case, folder / f"case_{number:02d}")
    return folder


def export_case(case: AnnotatedCase, folder: Path) -> Path:
    """Write a case folder: ``mp2rage.nii.gz`` [``t2star_gre.nii.gz``, ``t2star_epi.nii.gz``]
    and the truth, each lesion segment's connected components as lesions of its class, on the
    MP2RAGE's grid. The voxels of a "white-matter lesion" segment (a result's flagged lesions)
    become ``truth/wm_lesions.nii.gz``, which training weights 0, as CLAIMS does."""
    grid = mrml.image_from_volume(case.mp2rage)
    write_image(grid, folder / "mp2rage.nii.gz")
    for name, node in case.optional_contrasts.items():
        write_image(mrml.image_from_volume(node, frame_node=case.mp2rage),
                    folder / f"{name}.nii.gz")
    classes = lesion_classes(CORTICAL, case.segmentation, grid)  # 1-based, as CORTICAL_CLASSES
    ids, rows = np.zeros(classes.shape, np.uint16), []
    for value, name in enumerate(CORTICAL_CLASSES, start=1):
        components = label_components(classes == value, CORTICAL.connectivity)
        first = len(rows)
        ids[components > 0] = components[components > 0] + first
        rows += [{"lesion_id": first + k, "family": CORTICAL_FAMILY, "type": TRUTH_TYPES[name]}
                 for k in range(1, int(components.max(initial=0)) + 1)]
    write_image(array_to_image(ids, grid), folder / "truth" / "cortical_lesions.nii.gz")
    wm_lesions = classes > len(CORTICAL_CLASSES)  # the flag segment's index
    if wm_lesions.any():
        write_image(array_to_image(wm_lesions.astype(np.uint8), grid),
                    folder / "truth" / "wm_lesions.nii.gz")
    write_table_csv(folder / "truth" / "lesions.csv", ["lesion_id", "family", "type"], rows)
    return folder


def use_user_model_dir() -> Path:
    """The folder new models go to, on the model search path: the first folder of
    ``MSLESIONAI_MODEL_DIRS``; when that is unset, ``$XDG_DATA_HOME/mslesionai/models``
    (``~/.local/share/…``), then put in the variable for this process and the commands it
    starts, so that the models there are listed and ``--model ID`` finds them."""
    user_dirs = model_dirs()[1:]
    if user_dirs:
        return user_dirs[0]
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    folder = Path(data) / "mslesionai" / "models"
    os.environ[MODEL_DIRS_VARIABLE] = str(folder)
    return folder


def new_bundle_folder(model_dir: Path, name: str) -> Path:
    """``model_dir/NAME``, else ``NAME-2``, ``NAME-3``…: a folder that does not exist, named
    with an id no installed bundle has (the new bundle's id is its folder's name), so nothing
    is overwritten and the id selects exactly the new model."""
    if not MODEL_NAME.fullmatch(name):
        raise InputError(f"model name '{name}': use letters, digits, '.', '-' and '_' only")
    taken = {bundle.id for bundle in list_bundles()}
    candidate, number = name, 1
    while candidate in taken or (model_dir / candidate).exists():
        number += 1
        candidate = f"{name}-{number}"
    return model_dir / candidate


def _case_problem(node: Any) -> str | None:
    """Why a segmentation cannot be a case, or None."""
    segmentation = node.GetSegmentation()
    missing = [name for name in CORTICAL.lesion_segments
               if not segmentation.GetSegmentIdBySegmentName(name)]
    if missing:
        return (f"{node.GetName()} lacks the cortical lesion segments "
                f"{', '.join(repr(name) for name in missing)} (those of a cortical result)")
    if mrml.segmentation_reference_volume(node) is None:
        return (f"{node.GetName()} has no MP2RAGE: set its source volume (reference geometry) "
                "in the Segment Editor")
    return None


def _refuse_shared_cases(cases: Sequence[AnnotatedCase],
                         validation: Sequence[AnnotatedCase]) -> None:
    """A validation case must be one the model is not trained on, or it chooses a threshold
    for the cases it has learnt: not the same segmentation, nor another (a copy) drawn on the
    MP2RAGE of a training case."""
    trained = {case.mp2rage.GetID() for case in cases}
    shared = [case.segmentation.GetName() for case in validation
              if case.mp2rage.GetID() in trained]
    if shared:
        raise InputError(f"fine-tuning: {', '.join(shared)} drawn on the MP2RAGE of a case to "
                         "train on; a validation case must be one not trained on")


def _optional_contrasts_beside(mp2rage: Any) -> dict[str, Any]:
    """The T2* GRE and EPI in the MP2RAGE's subject hierarchy folder (not at the scene's top,
    where volumes of several patients may lie), by bundle input name."""
    import vtk

    hierarchy = mp2rage.GetScene().GetSubjectHierarchyNode()
    folder = hierarchy.GetItemParent(hierarchy.GetItemByDataNode(mp2rage))
    if not folder or folder == hierarchy.GetSceneItemID():
        return {}
    children = vtk.vtkIdList()
    hierarchy.GetItemChildren(folder, children)
    volumes = [hierarchy.GetItemDataNode(children.GetId(i))
               for i in range(children.GetNumberOfIds())]
    volumes = [v for v in volumes if v is not None and v.IsA("vtkMRMLScalarVolumeNode")]
    found = match_inputs(CORTICAL, [volume for volume in volumes if volume is not mp2rage])
    return {option.replace("-", "_"): node for option, node in found.items()
            if option != CORTICAL.reference_input}
