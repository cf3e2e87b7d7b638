"""The result files every pipeline writes, read back with independent readers."""

from __future__ import annotations

import json

import numpy as np
import SimpleITK as sitk
import slicerio

from MSLesionAILib.results import (
    LesionResult,
    Segment,
    ijk_to_lps_matrix,
    ijk_to_ras_matrix,
    read_table_csv,
    write_result,
)


def _result(reference: sitk.Image) -> LesionResult:
    shape = sitk.GetArrayViewFromImage(reference).shape
    lesion_ids = np.zeros(shape, np.uint16)
    lesion_ids[2:4, 3:6, 4:8] = 1
    lesion_ids[8:10, 10:12, 12:14] = 2
    class_labels = np.where(lesion_ids == 1, 1, np.where(lesion_ids == 2, 2, 0)).astype(np.uint8)
    rows = [{"lesion_id": 1, "class": "leukocortical", "volume_ul": 72.0},
            {"lesion_id": 2, "class": "intracortical_subpial", "volume_ul": 24.0}]
    return LesionResult(
        name="cortical", reference=reference, lesion_ids=lesion_ids, class_labels=class_labels,
        segments=[Segment(1, "leukocortical lesion", (1.0, 0.5, 0.0)),
                  Segment(2, "intracortical/subpial lesion", (0.0, 1.0, 0.0))],
        columns=["lesion_id", "class", "volume_ul"], rows=rows,
        summary={"lesion_count": np.int64(2)},
        extra_images={"probability": np.random.rand(*shape).astype(np.float32)})


def test_every_file_is_written_in_the_reference_geometry(tmp_path, oblique_image):
    result = _result(oblique_image)
    files = write_result(result, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["cortical_lesions.nii.gz", "cortical.seg.nrrd", "lesions.csv", "summary.json",
         "probability.nii.gz"])
    labels = sitk.ReadImage(str(files["lesions"]))
    np.testing.assert_allclose(labels.GetDirection(), oblique_image.GetDirection(), atol=1e-6)
    np.testing.assert_allclose(labels.GetOrigin(), oblique_image.GetOrigin(), atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(labels), result.lesion_ids)
    assert [row["class"] for row in read_table_csv(files["table"])] == [
        "leukocortical", "intracortical_subpial"]
    summary = json.loads(files["summary"].read_text(encoding="utf-8"))
    assert summary["lesion_count"] == 2 and summary["files"]["table"] == "lesions.csv"


def test_seg_nrrd_has_named_segments_and_exact_voxels(tmp_path, oblique_image):
    result = _result(oblique_image)
    files = write_result(result, tmp_path)
    segmentation = slicerio.read_segmentation(str(files["segmentation"]))
    names = [segment["name"] for segment in segmentation["segments"]]
    assert names == ["leukocortical lesion", "intracortical/subpial lesion"]
    np.testing.assert_allclose(segmentation["ijkToLPS"], ijk_to_lps_matrix(oblique_image),
                               atol=1e-4)
    voxels_zyx = np.transpose(segmentation["voxels"], (2, 1, 0))
    np.testing.assert_array_equal(voxels_zyx, result.class_labels)


def test_ijk_to_ras_flips_lps(oblique_image):
    ras = ijk_to_ras_matrix(oblique_image) @ np.array([3, 4, 5, 1.0])
    lps = oblique_image.TransformIndexToPhysicalPoint((3, 4, 5))
    np.testing.assert_allclose(ras[:3], [-lps[0], -lps[1], lps[2]], atol=1e-9)
