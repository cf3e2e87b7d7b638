"""First use inside Slicer: install the packages the library needs, after the user agrees.

The list is the extension's ``Resources/requirements.txt``. Slicer's own SimpleITK and numpy
are never replaced: the install is constrained to their installed versions. torch comes
through the PyTorch extension (``PyTorchUtils``) when it is installed, so that its CUDA build
matches the driver; otherwise it is installed with the rest. Only `ensure_dependencies` needs
Slicer; the rest is plain Python.
"""

from __future__ import annotations

import re
import tempfile
from importlib import metadata
from pathlib import Path

from .errors import MSLesionAIError

# The extension's top folder in a checkout; the installed extension keeps the same layout.
REQUIREMENTS_FILE = Path(__file__).resolve().parents[2] / "Resources" / "requirements.txt"
PROTECTED = ("SimpleITK", "numpy")
REQUESTER = "MSLesionAI"


def read_requirements(path: str | Path = REQUIREMENTS_FILE) -> list[str]:
    """The requirement lines of a requirements file, comments and blank lines left out."""
    text = Path(path).read_text(encoding="utf-8")
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def requirement_name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0)


def is_installed(requirement: str) -> bool:
    """Whether the requirement's distribution is installed (any version)."""
    try:
        metadata.version(requirement_name(requirement))
    except metadata.PackageNotFoundError:
        return False
    return True


def missing_requirements(requirements: list[str]) -> list[str]:
    return [requirement for requirement in requirements if not is_installed(requirement)]


def protected_constraints() -> list[str]:
    """Pins of the installed protected packages (``SimpleITK==2.4.0``) for pip's ``-c``."""
    return [f"{name}=={metadata.version(name)}" for name in PROTECTED if is_installed(name)]


def ensure_dependencies() -> bool:
    """In Slicer, before the first run: True once everything is installed (installing what is
    missing after the user agrees); False when the user declines. An install that fails, for
    example offline, raises `MSLesionAIError` saying how to install by hand."""
    missing = missing_requirements(read_requirements())
    if not is_installed("torch") and not _install_torch_with_pytorch_extension():
        missing.append("torch")
    if not missing:
        return True
    try:
        _install(missing)
    except Exception as error:  # pip's errors have no common type
        raise MSLesionAIError(
            f"Could not install {', '.join(missing)} ({error}). If this computer is offline, "
            "install them from downloaded wheels: PythonSlicer -m pip install --no-index "
            f"--find-links FOLDER {' '.join(missing)}") from error
    return not missing_requirements(missing)


def _install(requirements: list[str]) -> None:
    import slicer

    with tempfile.TemporaryDirectory() as folder:
        constraints = Path(folder) / "constraints.txt"
        constraints.write_text("\n".join(protected_constraints()) + "\n", encoding="utf-8")
        if hasattr(getattr(slicer, "packaging", None), "pip_ensure"):  # Slicer ≥ 5.12: asks
            from packaging.requirements import Requirement

            slicer.packaging.pip_ensure([Requirement(r) for r in requirements],
                                        constraints=constraints, requester=REQUESTER)
        elif slicer.util.confirmOkCancelDisplay(
                f"{REQUESTER} needs these Python packages, which will be downloaded and "
                f"installed now: {', '.join(requirements)}.", "Install Python packages"):
            slicer.util.pip_install([*requirements, "-c", str(constraints)])


def _install_torch_with_pytorch_extension() -> bool:
    """Install torch with the PyTorch extension's helper; False when that extension is absent
    or the user declined."""
    try:
        import PyTorchUtils
    except ImportError:
        return False
    return PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=True) is not None
