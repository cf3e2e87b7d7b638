"""Reading, checking and writing images with SimpleITK, keeping origin, spacing and direction.

Every image that enters a pipeline goes through `load_image`, so bad input is refused with one
clear line (naming the input) before any long work starts.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import NamedTuple

import numpy as np
import SimpleITK as sitk

from .errors import InputError


class FieldOfView(NamedTuple):
    """The extent an input must have in every direction, and what that extent is of."""

    min_mm: float
    max_mm: float
    what: str


# At least a cropped brain, at most a head with its neck.
BRAIN = FieldOfView(60.0, 400.0, "a brain")
# A 7 T slab or crop may cover part of the brain; under 10 mm across, most of what the
# cortical network sees (patches of 24 mm or more) would be padding.
CORTICAL_REGION = FieldOfView(10.0, 400.0, "a cortical region")
GZIP_MAGIC = b"\x1f\x8b"
NIFTI_HEADER_SIZES = (348, 540)   # NIfTI-1, NIfTI-2: the first field, read to learn byte order
NIFTI_FLOAT_TYPES = {16: "float32", 64: "float64"}   # NIfTI datatype codes
ORTHOGONALITY_TOLERANCE = 1e-3


def read_image(path: str | Path, name: str) -> sitk.Image:
    """Read a NIfTI / NRRD / MHA file, or a DICOM series from a folder."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{name}: file not found: {path}")
    try:
        if path.is_dir():
            return _read_dicom_series(path, name)
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[-1] if str(error).strip() else "unknown error"
        raise InputError(f"{name}: cannot read {path}: {first_line}") from error
    if float_type := _nifti_float_type(image):
        _refuse_non_finite_nifti(path, name, image, float_type)
    return image


def _nifti_float_type(image: sitk.Image) -> str | None:
    """The numpy type of a NIfTI (or Analyze) file's stored voxels when they are floating
    point (NaN and infinity can only be stored so); None otherwise, or for other formats."""
    if not (image.HasMetaDataKey("datatype") and image.HasMetaDataKey("vox_offset")):
        return None
    return NIFTI_FLOAT_TYPES.get(int(image.GetMetaData("datatype")))


def _refuse_non_finite_nifti(path: Path, name: str, image: sitk.Image,
                             float_type: str) -> None:
    """ITK's NIfTI reader turns NaN and infinite voxels into 0, so they are counted in the
    file itself; a run on the zeros would miss lesions there without a word."""
    data = _file_bytes(path)
    little_endian = int.from_bytes(data[:4], "little") in NIFTI_HEADER_SIZES
    offset = int(float(image.GetMetaData("vox_offset")))
    if path.suffix.lower() == ".hdr":   # a header/image pair: the voxels are in the .img
        images = [path.with_suffix(suffix) for suffix in (".img", ".img.gz", ".IMG")]
        data, offset = _file_bytes(next(p for p in images if p.is_file())), 0
    dtype = np.dtype(float_type).newbyteorder("<" if little_endian else ">")
    try:
        voxels = np.frombuffer(data, dtype, count=image.GetNumberOfPixels(), offset=offset)
    except ValueError as error:
        raise InputError(f"{name}: {path.name} holds fewer voxels than its header says") from error
    non_finite = int(np.count_nonzero(~np.isfinite(voxels)))
    if non_finite:
        raise InputError(f"{name}: {non_finite} voxels of {path.name} are NaN or infinite; "
                         "replace them (e.g. by 0) first")


def _file_bytes(path: Path) -> bytes:
    """A file's bytes, gunzipped when it is gzip-compressed (whatever its name says)."""
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == GZIP_MAGIC else data


def _read_dicom_series(folder: Path, name: str) -> sitk.Image:
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)   # "no series found" is said below, once
    try:
        series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)
    if not series_ids:
        raise InputError(f"{name}: no DICOM series in folder {folder}")
    if len(series_ids) > 1:
        raise InputError(
            f"{name}: folder {folder} holds {len(series_ids)} DICOM series; give one series' folder"
        )
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_ids[0]))
    return reader.Execute()


