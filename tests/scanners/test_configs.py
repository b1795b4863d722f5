"""Every conf/scanner/*.yaml instantiates its registered scanner, and the scanners_* experiments compose."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from safepickle_bench.config import ConfigError, validate
from safepickle_bench.paths import CONF_DIR
from safepickle_bench.scanners.base import load_all

CONF = CONF_DIR


@pytest.mark.parametrize("yaml_path", sorted((CONF / "scanner").glob("*.yaml")), ids=lambda p: p.stem)
def test_scanner_config_instantiates_registered_class(yaml_path):
    registry = load_all()
    node = OmegaConf.merge({"paths": {"models_dir": "models"}}, {"scanner": OmegaConf.load(yaml_path)})
    scanner = instantiate(node.scanner)
    assert registry[yaml_path.stem] is type(scanner)
    ok, why = scanner.available()
    assert isinstance(ok, bool) and (ok or why)  # an unavailable scanner always says why


@pytest.mark.parametrize("dataset", ["hf", "pickleball_ood", "hide_and_seek", "joblib", "wild"])
def test_scanner_experiment_composes(dataset):
    if not (CONF / "dataset" / f"{dataset}.yaml").exists():
        pytest.skip(f"conf/dataset/{dataset}.yaml not written yet")
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment=scanners_{dataset}"])
    assert cfg.task == "scanners" and cfg.dataset.name == dataset
    assert set(cfg.scanners) == {p.stem for p in (CONF / "scanner").glob("*.yaml")}


def test_scanner_experiment_rejects_an_unknown_scanner_parameter():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=scanners_hf"])
        validate(cfg)  # every packaged scanner node matches its class's parameters
        typo = compose(config_name="config", overrides=["experiment=scanners_hf", "+scanners.fickling.malicious_a=3"])
    with pytest.raises(ConfigError, match=r"'malicious_a' in node 'scanners.fickling'"):
        validate(typo)
