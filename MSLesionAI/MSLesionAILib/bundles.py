"""Model bundles: a folder with ``metadata.json`` and safetensors weights, checked by SHA-256.

The metadata says everything inference must know (inputs in order, spacing, normalisation,
patch size, classes, thresholds, network arguments); nothing of it is hard-coded elsewhere.
Weights load without executing code. The shipped bundles live in ``Resources/Models`` with a
manifest, ``models.json``, that orders them by preference (a bundle whose metadata lists
``chosen_for_inputs``, e.g. a FLAIR-only model, is chosen only when exactly those of its
inputs are given, and then before any other); users add folders of their own with
the ``MSLESIONAI_MODEL_DIRS`` environment variable (``os.pathsep``-separated) or ``--model PATH``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import output_directory
from .errors import BundleError
from .jsonfiles import read_json, write_json

if TYPE_CHECKING:  # torch is imported where weights are read or written (see devices.py)
    import torch

SHIPPED_MODELS_DIR = Path(__file__).parent / "Resources" / "Models"
MANIFEST_NAME = "models.json"
METADATA_NAME = "metadata.json"
WEIGHTS_NAME = "weights.safetensors"
REQUIRED_KEYS = ("id", "version", "task", "architecture", "network", "inputs", "classes", "files")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelBundle:
    """A model bundle folder and its parsed metadata."""

    path: Path
    metadata: dict[str, Any]

    @property
    def id(self) -> str:
        return self.metadata["id"]

    @property
    def task(self) -> str:
        return self.metadata["task"]

    @property
    def input_names(self) -> list[str]:
        return [spec["name"] for spec in self.metadata["inputs"]]

    def unused_input_warnings(self, given: Iterable[str]) -> list[str]:
        """A warning for each given contrast (a CLI option's name, ``t2star_gre`` or
        ``t2star-gre``) this model does not read."""
        return [f"--{name.replace('_', '-')}: not used by model {self.id} "
                f"(inputs: {', '.join(self.input_names)}); ignored"
                for name in given if name.replace("-", "_") not in self.input_names]

    @property
    def required_inputs(self) -> list[str]:
        return [spec["name"] for spec in self.metadata["inputs"] if spec.get("required", True)]

    @property
    def chosen_for_inputs(self) -> list[str] | None:
        """The inputs that alone make the automatic choice take this bundle (e.g. FLAIR for a
        FLAIR-only model); None for a general bundle."""
        return self.metadata.get("chosen_for_inputs")

    @property
    def measured_inputs(self) -> list[str]:
        """The inputs it is measured and tuned with: those it is chosen for, else all."""
        return self.chosen_for_inputs or self.input_names

    def suits(self, available_inputs: set[str]) -> bool:
        """Whether the automatic choice may take this bundle for these inputs: all its
        required inputs given, and, where it is chosen for some inputs, exactly those of its
        inputs."""
        chosen_for = self.chosen_for_inputs
        return (set(self.required_inputs) <= available_inputs
                and (chosen_for is None
                     or set(self.input_names) & available_inputs == set(chosen_for)))

    @property
    def weights_sha256(self) -> str:
        return self.metadata["files"][WEIGHTS_NAME]

    def load_state_dict(self) -> dict[str, torch.Tensor]:
        """Verify every file's SHA-256, then load the weights (no code is executed)."""
        from safetensors.torch import load_file

        for name, expected in self.metadata["files"].items():
            file = self.path / name
            if not file.is_file():
                raise BundleError(f"model {self.id}: file {name} is missing from {self.path}")
            actual = sha256_file(file)
            if actual != expected:
                raise BundleError(f"model {self.id}: {name} fails its checksum (SHA-256 "
                                  f"{actual[:12]}… != {expected[:12]}… in metadata.json); "
                                  "the file is damaged or was replaced")
        return load_file(str(self.path / WEIGHTS_NAME))

    def describe(self) -> dict[str, Any]:
        """What a summary.json records about the model used."""
        return {"id": self.id, "version": self.metadata["version"],
                "sha256": self.weights_sha256, "path": str(self.path)}