def validate_image(image: sitk.Image, name: str, *,
                   field_of_view: FieldOfView | None = None) -> sitk.Image:
    """Refuse images no pipeline can use: not a 3D volume (`validate_volume`), empty,
    constant, or with NaN/Inf voxels.

    With ``field_of_view`` (e.g. `BRAIN`) the image must span that range in every direction.
    """
    image = validate_volume(image, name)
    voxels = sitk.GetArrayViewFromImage(image)
    if voxels.size == 0:
        raise InputError(f"{name}: is empty")
    if not np.isfinite(voxels).all():
        raise InputError(f"{name}: contains NaN or infinite voxel values")
    if voxels.min() == voxels.max():
        raise InputError(f"{name}: is constant (every voxel is {voxels.min()}); nothing to analyse")
    if field_of_view is not None:
        _refuse_extent_outside(field_of_view, image, name)
    return image


def validate_volume(image: sitk.Image, name: str) -> sitk.Image:
    """Refuse an image that is not one 3D scalar volume on perpendicular axes; a 4D image
    whose fourth dimension is 1 is accepted as that 3D volume."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{name}: has {image.GetNumberOfComponentsPerPixel()} components "
                         "per voxel; expected a scalar (grey-level) image")
    image = single_volume(image)
    if image.GetDimension() != 3:
        raise InputError(f"{name}: is {image.GetDimension()}D with size {image.GetSize()}; "
                         "expected a 3D volume")
    if min(image.GetSize()) < 2:
        raise InputError(
            f"{name}: is a single slice (size {image.GetSize()}); expected a 3D volume")
    direction = np.reshape(image.GetDirection(), (3, 3))
    if not np.allclose(direction.T @ direction, np.eye(3), atol=ORTHOGONALITY_TOLERANCE):
        raise InputError(f"{name}: its voxel axes are not perpendicular (a sheared direction "
                         "matrix), which NIfTI outputs cannot keep; resample it onto an "
                         "orthogonal grid first")
    return image


def _refuse_extent_outside(field_of_view: FieldOfView, image: sitk.Image, name: str) -> None:
    extent_mm = np.array(image.GetSize()) * np.array(image.GetSpacing())
    if extent_mm.min() < field_of_view.min_mm:
        raise InputError(f"{name}: field of view {np.round(extent_mm, 1).tolist()} mm is "
                         f"smaller than {field_of_view.what} (< {field_of_view.min_mm:.0f} mm)")
    if extent_mm.max() > field_of_view.max_mm:
        raise InputError(f"{name}: field of view {np.round(extent_mm, 1).tolist()} mm is "
                         f"larger than a head (> {field_of_view.max_mm:.0f} mm); crop it "
                         "to the head first")


def single_volume(image: sitk.Image) -> sitk.Image:
    """A 4D image of one volume (as NRRD and MHA files may hold a 3D one) as that 3D volume;
    any other image as it is."""
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        return image[:, :, :, 0]
    return image


def load_image(path: str | Path, name: str, *,
               field_of_view: FieldOfView | None = None) -> sitk.Image:
    """Read and validate one input image (see `validate_image`)."""
    return validate_image(read_image(path, name), name, field_of_view=field_of_view)


def write_image(image: sitk.Image, path: str | Path) -> Path:
    """Write an image, compressed; the caller chooses the folder (see `atomic.output_directory`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), useCompression=True)
    return path


def array_to_image(voxels_zyx: np.ndarray, reference: sitk.Image) -> sitk.Image:
    """A new image with the given voxels (numpy z, y, x order) and the reference's geometry."""
    image = sitk.GetImageFromArray(voxels_zyx)
    image.CopyInformation(reference)
    return image
