"""What can be checked of the Slicer modules without the Slicer app: they compile, their `.ui`
files parse and hold every widget the code names, their parameters are options of the command
line and the arguments their logic builds (a run, the cortical fine-tuning) parse there, the
CMake files list exactly the files there are, and the first-use install's checks."""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import re
import shutil
import subprocess
import sys
import types
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from MSLesionAILib import dependencies
from MSLesionAILib.cli import build_parser
from MSLesionAILib.devices import DEVICE_CHOICES
from MSLesionAILib.labels import PARAMAGNETIC_PHASE
from MSLesionAILib.tasks import TASKS, option_name, parameter_name
from MSLesionAILib.workflow import option_arguments

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("MSLesionAI", "MSLesionAIRim", "MSLesionAICortical")
SHARED = ROOT / "MSLesionAI" / "MSLesionAILib" / "slicer_module.py"


def module_file(module: str) -> Path:
    return ROOT / module / f"{module}.py"


def ui_widgets(module: str) -> dict[str, ElementTree.Element]:
    tree = ElementTree.parse(ROOT / module / "Resources" / "UI" / f"{module}.ui")
    return {w.get("name"): w for w in tree.iter("widget")}


def parameter_fields(module: str) -> dict[str, str]:
    """Field name → annotation source of the module's `@parameterNodeWrapper` class."""
    source = module_file(module).read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and any(
                ast.unparse(d) == "parameterNodeWrapper" for d in node.decorator_list):
            return {item.target.id: ast.unparse(item.annotation) for item in node.body
                    if isinstance(item, ast.AnnAssign)}
    raise AssertionError(f"{module}: no @parameterNodeWrapper class")


def task_name(module: str) -> str:
    source = module_file(module).read_text(encoding="utf-8")
    return re.search(r'taskName = "(\w+)"', source).group(1)


def literal(path: Path, name: str):
    """The value of a module-level assignment ``NAME = <literal>`` in a Python file."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == name:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path.name}: no {name}")


def subparser(command: str) -> argparse.ArgumentParser:
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    return subparsers.choices[command]


def cli_options(command: str) -> set[str]:
    return set(subparser(command)._option_string_actions)


@pytest.mark.parametrize("path", [*map(module_file, MODULES), SHARED], ids=lambda p: p.name)
def test_module_code_compiles(path):
    compile(path.read_text(encoding="utf-8"), str(path), "exec")


@pytest.mark.parametrize("module", MODULES)
def test_ui_holds_every_widget_the_code_names(module):
    widgets = ui_widgets(module)
    code = SHARED.read_text(encoding="utf-8") + module_file(module).read_text(encoding="utf-8")
    used = set(re.findall(r"self\.ui\.(\w+)", code))
    assert used and used <= set(widgets), f"missing in {module}.ui: {used - set(widgets)}"
    assert widgets[module].get("class") == "qMRMLWidget"


@pytest.mark.parametrize("module", MODULES)
def test_ui_widgets_bind_exactly_the_parameter_node_fields(module):
    bound = {w.find("property[@name='SlicerParameterName']/string").text
             for w in ui_widgets(module).values()
             if w.find("property[@name='SlicerParameterName']") is not None}
    assert bound == set(parameter_fields(module))


@pytest.mark.parametrize("module", MODULES)
def test_every_mrml_widget_gets_the_scene(module):
    tree = ElementTree.parse(ROOT / module / "Resources" / "UI" / f"{module}.ui")
    receivers = {c.findtext("receiver") for c in tree.iter("connection")
                 if c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"}
    mrml_widgets = {name for name, w in ui_widgets(module).items()
                    if w.get("class").startswith(("qMRML", "qSlicer")) and name != module}
    assert receivers == mrml_widgets


def test_a_clicked_row_maps_back_to_the_table_row():
    """A view may sort (a proxy model): the clicked row must be mapped to the node's."""
    handler = re.search(r"def onTableClicked.*?(?=\n    def )", SHARED.read_text(encoding="utf-8"),
                        re.S).group(0)
    assert "sortFilterProxyModel().mapToSource(index).row()" in handler