def load_bundle(path: str | Path) -> ModelBundle:
    path = Path(path)
    metadata_file = path / METADATA_NAME
    if not metadata_file.is_file():
        raise BundleError(f"model bundle {path}: no {METADATA_NAME} in that folder")
    try:
        metadata = read_json(metadata_file)
    except json.JSONDecodeError as error:
        raise BundleError(
            f"model bundle {path}: {METADATA_NAME} is not valid JSON: {error}") from error
    missing = [key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        raise BundleError(f"model bundle {path}: {METADATA_NAME} lacks {', '.join(missing)}")
    bundle = ModelBundle(path, metadata)
    check_chosen_for(bundle)
    return bundle


def check_chosen_for(bundle: ModelBundle) -> None:
    """``chosen_for_inputs`` must name some of the bundle's inputs, its required ones among
    them: any other list would never be chosen, or be measured on inputs it cannot read."""
    chosen_for = bundle.chosen_for_inputs
    if chosen_for is None:
        return
    names = chosen_for if isinstance(chosen_for, list) else []
    if not names or not all(isinstance(name, str) for name in names) or not (
            set(bundle.required_inputs) <= set(names) <= set(bundle.input_names)):
        raise BundleError(f"model bundle {bundle.path}: chosen_for_inputs {chosen_for} must name "
                          f"some of its inputs ({', '.join(bundle.input_names)}), every required "
                          f"one ({', '.join(bundle.required_inputs)}) among them")


def model_dirs() -> list[Path]:
    """The shipped models folder, then the user's folders from ``MSLESIONAI_MODEL_DIRS``."""
    extra = os.environ.get("MSLESIONAI_MODEL_DIRS", "")
    return [SHIPPED_MODELS_DIR] + [Path(p) for p in extra.split(os.pathsep) if p]


def list_bundles(dirs: list[Path] | None = None) -> list[ModelBundle]:
    """Every bundle in the model folders: manifest order first, then any other bundle folder."""
    bundles = []
    for folder in dirs if dirs is not None else model_dirs():
        if not folder.is_dir():
            continue
        manifest = folder / MANIFEST_NAME
        names = read_json(manifest)["bundles"] if manifest.is_file() else []
        names += sorted(p.name for p in folder.iterdir()
                        if (p / METADATA_NAME).is_file() and p.name not in names)
        bundles += [load_bundle(folder / name) for name in names]
    return bundles


def find_bundle(model: str | None, task: str, available_inputs: set[str] | None = None,
                dirs: list[Path] | None = None, option: str = "--model") -> ModelBundle:
    """The bundle named by ``model`` (a folder, or an installed bundle's id or folder name,
    e.g. ``cortical-claims`` or ``cortical-claims-v12``), or the preferred one for ``task``
    that suits the available inputs (`ModelBundle.suits`; one chosen for exactly these inputs
    first). ``option`` names the argument in errors."""
    if model and Path(model).is_dir():
        bundle = load_bundle(model)
    else:
        candidates = [b for b in list_bundles(dirs)
                      if b.task == task and model in (None, b.id, b.path.name)]
        if available_inputs is not None and model is None:
            candidates = sorted((b for b in candidates if b.suits(available_inputs)),
                                key=lambda b: b.chosen_for_inputs is None)
        if not candidates:
            known = ", ".join(_bundle_names(b) for b in list_bundles(dirs)
                              if b.task == task) or "none"
            wanted = (f"no model '{model}' found" if model
                      else f"no installed {task} model has all its required inputs here")
            raise BundleError(f"{option}: {wanted} (installed {task} models: {known})")
        bundle = candidates[0]
    if bundle.task != task:
        raise BundleError(f"{option}: {bundle.id} is a {bundle.task} model, not a {task} model")
    return bundle


def inputs_text(names: list[str]) -> str:
    """Input names as tables and model cards write them: "FLAIR", "FLAIR and T1"."""
    return " and ".join(name.upper() for name in names)


def _bundle_names(bundle: ModelBundle) -> str:
    """How a bundle can be named: its id, and its folder when that differs."""
    return bundle.id if bundle.path.name == bundle.id else f"{bundle.id} ({bundle.path.name})"


def write_bundle(out_dir: str | Path, metadata: dict[str, Any],
                 state_dict: dict[str, torch.Tensor]) -> ModelBundle:
    """Write weights and metadata (with the weights' SHA-256) as a new bundle folder."""
    from safetensors.torch import save_file

    with output_directory(out_dir) as partial:
        tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
        save_file(tensors, str(partial / WEIGHTS_NAME))
        metadata = {**metadata, "files": {WEIGHTS_NAME: sha256_file(partial / WEIGHTS_NAME)}}
        write_json(partial / METADATA_NAME, metadata)
    return load_bundle(out_dir)


def update_metadata(bundle: ModelBundle, **entries: Any) -> ModelBundle:
    """Rewrite metadata.json with ``entries`` added (the checksum covers the weights only)."""
    write_json(bundle.path / METADATA_NAME, {**bundle.metadata, **entries})
    return load_bundle(bundle.path)
