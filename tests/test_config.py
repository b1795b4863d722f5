"""Typed configs are strict: an unknown key anywhere (YAML or command line) stops the run with its name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from safepickle_bench.config import ConfigError, build_model, fast_presets, run_config, validate
from safepickle_bench.models.registry import DETECTOR_CLASSES
from safepickle_bench.paths import CONF_DIR
from safepickle_bench.pipeline.app import run_task

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def composed(*overrides: str, conf_dir: Path = CONF_DIR):
    """Compose the packaged config (or `conf_dir`) with overrides."""
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_passes_the_strict_schema(name):
    validate(composed(f"experiment={name}"))


def test_typo_under_dataset_in_an_experiment_yaml_fails_naming_the_key(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    text = (conf / "experiment" / "rf_hf.yaml").read_text() + "dataset:\n  sise: small\n"
    (conf / "experiment" / "rf_hf_typo.yaml").write_text(text)
    cfg = composed("experiment=rf_hf_typo", conf_dir=conf)
    with pytest.raises(ConfigError, match=r"'sise' in node 'dataset'"):
        run_task(cfg)
    with pytest.raises(ConfigError, match="sise"):
        run_config(cfg)


def test_added_dataset_key_on_the_command_line_fails_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"'sise' in node 'dataset'"):
        run_task(composed("experiment=rf_hf", "+dataset.sise=small"))
    proc = subprocess.run(
        [sys.executable, "-m", "safepickle_bench", "experiment=rf_hf", "+dataset.sise=small"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "HYDRA_FULL_ERROR": "0"},
    )
    assert proc.returncode != 0
    assert "sise" in proc.stderr
    assert not (tmp_path / "data").exists()  # stopped before building anything


@pytest.mark.parametrize(
    ("overrides", "where", "key"),
    [
        (["+model.n_estimatorz=5"], "model", "n_estimatorz"),
        (["model=knn", "+model.fast.n_estimators=5"], "model.fast", "n_estimators"),
        (["+split.n_splitz=3"], "split", "n_splitz"),
        (["+features.grups=[opcodes]"], "features", "grups"),
        (["+tracking.urii=x"], "tracking", "urii"),
        (["+backend.n_job=1"], "backend", "n_job"),
        (["+paths.root=x"], "paths", "root"),
        (["+latency.files=3"], "latency", "files"),
        (["+evaluation.top=3"], "evaluation", "top"),
        (["+export.enable=false"], "export", "enable"),
        (["+limits.max_opcode=10"], "limits", "max_opcode"),
        (["+sed=3"], "<root>", "sed"),
        (["experiment=rf_joblib", "+test_dataset.sise=small"], "test_dataset", "sise"),
        (["experiment=scanners_hf", "+scanner_benchmark.max_file=3"], "scanner_benchmark", "max_file"),
        (["experiment=scanners_hf", "+scanners.picklescan.strictt=true"], "scanners.picklescan", "strictt"),
        (["experiment=attack_padding", "+attack.max_sample=3"], "attack", "max_sample"),
        (["experiment=attack_padding", "+attack.models.rf.depth=3"], "attack.models.rf", "depth"),
    ],
)
def test_unknown_key_in_any_node_is_named_with_its_node(overrides, where, key):
    with pytest.raises(ConfigError) as err:
        validate(composed(*overrides))
    assert f"'{key}' in node '{where}'" in str(err.value)


def test_value_of_the_wrong_type_is_named_with_its_node():
    with pytest.raises(ConfigError, match=r"node 'latency', key 'n_files'"):
        validate(composed("latency.n_files=many"))


def test_fast_presets_come_from_the_model_yaml_and_cover_every_detector():
    assert set(fast_presets()) == set(DETECTOR_CLASSES)
    node = composed("model=rf").model
    preset = yaml.safe_load((CONF_DIR / "model" / "rf.yaml").read_text())["fast"]
    assert preset  # the RandomForest preset shrinks the forest
    fast, full = build_model(node, fast=True), build_model(node, fast=False)
    for key, value in preset.items():
        assert getattr(fast, key) == value
        assert getattr(full, key) == node[key] != value


def test_run_config_applies_no_code_defaults_the_yaml_does_not_hold():
    rc = run_config(composed("experiment=rf_hf"))
    cfg = composed("experiment=rf_hf")
    assert rc.latency.n_files == cfg.latency.n_files and rc.evaluation.top_features == cfg.evaluation.top_features
    assert rc.backend.n_jobs == cfg.backend.n_jobs and rc.dataset.size == cfg.dataset.size