def test_rows_reached_with_the_arrow_keys_centre_the_views_too():
    """qMRMLTableView's selectionChanged() follows the keyboard; clicked() only the mouse."""
    source = SHARED.read_text(encoding="utf-8")
    assert ('tableView.connect("selectionChanged()", self.onTableSelectionChanged)'
            in source)
    handler = re.search(r"def onTableSelectionChanged.*?(?=\n    def )", source, re.S).group(0)
    assert "self.onTableClicked(index)" in handler and "index.isValid()" in handler


def test_the_rim_lesion_selector_says_what_none_does():
    selector = ui_widgets("MSLesionAIRim")["lesionMaskSelector"]
    assert selector.find("property[@name='noneDisplay']/string").text == (
        "Segment lesions first (from FLAIR, T1, T2)")


def test_the_rim_point_has_a_place_button_that_places_one_point_in_the_chosen_list():
    widgets = ui_widgets("MSLesionAIRim")
    place = widgets["pointPlaceWidget"]
    assert place.get("class") == "qSlicerMarkupsPlaceWidget"
    assert place.find("property[@name='placeMultipleMarkups']/enum").text == (
        "qSlicerMarkupsPlaceWidget::ForcePlaceSingleMarkup")
    tree = ElementTree.parse(ROOT / "MSLesionAIRim" / "Resources" / "UI" / "MSLesionAIRim.ui")
    follows = [(c.findtext("sender"), c.findtext("signal"), c.findtext("slot"))
               for c in tree.iter("connection") if c.findtext("receiver") == "pointPlaceWidget"]
    assert ("pointSelector", "currentNodeChanged(vtkMRMLNode*)",
            "setCurrentNode(vtkMRMLNode*)") in follows


@pytest.mark.parametrize("module", MODULES)
def test_parameters_are_options_of_the_command_line(module):
    task = TASKS[task_name(module)]
    options = {f"--{option_name(name)}" for name in parameter_fields(module)}
    assert options <= cli_options(task.name), options - cli_options(task.name)
    assert {f"--{name}" for name in task.input_patterns} <= options


def test_parameter_and_option_names_convert_both_ways():
    for option in ("t2star-gre", "brain-mask", "min-volume-ul", "phase"):
        assert option_name(parameter_name(option)) == option


def test_panel_choices_are_the_command_line_choices():
    assert set(literal(SHARED, "DEVICES")) <= set(DEVICE_CHOICES)
    cortical = pytest.importorskip("MSLesionAILib.pipelines.cortical")
    assert literal(module_file("MSLesionAICortical"), "MIN_VOLUMES_UL") == list(
        cortical.MIN_VOLUME_CHOICES_UL)
    rim = subparser("rim")._option_string_actions["--paramagnetic-phase"]
    assert tuple(rim.choices) == PARAMAGNETIC_PHASE
    assert "PARAMAGNETIC_PHASE" in parameter_fields("MSLesionAIRim")["paramagneticPhase"]


# --- the module logic, with stand-ins for what only the Slicer app has ----------------------

