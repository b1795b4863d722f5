"""One model registry: the `model` config group lists the models, each naming a registered detector class."""

from __future__ import annotations

import pytest

from safepickle_bench.models import registry
from safepickle_bench.models.registry import DETECTOR_CLASSES, MODEL_CONF_DIR, model_classes, model_names


def test_every_model_option_names_a_registered_class_and_every_class_has_an_option():
    options = model_classes()
    assert set(options) == {p.stem for p in MODEL_CONF_DIR.glob("*.yaml")}
    assert set(options.values()) == set(DETECTOR_CLASSES.values())


def test_model_names_split_by_kind_in_registry_order():
    supervised, unsupervised = model_names("supervised"), model_names("unsupervised")
    assert model_names() == supervised + unsupervised
    assert supervised[0] == "rf" and {"lof", "iforest", "ocsvm", "autoencoder"} == set(unsupervised)
    assert all(model_classes()[m].supervised for m in supervised)
    assert not any(model_classes()[m].supervised for m in unsupervised)
    with pytest.raises(ValueError, match="kind"):
        model_names("semi")


def test_an_option_naming_an_unregistered_class_fails_with_its_file(tmp_path):
    bad = tmp_path / "evil.yaml"
    bad.write_text("_target_: os.system\n")
    with pytest.raises(ValueError, match="evil.yaml.*not a registered detector class"):
        registry._class_of_option(bad)
