"""Golden tests of lesion components, per-lesion measures and white-matter lesion location."""

import numpy as np
import pytest
import SimpleITK as sitk

from MSLesionAILib.errors import InputError
from MSLesionAILib.labels import Tissue
from MSLesionAILib.lesions import (
    label_components,
    lesion_measures,
    wm_lesion_location,
    wm_lesion_locations,
)


def edge_and_corner_touching() -> np.ndarray:
    """Three 2x2x2 cubes: B touches A along an edge only, C touches B at a corner only."""
    mask = np.zeros((8, 8, 8), dtype=np.uint8)
    mask[0:2, 0:2, 0:2] = 1   # A
    mask[2:4, 2:4, 0:2] = 1   # B: shares the edge z=1|2, y=1|2 with A
    mask[4:6, 4:6, 2:4] = 1   # C: shares only the corner (z=3|4, y=3|4, x=1|2) with B
    return mask


@pytest.mark.parametrize(("connectivity", "count"), [(6, 3), (18, 2), (26, 1)])
def test_connectivity_decides_what_touches(connectivity, count):
    assert label_components(edge_and_corner_touching(), connectivity).max() == count


def test_bad_connectivity_is_refused():
    with pytest.raises(InputError, match="connectivity"):
        label_components(edge_and_corner_touching(), 8)


def test_ids_ordered_by_descending_volume_then_raster_order():
    mask = np.zeros((10, 10, 10), dtype=np.uint8)
    mask[0, 0, 0:2] = 1        # 2 voxels, first in raster order
    mask[5:7, 5:7, 5:7] = 1    # 8 voxels
    mask[9, 9, 0:2] = 1        # 2 voxels, last in raster order
    ids = label_components(mask, 6)
    assert ids.dtype == np.int32
    assert ids[5, 5, 5] == 1 and ids[0, 0, 0] == 2 and ids[9, 9, 0] == 3


def test_many_ties_keep_raster_order():
    mask = np.zeros((12, 12, 12), dtype=np.uint8)
    mask[::3, ::3, ::3] = 1                            # 64 single voxels, in raster order
    sites = list(zip(*np.nonzero(mask), strict=True))
    pairs = [i % 3 == 0 or i % 7 == 0 for i in range(len(sites))]
    for (z, y, x), pair in zip(sites, pairs, strict=True):
        mask[z, y, x + 1] = pair                       # some become 2 voxels
    expected = [site for pair in (True, False)
                for site, is_pair in zip(sites, pairs, strict=True) if is_pair == pair]
    ids = label_components(mask, 6)
    assert [ids[site] for site in expected] == list(range(1, 65))


def test_min_volume_uses_the_spacing():
    mask = np.zeros((6, 6, 6), dtype=np.uint8)
    mask[0, 0, 0:3] = 1        # 3 voxels
    mask[4, 4, 0:2] = 1        # 2 voxels
    assert label_components(mask, 6, min_volume_ul=3.0).max() == 1           # 3 µL kept, 2 not
    assert label_components(mask, 6, min_volume_ul=3.0,
                            spacing_mm=(2.0, 1.0, 1.0)).max() == 2            # 6 µL and 4 µL
    assert label_components(mask, 6, min_voxels=4).max() == 0


def oblique_image() -> sitk.Image:
    """Size (x, y, z) = (6, 5, 4), spacing 0.5 x 1 x 2 mm, rotated 30° about the LPS z axis."""
    image = sitk.Image([6, 5, 4], sitk.sitkUInt8)
    image.SetSpacing([0.5, 1.0, 2.0])
    image.SetOrigin([10.0, -20.0, 30.0])
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    image.SetDirection([c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0])
    return image


def test_measures_centroid_in_ras_on_an_oblique_anisotropic_image():
    ids = np.zeros((4, 5, 6), dtype=np.int32)          # numpy (z, y, x)
    ids[1, 1, 2] = ids[1, 1, 4] = 1                    # ITK indices (2,1,1) and (4,1,1)
    ids[3, 4, 5] = 2
    probability = np.zeros(ids.shape)
    probability[1, 1, 2], probability[1, 1, 4] = 0.6, 1.0
    rows = lesion_measures(ids, oblique_image(), probability=probability,
                           uncertainty=np.full(ids.shape, 0.25))
    first = rows[0]
    # Centroid index (3, 1, 1) -> offset (1.5, 1, 2) mm -> rotated (1.5c - 0.5, 0.75 + c, 2)
    # -> LPS (10.799038, -18.383975, 32) -> RAS (-10.799038, 18.383975, 32).
    assert [first["centroid_r"], first["centroid_a"], first["centroid_s"]] == pytest.approx(
        [-10.799038, 18.383975, 32.0], abs=1e-5)
    assert first["lesion_id"] == 1 and first["voxels"] == 2
    assert first["volume_ul"] == pytest.approx(2.0)
    assert first["probability"] == pytest.approx(0.8)
    assert first["uncertainty"] == pytest.approx(0.25)
    assert [row["lesion_id"] for row in rows] == [1, 2]