@pytest.fixture
def module_files(monkeypatch):
    """Imports the module files with stand-ins for qt, the ScriptedLoadableModule classes and
    the parameter node wrapper (a plain class then), to test what their logic computes."""
    pytest.importorskip("slicer")
    scripted = types.ModuleType("slicer.ScriptedLoadableModule")
    for name in ("ScriptedLoadableModule", "ScriptedLoadableModuleLogic",
                 "ScriptedLoadableModuleWidget", "ScriptedLoadableModuleTest"):
        setattr(scripted, name, type(name, (), {"__init__": lambda self, *args: None}))
    wrapper = types.ModuleType("slicer.parameterNodeWrapper")
    wrapper.parameterNodeWrapper = lambda cls: cls
    wrapper.Choice = wrapper.WithinRange = lambda *args: None
    for name, module in (("qt", types.ModuleType("qt")), (scripted.__name__, scripted),
                         (wrapper.__name__, wrapper)):
        monkeypatch.setitem(sys.modules, name, module)
    for module in MODULES:
        monkeypatch.syspath_prepend(str(ROOT / module))
    for name in (*MODULES, "MSLesionAILib.slicer_module"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield {module: importlib.import_module(module) for module in MODULES}
    for name in (*MODULES, "MSLesionAILib.slicer_module"):
        sys.modules.pop(name, None)


def parameters_of(module, values: dict):
    parameters = getattr(module, f"{module.__name__}ParameterNode")()
    for name in type(parameters).__annotations__:
        setattr(parameters, name, values.get(name, getattr(parameters, name, None)))
    return parameters


def test_rim_panel_arguments_are_accepted_by_the_command_line(module_files):
    import slicer

    scene = slicer.vtkMRMLScene()
    phase = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "phase")
    lesions = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "lesions")
    point = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    point.AddControlPoint([-12.5, 3.0, 40.0])
    t1 = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "T1")   # auto-selected, unread
    rim = module_files["MSLesionAIRim"]
    parameters = parameters_of(rim, {"phase": phase, "lesionMask": lesions, "point": point,
                                     "paramagneticPhase": "negative", "t1": t1})

    inputs, options = rim.MSLesionAIRimLogic().arguments(parameters)

    assert inputs == {"phase": phase, "flair": None, "mp2rage": None, "t2star": None,
                      "lesion-mask": lesions, "t1": None, "t2": None}
    assert options == {"paramagnetic-phase": "negative", "point": "-12.500,3.000,40.000",
                       "operating-point": None, "register": False, "device": "auto"}
    args = build_parser().parse_args(["rim", "--phase", "p.nrrd", "--out", "o",
                                      *option_arguments(options)])
    assert args.point == (-12.5, 3.0, 40.0) and args.operating_point is None
    assert args.paramagnetic_phase == "negative"


@pytest.mark.parametrize("module", MODULES)
def test_default_panel_arguments_are_accepted_by_the_command_line(module_files, module):
    logic = getattr(module_files[module], f"{module}Logic")()
    inputs, options = logic.arguments(parameters_of(module_files[module], {}))
    assert set(inputs) >= set(TASKS[logic.taskName].input_patterns)
    args = build_parser().parse_args([logic.taskName, f"--{logic.task.reference_input}", "x",
                                      "--out", "o", *option_arguments(options)])
    assert args.device == "auto"


def test_cortical_finetune_arguments_are_accepted_by_the_command_line(module_files, scene,
                                                                       tmp_path, monkeypatch):
    from test_finetune_scene import corrected_case

    monkeypatch.setenv("MSLESIONAI_MODEL_DIRS", str(tmp_path))
    started = []
    logic = module_files["MSLesionAICortical"].MSLesionAICorticalLogic()
    logic.runner = started.append

    job = logic.startFinetune([corrected_case(scene)], "", "site", [corrected_case(scene)])

    args = build_parser().parse_args(started[0])
    assert (args.command, args.task, args.id, args.out) == ("finetune", "cortical", "site",
                                                           tmp_path / "site")
    for option, folder in ((args.cases, "train"), (args.validation, "validation")):
        assert option == [job.folder / folder]
        assert (job.folder / folder / "case_01" / "mp2rage.nii.gz").is_file()
    assert Path(args.parent).name == "cortical-claims-v12"
    job.discard()


# --- CMake ----------------------------------------------------------------------------------

