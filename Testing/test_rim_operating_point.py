"""`mslesionai train rim-operating-point`: a rim bundle's weights as a new bundle, its operating
point (and Deep-PRL's mask channel) chosen on validation cases; the source left as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_rim_pipeline import make_case

from MSLesionAILib.benchmark.cohort import used_seeds
from MSLesionAILib.benchmark.rim import check_held_out
from MSLesionAILib.bundles import load_bundle
from MSLesionAILib.cli import main
from MSLesionAILib.errors import InputError


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rim_operating_point")
    cases = {name: make_case(root / name, seed)
             for name, seed in (("train", 1), ("validation", 2), ("site", 3))}
    for architecture in ("deep_prl", "rimnet"):
        assert main(["--progress", "none", "train", "rim", "--arch", architecture,
                     "--data", str(cases["train"]), "--validation", str(cases["validation"]),
                     "--out", str(root / architecture), "--steps", "2", "--batch-size", "4",
                     "--copies", "0", "1"]) == 0
        cases[architecture] = root / architecture
    return cases


def _derive(source: Path, validation: Path, out: Path, *extra: str) -> int:
    return main(["--progress", "none", "train", "rim-operating-point", "--bundle", str(source),
                 "--validation", str(validation), "--out", str(out), "--version", "1.1.0",
                 "--device", "cpu", *extra])


def test_new_bundle_has_the_weights_and_its_own_operating_point(cases: dict[str, Path],
                                                                 tmp_path: Path) -> None:
    source_metadata = (cases["deep_prl"] / "metadata.json").read_text(encoding="utf-8")
    out = tmp_path / "derived"
    assert _derive(cases["deep_prl"], cases["site"], out, "--mask-lesions", "candidate",
                   "--specificity", "0.9") == 0
    source, derived = load_bundle(cases["deep_prl"]), load_bundle(out)
    assert derived.weights_sha256 == source.weights_sha256
    assert derived.id == "derived" and derived.metadata["version"] == "1.1.0"
    assert derived.metadata["patches"]["mask_lesions"] == "candidate"
    assert derived.metadata["operating_point"]["target_specificity"] == 0.9
    assert derived.metadata["validation"]["lesions"] == 3
    record = derived.metadata["derivation"]
    assert record["from"] == {"id": source.id, "version": "1.0.0",
                              "sha256": source.weights_sha256,
                              "patches": source.metadata["patches"]}
    assert record["data"]["validation"]["seeds"] == [3]
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "mask of the candidate lesion alone" in card and "90 % specificity on 1" in card
    assert "trained with every lesion in its mask channel" in card
    assert (cases["deep_prl"] / "metadata.json").read_text(encoding="utf-8") == source_metadata
    with pytest.raises(InputError, match="validate derived"):   # its cases chose its threshold
        check_held_out([derived], [cases["site"]])
    assert used_seeds([derived]) == {1: "derived", 2: "derived", 3: "derived"}


def test_training_cases_cannot_choose_the_operating_point(cases: dict[str, Path],
                                                          tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    assert _derive(cases["deep_prl"], cases["train"], tmp_path / "derived") == 2
    assert "trained on phantom seeds 1" in capsys.readouterr().err
    assert not (tmp_path / "derived").exists()


def test_a_bundle_without_a_mask_channel_refuses_mask_lesions(
        cases: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert _derive(cases["rimnet"], cases["site"], tmp_path / "derived",
                   "--mask-lesions", "candidate") == 2
    assert "has no lesion-mask channel" in capsys.readouterr().err


def test_rimnet_training_refuses_mask_lesions(cases: dict[str, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    assert main(["--progress", "none", "train", "rim", "--arch", "rimnet", "--data",
                 str(cases["train"]), "--validation", str(cases["validation"]), "--out",
                 str(tmp_path / "rimnet"), "--steps", "1", "--mask-lesions", "candidate"]) == 2
    assert "rimnet has no lesion-mask channel" in capsys.readouterr().err
