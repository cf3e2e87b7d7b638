"""Sample data for teaching: a phantom case per module and the real case shipped with the repo.

Phantom cases are generated on first use into a cache folder (no download), with their truth
as a separate "reference" segmentation, so that a student can compare a module's result with
it. The real case (``Resources/SampleData/lesjak2017_patient07``, CC-BY) gets the same kind of
reference from its consensus mask. Everything here works without Slicer; `register_sample_data`
and `load_sample` are the Slicer side (``slicer`` and ``SampleData`` are imported lazily).

Cache: ``$MSLESIONAI_CACHE/sample_data``, else ``$XDG_CACHE_HOME/mslesionai/sample_data``, else
``~/.cache/mslesionai/sample_data``; phantom cases sit under the phantom generator's version, so
a new generator makes new cases instead of reusing stale ones.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from .atomic import output_directory
from .errors import Cancelled, InputError
from .labels import (
    CORTICAL_CLASSES,
    CORTICAL_FAMILY,
    CORTICAL_SEGMENTS,
    LEUKOCORTICAL,
    RIM_SEGMENTS,
    WM_FAMILY,
    WM_LESION_SEGMENT,
)
from .progress import Progress
from .results import Segment, write_seg_nrrd

CATEGORY = "MSLesionAI"
REFERENCE_FILE = "reference.seg.nrrd"
VOLUME_FILE, SEGMENTATION_FILE = "VolumeFile", "SegmentationFile"  # Slicer's IO file types
_PACKAGE = Path(__file__).resolve().parent
# Where the shipped case may be: the source tree, or the module's installed Resources.
SHIPPED_DATA_DIRS = (_PACKAGE.parents[1] / "Resources" / "SampleData",
                     _PACKAGE.parent / "Resources" / "SampleData")


@dataclass(frozen=True)
class SampleFile:
    """One file of a sample and how Slicer loads it (node name, IO file type)."""

    path: Path
    node_name: str
    file_type: str


@dataclass(frozen=True)
class PhantomSample:
    """A phantom case of one kind (see `phantom.generate_case`), generated on first use."""

    name: str
    kind: str
    seed: int
    crop_mm: float | None = None

    @property
    def version(self) -> str:
        from .phantom import GENERATOR_VERSION

        return _safe(GENERATOR_VERSION)

    def folder(self, cache_dir: Path) -> Path:
        """Named by everything the case is drawn from, so a changed sample is made anew."""
        crop = f"-crop{self.crop_mm:g}mm" if self.crop_mm else ""
        return cache_dir / self.version / f"{self.kind}-seed{self.seed}{crop}"

    def files(self, cache_dir: Path) -> list[SampleFile]:
        from .phantom import KIND_IMAGES

        folder = self.folder(cache_dir)
        node = f"phantom_{self.kind}"
        return [*(SampleFile(folder / "case" / f"{contrast}.nii.gz", f"{node}_{contrast}",
                             VOLUME_FILE) for contrast in KIND_IMAGES[self.kind]),
                SampleFile(folder / REFERENCE_FILE, f"{node}_reference", SEGMENTATION_FILE)]

    def prepare(self, cache_dir: Path, progress: Progress) -> None:
        """Generate the case and its reference segmentation, all or nothing."""
        from .phantom import generate_case, write_case

        case = generate_case(self.seed, self.kind, crop_mm=self.crop_mm,
                             progress=progress.sub(0.0, 0.8))
        progress.update(0.8, "writing the case")
        with output_directory(self.folder(cache_dir)) as partial:
            write_case(case, partial / "case")
            labels, ids_image, segments = phantom_reference(case)
            write_seg_nrrd(partial / REFERENCE_FILE, labels, ids_image, segments)
        progress.update(1.0, "ready")


@dataclass(frozen=True)
class ShippedSample:
    """A real case shipped with the extension; only its reference segmentation is made."""

    name: str
    folder_name: str
    contrasts: tuple[str, ...]
    lesion_mask: str
    version = "shipped"

    def source(self) -> Path:
        for data_dir in SHIPPED_DATA_DIRS:
            if (data_dir / self.folder_name).is_dir():
                return data_dir / self.folder_name
        raise InputError(f"{self.name}: sample folder {self.folder_name} not found in "
                         + " or ".join(str(d) for d in SHIPPED_DATA_DIRS))

    def folder(self, cache_dir: Path) -> Path:
        return cache_dir / self.folder_name

    def files(self, cache_dir: Path) -> list[SampleFile]:
        source = self.source()
        return [*(SampleFile(source / f"{contrast}.nii.gz", f"{self.folder_name}_{contrast}",
                             VOLUME_FILE) for contrast in self.contrasts),
                SampleFile(self.folder(cache_dir) / REFERENCE_FILE,
                           f"{self.folder_name}_reference", SEGMENTATION_FILE)]

    def prepare(self, cache_dir: Path, progress: Progress) -> None:
        mask = sitk.ReadImage(str(self.source() / self.lesion_mask))
        labels = (sitk.GetArrayFromImage(mask) > 0).astype(np.uint8)
        with output_directory(self.folder(cache_dir)) as partial:
            write_seg_nrrd(partial / REFERENCE_FILE, labels, mask,
                           [Segment(1, *WM_LESION_SEGMENT)])


Sample = PhantomSample | ShippedSample
# Seeds reserved for teaching (90001–90003): training and benchmark sets must not use them.
# Names are the Sample Data buttons' texts, unique across Slicer's categories.
SAMPLES: tuple[Sample, ...] = (
    PhantomSample("MSLesionAI WM phantom", "wm", seed=90001),
    PhantomSample("MSLesionAI cortical 7T phantom", "cortical", seed=90002),
    PhantomSample("MSLesionAI rim phantom", "rim", seed=90003),
    ShippedSample("MSLesionAI patient07 (Lesjak 2017)", "lesjak2017_patient07",
                  ("flair", "t1", "t2"), "wm_lesions_gt.nii.gz"),
)


def sample_names() -> list[str]:
    return [sample.name for sample in SAMPLES]


def get_sample(name: str) -> Sample:
    for sample in SAMPLES:
        if sample.name == name:
            return sample
    raise InputError(f"unknown sample {name!r}; choose one of {', '.join(sample_names())}")


def cache_directory() -> Path:
    """The folder for generated sample data (see the module docstring)."""
    if os.environ.get("MSLESIONAI_CACHE"):
        return Path(os.environ["MSLESIONAI_CACHE"]) / "sample_data"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mslesionai" / "sample_data"


def sample_files(sample: Sample | str, cache_dir: str | Path | None = None,
                 progress: Progress | None = None) -> list[SampleFile]:
    """The files of a sample (or of the sample of that name), made first if not in the cache."""
    sample = get_sample(sample) if isinstance(sample, str) else sample
    cache_dir = Path(cache_dir) if cache_dir else cache_directory()
    if not sample.folder(cache_dir).is_dir():
        sample.prepare(cache_dir, progress or Progress())
    return sample.files(cache_dir)


def phantom_reference(case: Any) -> tuple[np.ndarray, sitk.Image, list[Segment]]:
    """The truth of a phantom case as the module's classes: (class labels, geometry, segments).

    wm: one white-matter lesion class; cortical: CLAIMS's two classes (leukocortical, and
    intracortical/subpial); rim: rim+ and rim− white-matter lesions. Label values are the ones
    the pipelines write.
    """
    family = CORTICAL_FAMILY if case.kind == "cortical" else WM_FAMILY
    ids_image = case.truth[f"{family}_lesions"]
    ids = sitk.GetArrayFromImage(ids_image)
    rows = [row for row in case.lesions if row["family"] == family]
    value_of_id = np.zeros(max([int(ids.max()), *(row["lesion_id"] for row in rows)]) + 1,
                           np.uint8)
    for row in rows:
        value_of_id[row["lesion_id"]] = _class_value(case.kind, row)
    return value_of_id[ids], ids_image, _reference_segments(case.kind)


def _class_value(kind: str, row: dict[str, Any]) -> int:
    if kind == "cortical":
        return 1 if row["type"] == LEUKOCORTICAL else 2
    if kind == "rim":
        return 1 if int(row["rim"]) else 2
    return 1


def _reference_segments(kind: str) -> list[Segment]:
    if kind == "cortical":
        return [Segment(value, *CORTICAL_SEGMENTS[name])
                for value, name in enumerate(CORTICAL_CLASSES, start=1)]
    if kind == "rim":
        return [Segment(1, *RIM_SEGMENTS[1]), Segment(2, *RIM_SEGMENTS[0])]
    return [Segment(1, *WM_LESION_SEGMENT)]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


# --- Slicer ---------------------------------------------------------------------------------

def load_sample(name: str, cache_dir: str | Path | None = None) -> list[Any]:
    """Load a sample into Slicer's scene (generating it first, with a progress dialog that can
    cancel, if it is not in the cache); return the nodes, none when cancelled."""
    import slicer

    try:
        with _progress_dialog(f"Preparing sample data {name}") as progress:
            files = sample_files(name, cache_dir, progress)
    except Cancelled:
        return []
    return [slicer.util.loadNodeFromFile(str(f.path), f.file_type, {"name": f.node_name})
            for f in files]


@contextmanager
def _progress_dialog(title: str) -> Iterator[Progress]:
    """A `Progress` shown in Slicer's modal progress dialog; its Cancel button cancels."""
    import slicer

    dialog = slicer.util.createProgressDialog(labelText=title, maximum=100)
    cancel = threading.Event()

    def show(fraction: float, message: str) -> None:
        dialog.value = int(100 * fraction)
        dialog.labelText = f"{title}: {message}" if message else title
        slicer.app.processEvents()
        if dialog.wasCanceled:
            cancel.set()

    try:
        yield Progress(show, cancel)
    finally:
        dialog.close()


