"""Model bundles: metadata, SHA-256 checked at load, manifest order, user folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from MSLesionAILib.bundles import (
    WEIGHTS_NAME,
    find_bundle,
    list_bundles,
    load_bundle,
    update_metadata,
    write_bundle,
)
from MSLesionAILib.errors import BundleError


def _metadata(bundle_id="wm-test", task="wm", required=("flair",)):
    return {"id": bundle_id, "version": "1.0.0", "task": task, "architecture": "test",
            "network": {}, "classes": [], "inputs": [{"name": n, "required": True}
                                                     for n in required]}


def _write(folder, **kwargs):
    return write_bundle(folder, _metadata(**kwargs), {"w": torch.arange(6.0).reshape(2, 3)})


def test_written_bundle_loads_and_verifies(tmp_path):
    bundle = _write(tmp_path / "wm-test")
    assert bundle.id == "wm-test" and bundle.required_inputs == ["flair"]
    assert len(bundle.weights_sha256) == 64
    torch.testing.assert_close(bundle.load_state_dict()["w"], torch.arange(6.0).reshape(2, 3))


def test_contrasts_a_model_does_not_read_are_named_in_one_warning_each(tmp_path):
    bundle = _write(tmp_path / "cortical-test", bundle_id="cortical-test", task="cortical",
                    required=("mp2rage", "t2star_gre"))
    assert bundle.unused_input_warnings(["mp2rage", "t2star-gre", "t2star_gre"]) == []
    assert bundle.unused_input_warnings(["mp2rage", "t2star_epi"]) == [
        "--t2star-epi: not used by model cortical-test (inputs: mp2rage, t2star_gre); ignored"]


def test_tampered_weights_fail_the_checksum(tmp_path):
    bundle = _write(tmp_path / "wm-test")
    weights = bundle.path / WEIGHTS_NAME
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="fails its checksum"):
        bundle.load_state_dict()


def test_missing_weights_are_reported(tmp_path):
    bundle = _write(tmp_path / "wm-test")
    (bundle.path / WEIGHTS_NAME).unlink()
    with pytest.raises(BundleError, match="is missing"):
        bundle.load_state_dict()


def test_incomplete_metadata_is_refused(tmp_path):
    (tmp_path / "metadata.json").write_text(json.dumps({"id": "x"}), encoding="utf-8")
    with pytest.raises(BundleError, match="lacks version"):
        load_bundle(tmp_path)


def test_manifest_order_decides_the_default(tmp_path):
    _write(tmp_path / "a", bundle_id="wm-a")
    _write(tmp_path / "b", bundle_id="wm-b")
    (tmp_path / "models.json").write_text(json.dumps({"bundles": ["b"]}), encoding="utf-8")
    assert [b.id for b in list_bundles([tmp_path])] == ["wm-b", "wm-a"]
    assert find_bundle(None, "wm", {"flair"}, dirs=[tmp_path]).id == "wm-b"
    assert find_bundle("wm-a", "wm", dirs=[tmp_path]).id == "wm-a"


def test_default_skips_bundles_whose_inputs_are_missing(tmp_path):
    _write(tmp_path / "prl", bundle_id="rim-deep", task="rim", required=("phase", "mp2rage"))
    _write(tmp_path / "rimnet", bundle_id="rim-net", task="rim", required=("phase", "flair"))
    assert find_bundle(None, "rim", {"phase", "flair"}, dirs=[tmp_path]).id == "rim-net"
    with pytest.raises(BundleError, match="no installed rim model has all its required inputs"):
        find_bundle(None, "rim", {"phase"}, dirs=[tmp_path])


def test_a_bundle_chosen_for_flair_alone_is_the_default_only_then(tmp_path):
    """Listed after the general bundle, it is still chosen for FLAIR alone; T1 or T2 given
    sends the choice to the general bundle; contrasts another task reads (a rim case's
    phase) do not count."""
    flair_only = {**_metadata("wm-flair"), "chosen_for_inputs": ["flair"],
                  "inputs": [{"name": "flair", "required": True},
                             {"name": "t1", "required": False}]}
    write_bundle(tmp_path / "flair", flair_only, {"w": torch.zeros(1)})
    _write(tmp_path / "all", bundle_id="wm-all")
    (tmp_path / "models.json").write_text(json.dumps({"bundles": ["all", "flair"]}),
                                          encoding="utf-8")
    assert find_bundle(None, "wm", {"flair"}, dirs=[tmp_path]).id == "wm-flair"
    assert find_bundle(None, "wm", {"flair", "phase", "mp2rage"}, dirs=[tmp_path]).id == "wm-flair"
    assert find_bundle(None, "wm", {"flair", "t1"}, dirs=[tmp_path]).id == "wm-all"
    assert find_bundle("wm-flair", "wm", dirs=[tmp_path]).id == "wm-flair"


@pytest.mark.parametrize("chosen_for", [[], ["t1"], ["flair", "t2"], ["FLAIR"], "flair", 3])
def test_inputs_a_bundle_could_never_be_chosen_for_are_refused_at_load(tmp_path, chosen_for):
    metadata = {**_metadata(), "chosen_for_inputs": chosen_for,
                "inputs": [{"name": "flair", "required": True}, {"name": "t1", "required": False}]}
    with pytest.raises(BundleError, match="chosen_for_inputs .* must name some of its inputs"):
        write_bundle(tmp_path / "bad", metadata, {"w": torch.zeros(1)})


def test_unknown_model_and_wrong_task_are_clear_errors(tmp_path):
    bundle = _write(tmp_path / "wm-test")
    with pytest.raises(BundleError, match="no model 'nope' found"):
        find_bundle("nope", "wm", dirs=[tmp_path])
    with pytest.raises(BundleError, match="is a wm model, not a rim model"):
        find_bundle(str(bundle.path), "rim", dirs=[tmp_path])


def test_an_installed_bundle_is_also_found_by_its_folder_name(tmp_path, monkeypatch):
    """Shipped folders carry the version (cortical-claims-v12) where the id does not; the docs
    and users name either, from any working directory."""
    _write(tmp_path / "models" / "wm-test-v2", bundle_id="wm-test")
    monkeypatch.chdir(tmp_path)
    assert find_bundle("wm-test-v2", "wm", dirs=[tmp_path / "models"]).id == "wm-test"
    with pytest.raises(BundleError, match=r"^--init: no model 'wm-test-v3' found \(installed wm "
                                          r"models: wm-test \(wm-test-v2\)\)$"):
        find_bundle("wm-test-v3", "wm", dirs=[tmp_path / "models"], option="--init")


def test_user_model_folders_come_from_the_environment(tmp_path, monkeypatch):
    _write(tmp_path / "mine", bundle_id="wm-mine")
    monkeypatch.setenv("MSLESIONAI_MODEL_DIRS", str(tmp_path))
    assert "wm-mine" in [b.id for b in list_bundles()]


def test_metadata_update_keeps_the_weights_and_their_checksum(tmp_path):
    bundle = _write(tmp_path / "wm-test")
    updated = update_metadata(bundle, metrics={"dice": np.float32(0.5)})
    assert updated.metadata["metrics"] == {"dice": 0.5}
    assert updated.weights_sha256 == bundle.weights_sha256
    torch.testing.assert_close(updated.load_state_dict()["w"], torch.arange(6.0).reshape(2, 3))
