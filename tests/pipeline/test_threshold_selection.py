"""The exported decision threshold: the widest-margin one whose validation FPR meets the target, recorded in
detector.json and MLflow, used by the loader (older exports fall back to 0.5 with a warning)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mlflow
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from safepickle_bench import paths
from safepickle_bench.models.detector import FALLBACK_THRESHOLD, decision_threshold
from safepickle_bench.models.threshold import choose_threshold
from safepickle_bench.paths import CONF_DIR
from safepickle_bench.pipeline.app import run_task

DATA_DIR = paths.data_dir(Path(__file__).resolve().parents[2])


def _fpr(scores: np.ndarray, y: np.ndarray, t: float) -> float:
    return float(np.mean(scores[y == 0] >= t))


@pytest.mark.parametrize("target", [0.0, 0.01, 0.05, 0.2])
def test_threshold_meets_the_target_fpr_with_the_best_recall_any_admissible_threshold_has(target):
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(400, int), np.ones(100, int)]
    scores = np.r_[rng.beta(1, 6, 400), rng.beta(6, 1, 100)]
    choice = choose_threshold(scores, y, target)
    assert _fpr(scores, y, choice.threshold) <= target
    assert choice.validation_fpr == _fpr(scores, y, choice.threshold)
    assert choice.validation_recall == float(np.mean(scores[y == 1] >= choice.threshold))
    admissible = [t for t in np.unique(scores) if _fpr(scores, y, t) <= target]
    assert choice.validation_recall == max(float(np.mean(scores[y == 1] >= t)) for t in admissible)
    assert (choice.n_benign, choice.n_malicious, choice.target_fpr) == (400, 100, target)


def test_threshold_sits_midway_between_the_benign_scores_it_clears_and_the_malicious_it_keeps():
    y = np.array([0] * 100 + [1] * 4)
    scores = np.r_[np.linspace(0.0, 0.05, 100), [0.5, 0.7, 0.9, 0.95]]
    choice = choose_threshold(scores, y, 0.0)  # lo just above 0.05, the lowest malicious score 0.5
    assert choice.threshold == pytest.approx((0.05 + 0.5) / 2)
    assert choice.validation_fpr == 0.0 and choice.validation_recall == 1.0


def test_tied_benign_scores_push_the_threshold_above_the_tie():
    y = np.array([0] * 10 + [1] * 2)
    scores = np.array([0.3] * 10 + [0.3, 0.9])
    choice = choose_threshold(scores, y, 0.05)
    assert choice.threshold > 0.3 and choice.validation_fpr == 0.0 and choice.validation_recall == 0.5


def test_threshold_needs_benign_rows_and_a_valid_target():
    with pytest.raises(ValueError, match="benign"):
        choose_threshold(np.array([0.9, 0.8]), np.array([1, 1]))
    with pytest.raises(ValueError, match="target_fpr"):
        choose_threshold(np.array([0.1, 0.9]), np.array([0, 1]), 1.0)
    with pytest.raises(ValueError, match="finite"):
        choose_threshold(np.array([np.nan, 0.9]), np.array([0, 1]))


def test_detector_json_without_a_chosen_threshold_falls_back_with_a_warning():
    value, warning = decision_threshold({"feature_columns": []})
    assert value == FALLBACK_THRESHOLD and "no threshold chosen" in warning
    value, warning = decision_threshold({"threshold": 0.37, "threshold_selection": {"target_fpr": 0.01}})
    assert value == 0.37 and warning is None


@pytest.mark.slow
def test_training_exports_and_logs_the_threshold_chosen_for_the_configured_fpr(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = [
        "experiment=xgboost_hf", "dataset.size=small", "fast=true", "split.n_splits=3", "latency.n_files=5",
        "backend.n_jobs=1", "threshold.target_fpr=0.05", f"paths.root_dir={tmp_path}",
        f"paths.data_dir={DATA_DIR}", f"tracking.uri={uri}",
        f"tracking.artifact_location={(tmp_path / 'mlartifacts').as_uri()}",
    ]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    metrics = run_task(cfg)
    meta = json.loads((tmp_path / "models" / "xgboost_hf" / "detector.json").read_text())
    selection = meta["threshold_selection"]
    assert selection["target_fpr"] == 0.05 and selection["validation_fpr"] <= 0.05
    assert selection["n_benign"] > 0 and not math.isnan(selection["validation_recall"])
    assert meta["threshold"] == selection["threshold"] == metrics["threshold"]
    assert 0.0 < meta["threshold"] < 1.0
    run = mlflow.search_runs(experiment_names=["safepickle-bench"], output_format="list",
                             filter_string="tags.mlflow.runName = 'xgboost_hf'")[0]
    assert run.data.params["threshold.target_fpr"] == "0.05"
    assert run.data.metrics["threshold"] == pytest.approx(meta["threshold"])
    from safepickle_bench.models.detector import load_detector

    loaded = load_detector(tmp_path / "models" / "xgboost_hf")
    assert loaded.threshold == meta["threshold"] and not any("threshold" in w for w in loaded.warnings)