def test_measures_without_maps_and_without_lesions():
    image = oblique_image()
    ids = np.zeros((4, 5, 6), dtype=np.int32)
    assert lesion_measures(ids, image) == []
    ids[0, 0, 0] = 1
    assert "probability" not in lesion_measures(ids, image)[0]


def test_measures_refuse_a_shape_that_is_not_the_reference():
    with pytest.raises(InputError, match="lesion ids"):
        lesion_measures(np.zeros((6, 5, 4), dtype=np.int32), oblique_image())


def tissue_slab() -> np.ndarray:
    """White matter everywhere, ventricles at x = 0, cortex at x = 19 (numpy (z, y, x))."""
    tissue = np.full((5, 5, 20), Tissue.WHITE_MATTER, dtype=np.uint8)
    tissue[..., 0] = Tissue.VENTRICLES
    tissue[..., 19] = Tissue.CORTICAL_GM
    return tissue


def lesion_at(x: int) -> np.ndarray:
    mask = np.zeros((5, 5, 20), dtype=bool)
    mask[2, 2, x] = True
    return mask


@pytest.mark.parametrize(("x", "location"), [
    (1, "periventricular"),    # touching the ventricle
    (3, "periventricular"),    # 3 mm away
    (4, "deep"),               # 4 mm away
    (10, "deep"),
    (17, "deep"),              # 2 mm from the cortex: not touching, beyond 1.5 mm
    (18, "juxtacortical"),     # touching the cortex
])
def test_location_by_distance_in_mm(x, location):
    assert wm_lesion_location(lesion_at(x), tissue_slab(), (1.0, 1.0, 1.0)) == location


def test_location_distance_is_measured_in_mm_on_anisotropic_voxels():
    # 2 voxels from the ventricle along x: 2 mm with 1 mm voxels, 4 mm with 2 mm voxels.
    assert wm_lesion_location(lesion_at(2), tissue_slab(), (1.0, 1.0, 1.0)) == "periventricular"
    assert wm_lesion_location(lesion_at(2), tissue_slab(), (1.0, 1.0, 2.0)) == "deep"
    # Touching counts whatever the spacing: 5 mm voxels, adjacent to the ventricle.
    assert wm_lesion_location(lesion_at(1), tissue_slab(), (1.0, 1.0, 5.0)) == "periventricular"
    # ... even at a corner only, 5 * sqrt(3) = 8.7 mm between the voxel centres.
    tissue = np.full((5, 5, 5), Tissue.WHITE_MATTER, dtype=np.uint8)
    tissue[1, 1, 1] = Tissue.VENTRICLES
    lesion = np.zeros(tissue.shape, dtype=bool)
    lesion[2, 2, 2] = True
    assert wm_lesion_location(lesion, tissue, (5.0, 5.0, 5.0)) == "periventricular"


def test_location_precedence_infratentorial_then_periventricular_then_juxtacortical():
    tissue = tissue_slab()
    tissue[..., 3] = Tissue.CORTICAL_GM
    lesion = np.zeros(tissue.shape, dtype=bool)
    lesion[2, 2, 1:3] = True                          # touches the ventricle and the cortex
    assert wm_lesion_location(lesion, tissue, (1.0, 1.0, 1.0)) == "periventricular"
    tissue[2, 2, 1:3] = Tissue.INFRATENTORIAL         # both voxels infratentorial
    assert wm_lesion_location(lesion, tissue, (1.0, 1.0, 1.0)) == "infratentorial"
    tissue[2, 2, 2] = Tissue.WHITE_MATTER             # half is not a majority
    assert wm_lesion_location(lesion, tissue, (1.0, 1.0, 1.0)) == "periventricular"


def test_locations_of_every_lesion_by_id():
    ids = np.zeros((5, 5, 20), dtype=np.int32)
    ids[2, 2, 1] = 1
    ids[2, 2, 10] = 2
    ids[2, 2, 18] = 3
    assert wm_lesion_locations(ids, tissue_slab(), (1.0, 1.0, 1.0)) == {
        1: "periventricular", 2: "deep", 3: "juxtacortical"}


def test_location_of_an_empty_mask_is_an_error():
    with pytest.raises(InputError, match="empty"):
        wm_lesion_location(np.zeros((5, 5, 20), dtype=bool), tissue_slab(), (1.0, 1.0, 1.0))
