"""The rim training set: lesions counted first, then every case's patches written into one
array; the same set as extracting each case and joining the parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from test_rim_pipeline import make_case

from MSLesionAILib.progress import Progress
from MSLesionAILib.rim_patches import PatchSpec, sample_own_lesion
from MSLesionAILib.training.rim_data import case_patches, load_patch_set, patch_count

SPEC = PatchSpec(size_vox=12, spacing_mm=0.8, value_range=(0.0, 1.0),
                 clip_percentiles=(5.0, 95.0), mask_dilation_vox=1)
COPIES = (1, 3)  # extra copies per rim− and per rim+ lesion


def test_patch_set_is_the_cases_patches_in_order(tmp_path: Path) -> None:
    folders = [make_case(tmp_path / f"case_{seed}", seed) for seed in (3, 4)]
    inputs = ["mp2rage", "phase"]
    loaded = load_patch_set(folders, inputs, SPEC, 14, COPIES, seed=5, progress=Progress())

    rng = np.random.default_rng(5)
    parts = [case_patches(folder, inputs, SPEC, 14, COPIES, rng) for folder in folders]
    np.testing.assert_array_equal(loaded.patches, np.concatenate([p[0] for p in parts]))
    np.testing.assert_array_equal(loaded.labels, np.concatenate([p[1] for p in parts]))
    np.testing.assert_array_equal(loaded.original, np.concatenate([p[2] for p in parts]))
    np.testing.assert_array_equal(loaded.cases, np.repeat([0, 1], [len(p[1]) for p in parts]))
    assert loaded.patches.dtype == np.float16 and loaded.patches.shape[1:] == (3, 14, 14, 14)


def test_patch_count_counts_the_copies(tmp_path: Path) -> None:
    folder = make_case(tmp_path / "case", 0)       # three lesions, one rim+, all ≥ 12.3 µL
    assert patch_count(folder, COPIES) == 2 * (1 + 1) + (1 + 3)
    assert patch_count(folder, (0, 0)) == 3


def test_a_case_without_lesions_gives_no_patches(tmp_path: Path) -> None:
    empty = make_case(tmp_path / "case_empty", 1)   # realistic phantoms: 6 % have no lesions
    truth = sitk.ReadImage(str(empty / "truth" / "wm_lesions.nii.gz")) * 0
    sitk.WriteImage(truth, str(empty / "truth" / "wm_lesions.nii.gz"))
    (empty / "truth" / "lesions.csv").write_text("lesion_id,family,type,rim\n", encoding="utf-8")
    full = make_case(tmp_path / "case_full", 2)
    loaded = load_patch_set([empty, full], ["phase", "flair"], SPEC, 14, COPIES, seed=0,
                            progress=Progress())
    assert patch_count(empty, COPIES) == 0
    assert len(loaded.labels) == patch_count(full, COPIES) and set(loaded.cases) == {1}
    assert loaded.original.sum() == 3   # one unturned copy per lesion of the full case


def test_candidate_mask_channel_gives_every_copy_its_own_lesion(tmp_path: Path) -> None:
    """Every patch, rotated copies included, has its own lesion at its centre in the mask
    channel, and the other lesions nowhere (the three lesions lie apart)."""
    folder = make_case(tmp_path / "case", 0)
    spec = PatchSpec(size_vox=12, spacing_mm=0.8, value_range=(0.0, 1.0),
                     clip_percentiles=(5.0, 95.0), mask_dilation_vox=1, mask_lesions="candidate")
    patches, labels, original = case_patches(folder, ["mp2rage", "phase"], spec, 14, COPIES,
                                             np.random.default_rng(0))
    assert len(patches) == 8 and original.sum() == 3
    mask = patches[:, 2].astype(np.float32)
    assert (mask[:, 7, 7, 7] == 1.0).all()
    whole = case_patches(folder, ["mp2rage", "phase"],
                         PatchSpec(**{**spec.to_metadata(), "mask_lesions": "all"}), 14, COPIES,
                         np.random.default_rng(0))[0][:, 2].astype(np.float32)
    np.testing.assert_array_equal(mask, whole)   # apart, so nothing else was in the patch


def test_one_lesion_id_per_centre() -> None:
    image = sitk.Image([8, 8, 8], sitk.sitkFloat32)
    with pytest.raises(ValueError, match="2 lesion ids for 1 patch centres"):
        sample_own_lesion(np.zeros((8, 8, 8), np.int32), [1, 2], image, np.zeros((1, 3)), 4,
                          1.0)
