"""Choosing a white-matter bundle's lesion threshold on validation cases (`train wm-threshold`)."""

from __future__ import annotations

import numpy as np
from test_wm_pipeline import ThresholdNetwork, make_case

from MSLesionAILib import pipelines
from MSLesionAILib.bundles import load_bundle, update_metadata
from MSLesionAILib.cli import main
from MSLesionAILib.labels import Tissue
from MSLesionAILib.pipelines.wm import LesionMaps
from MSLesionAILib.training.wm_threshold import best_threshold, case_scores

SPACING_ZYX_MM = (1.0, 1.0, 1.0)


def faint_case() -> tuple[LesionMaps, np.ndarray]:
    """Two true lesions the network sees at probability 0.28, background at 0.05."""
    truth = np.zeros((30, 30, 30), bool)
    truth[5:10, 5:10, 5:10] = truth[18:24, 15:21, 12:18] = True
    probability = np.where(truth, 0.28, 0.05).astype(np.float32)
    brain = np.ones(truth.shape, bool)
    tissue = np.full(truth.shape, Tissue.WHITE_MATTER, np.uint8)
    return LesionMaps(probability, np.zeros_like(probability), tissue, brain, [],
                      {"axial": 1.0, "coronal": 1.0, "sagittal": 1.0}), truth


def test_the_threshold_below_a_faint_lesions_probability_is_chosen() -> None:
    maps, truth = faint_case()
    scores = case_scores(maps, truth, SPACING_ZYX_MM)
    assert scores[0.25] == {"dice": 1.0, "f1": 1.0}
    assert scores[0.5]["dice"] == 0.0                  # the default finds nothing
    threshold, table = best_threshold([scores, scores])
    assert threshold == 0.25                           # of the perfect ones, nearest 0.5
    assert [row["threshold"] for row in table][0] == 0.1


def test_the_command_writes_the_choice_and_refuses_a_measured_bundle(
        tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(pipelines.wm, "load_network", lambda bundle, device: ThresholdNetwork())
    make_case(tmp_path / "validation" / "case")
    assert main(["--progress", "none", "train", "wm", "--data", str(tmp_path / "validation"),
                 "--out", str(tmp_path / "bundle"), "--steps", "1", "--batch-size", "2",
                 "--crop", "32", "--slices", "3", "--features", "4,4,4,4,4,4"]) == 0
    bundle = load_bundle(tmp_path / "bundle")
    command = ["--progress", "none", "train", "wm-threshold", "--bundle", str(bundle.path),
               "--validation", str(tmp_path / "validation"), "--device", "cpu"]
    assert main(command) == 0
    chosen = load_bundle(bundle.path)
    choice = chosen.metadata["threshold_choice"]
    assert choice["cases"] == [str(tmp_path / "validation" / "case")]
    row = next(r for r in choice["table"]
               if r["threshold"] == chosen.metadata["thresholds"]["lesion_probability"])
    assert row["dice"] > 0.5                           # the stand-in network finds the lesions
    assert chosen.weights_sha256 == bundle.weights_sha256
    assert "validation phantom cases" in (bundle.path / "MODEL_CARD.md").read_text("utf-8")
    update_metadata(chosen, metrics={"heldout_phantom": {"mean": {"dice": 0.5}}})
    capsys.readouterr()
    assert main(command) != 0                          # its figures were at the old threshold
    assert "wm-measure" in capsys.readouterr().err
