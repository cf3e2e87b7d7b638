"""Location agreement: a found lesion against the typed truth lesion it overlaps most."""

from __future__ import annotations

import numpy as np

from MSLesionAILib.metrics.location import location_agreement

TRUTH = {5: "deep", 6: "juxtacortical"}


def test_each_found_lesion_is_judged_against_the_truth_lesion_it_overlaps_most():
    pred = np.array([0, 1, 1, 1, 2, 2, 0, 3, 4])
    truth = np.array([0, 5, 5, 6, 6, 6, 0, 0, 9])   # 9: a lesion the truth does not type
    locations = {1: "deep", 2: "periventricular", 3: "deep", 4: "deep"}
    # 1 is mostly on 5 (deep: agrees), 2 on 6 (juxtacortical: not), 3 and 4 on no typed lesion.
    assert location_agreement(pred, truth, locations, TRUTH) == (1, 2)


def test_no_overlap_matches_nothing():
    empty = np.zeros(5, int)
    assert location_agreement(empty, np.array([0, 5, 5, 0, 0]), {}, TRUTH) == (0, 0)
    assert location_agreement(np.array([1, 1, 0, 0, 0]), empty, {1: "deep"}, TRUTH) == (0, 0)