def register_sample_data(cache_dir: str | Path | None = None,
                         loader: Callable[[str, str | Path | None], Any] = load_sample) -> None:
    """Add the samples to Slicer's Sample Data module, in the "MSLesionAI" category.

    The button calls ``loader`` (generating phantom cases on first use). The sources also
    carry the files' ``file://`` URIs, so that ``SampleData.downloadSamples(name)`` works in
    scripts once a sample has been generated.
    """
    import SampleData

    cache_dir = Path(cache_dir) if cache_dir else cache_directory()
    _forget_registered_samples()
    for sample in SAMPLES:
        files = sample.files(cache_dir)
        SampleData.SampleDataLogic.registerCustomSampleDataSource(
            category=CATEGORY, sampleName=sample.name,
            uris=[f.path.resolve().as_uri() for f in files],
            fileNames=[_safe(f"{sample.name}_{sample.version}_{f.path.name}") for f in files],
            nodeNames=[f.node_name for f in files],
            loadFileType=[f.file_type for f in files],
            customDownloader=lambda _source, name=sample.name: loader(name, cache_dir))


def _forget_registered_samples() -> None:
    """Drop this category's sources, so that registering again (a module reload) replaces the
    buttons instead of adding a second set: Slicer compares sources by their text, which names
    the loader callback, new at each registration."""
    import slicer

    sources = getattr(getattr(slicer, "modules", None), "sampleDataSources", None)
    if sources is not None:
        sources.pop(CATEGORY, None)