def cmake_listed_files(module: str) -> set[str]:
    """The files a module's CMakeLists.txt gives its scripts and resources, globs expanded."""
    folder = ROOT / module
    text = (folder / "CMakeLists.txt").read_text(encoding="utf-8")
    variables = {"MODULE_NAME": [re.search(r"set\(MODULE_NAME (\w+)\)", text).group(1)]}
    for name, patterns in re.findall(r"file\(GLOB_RECURSE (\w+) RELATIVE \S+ CONFIGURE_DEPENDS"
                                     r"(.*?)\)", text, re.S):
        variables[name] = [path for pattern in patterns.split()
                           for path in _glob_recurse(folder, pattern)]
    listed = set()
    for block in ("MODULE_PYTHON_SCRIPTS", "MODULE_PYTHON_RESOURCES"):
        for entry in re.search(rf"set\({block}(.*?)\)", text, re.S).group(1).split():
            if entry in (f"${{{name}}}" for name in variables if name != "MODULE_NAME"):
                listed |= set(variables[entry[2:-1]])
            else:
                listed.add(entry.replace("${MODULE_NAME}", variables["MODULE_NAME"][0]))
    return listed


def _glob_recurse(folder: Path, pattern: str) -> list[str]:
    """CMake's GLOB_RECURSE ``dir/*.ext`` RELATIVE folder: files in ``dir`` and its subfolders."""
    directory, name = pattern.rsplit("/", 1)
    return [os.path.relpath(p, folder) for p in (folder / directory).rglob(name) if p.is_file()]


def project_files(folder: Path) -> set[str]:
    """Files git tracks or would track (not ignored) under a folder, relative to it."""
    output = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "."],
                            cwd=folder, capture_output=True, text=True, check=True).stdout
    return {line for line in output.splitlines() if (folder / line).is_file()}


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs the git checkout")
@pytest.mark.parametrize("module", MODULES)
def test_cmake_lists_every_script_and_resource_and_nothing_else(module):
    listed = cmake_listed_files(module)
    existing = project_files(ROOT / module) - {"CMakeLists.txt"}
    assert {p for p in listed if not (ROOT / module / p).is_file()} == set()
    assert existing - listed == set()
    assert f"{module}.py" in listed and f"Resources/UI/{module}.ui" in listed


def test_top_level_cmake_adds_every_module_with_its_self_test():
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.findall(r"add_subdirectory\((\w+)\)", text) == list(MODULES)
    assert (ROOT / "Resources" / "MSLesionAI.png").is_file()
    for module in MODULES:
        module_cmake = (ROOT / module / "CMakeLists.txt").read_text(encoding="utf-8")
        assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in module_cmake
        assert f"class {module}Test(" in module_file(module).read_text(encoding="utf-8")


# --- first-use dependencies -----------------------------------------------------------------

def test_requirements_never_replace_slicers_packages_and_leave_torch_to_pytorch():
    names = {dependencies.requirement_name(r).lower()
             for r in dependencies.read_requirements()}
    assert names and names.isdisjoint({"simpleitk", "numpy", "torch"})


def test_requirements_cover_the_librarys_runtime_dependencies():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    needed = {dependencies.requirement_name(r).lower() for r in project["dependencies"]}
    listed = {dependencies.requirement_name(r).lower() for r in dependencies.read_requirements()}
    assert needed - listed == {"simpleitk", "numpy", "torch"}


def test_missing_packages_are_found(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# comment\nnumpy>=1.0\n\nsurely-not-installed-package>=1 # why\n",
                            encoding="utf-8")
    lines = dependencies.read_requirements(requirements)
    assert lines == ["numpy>=1.0", "surely-not-installed-package>=1"]
    assert dependencies.missing_requirements(lines) == ["surely-not-installed-package>=1"]


def test_slicers_packages_are_pinned_to_their_installed_versions():
    import numpy
    import SimpleITK

    assert dependencies.protected_constraints() == [
        f"SimpleITK=={SimpleITK.Version.VersionString()}", f"numpy=={numpy.__version__}"]
