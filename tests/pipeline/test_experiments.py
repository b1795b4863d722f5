"""Every conf/experiment/*.yaml composes and runs on the small datasets, logging the promised metrics and
artifacts to MLflow and exporting a non-pickle model; sweeps survive a crashing run; Dask runs the same code."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from safepickle_bench import paths
from safepickle_bench.config import run_config
from safepickle_bench.metrics import LATENCY_KEYS, METRIC_KEYS
from safepickle_bench.paths import CONF_DIR
from safepickle_bench.pipeline.app import run_task

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = paths.data_dir(REPO)
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
TRAIN_EXPERIMENTS = [  # experiments of the `train` task (scanners_*, attack_* belong to other tasks)
    e for e in EXPERIMENTS
    if (yaml.safe_load((CONF_DIR / "experiment" / f"{e}.yaml").read_text()) or {}).get("task", "train") == "train"
]
BOOSTED = {"catboost_hf": "catboost", "xgboost_hf": "xgboost", "lightgbm_hf": "lightgbm"}
pytestmark = pytest.mark.slow


def fast_overrides(tmp: Path, uri: str) -> list[str]:
    """Small, quick settings: small datasets (shared in data/), few trees, 3 folds, no worker processes."""
    return [
        "dataset.size=small", "fast=true", "split.n_splits=3", "latency.n_files=5", "backend.n_jobs=1",
        f"paths.root_dir={tmp}", f"paths.data_dir={DATA_DIR}", f"tracking.uri={uri}",
        f"tracking.artifact_location={(tmp / 'mlartifacts').as_uri()}",
    ]


def compose_experiment(name: str, overrides: list[str]):
    """Compose the real config with `experiment=name` plus overrides."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[f"experiment={name}", *overrides])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A throwaway MLflow store and project root for this module's runs."""
    tmp = tmp_path_factory.mktemp("pipeline")
    return tmp, f"sqlite:///{tmp / 'mlflow.db'}"


def artifact_paths(client: MlflowClient, run_id: str, path: str = "") -> set[str]:
    """Return every artifact path of a run, recursively."""
    out: set[str] = set()
    for f in client.list_artifacts(run_id, path):
        out.add(f.path)
        if f.is_dir:
            out |= artifact_paths(client, run_id, f.path)
    return out


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_config_composes_with_only_overrides(name):
    text = (CONF_DIR / "experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_")
    cfg = compose_experiment(name, ["dataset.size=small"])
    if name in TRAIN_EXPERIMENTS:
        rc = run_config(cfg)
        assert rc.task == "train" and rc.name == name
        assert rc.model.get("_target_", "").startswith("safepickle_bench.models.")
        if name == "default_detector":  # the shipped detector: cross-validated on the generalisation set
            assert rc.test_dataset is None and rc.dataset.name == "generalization"
        elif name.endswith("_hf"):
            assert rc.test_dataset is None and rc.dataset.name == "hf"
        else:
            assert rc.dataset.name == "hf" and rc.test_dataset is not None


@pytest.mark.parametrize("name", TRAIN_EXPERIMENTS)
def test_experiment_runs_on_small_data_and_logs_metrics_artifacts_and_model(name, store):
    tmp, uri = store
    cfg = compose_experiment(name, fast_overrides(tmp, uri))
    metrics = run_task(cfg)
    client = MlflowClient(uri)
    runs = mlflow.search_runs(experiment_names=["safepickle-bench"], filter_string=f"tags.mlflow.runName = '{name}'",
                              output_format="list")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    cv = cfg.test_dataset is None
    expected = set(METRIC_KEYS) | set(LATENCY_KEYS) | ({f"{k}_std" for k in METRIC_KEYS} if cv else set())
    assert expected <= set(run.data.metrics)
    assert set(metrics) >= expected
    assert 0.0 <= run.data.metrics["f1"] <= 1.0
    assert run.data.metrics["features_ms_median"] > 0 and run.data.metrics["inference_ms_median"] > 0
    tags = run.data.tags
    for key in ("git_commit", "dataset", "dataset.manifest_sha256", "feature_version"):
        assert tags.get(key)
    assert run.data.params["model._target_"] == cfg.model._target_
    arts = artifact_paths(client, run.info.run_id)
    assert {"predictions.csv", "figures/confusion_matrix.png", "figures/roc_pr.png", "detector/detector.json"} <= arts
    if cv:
        children = mlflow.search_runs(experiment_names=["safepickle-bench"], output_format="list",
                                      filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'")
        assert len(children) == int(run.data.metrics["n_folds"]) >= 2
        assert all("f1" in c.data.metrics for c in children)
    if name in BOOSTED:
        assert tags["model_flavour"] == BOOSTED[name]
    export = tmp / "models" / name
    meta = json.loads((export / "detector.json").read_text())
    assert meta["feature_columns"] and meta["training"]["dataset"] == cfg.dataset.name
    assert not any(p.suffix in (".pkl", ".pickle", ".joblib") for p in export.iterdir())
    preds = client.download_artifacts(run.info.run_id, "predictions.csv", str(tmp / f"dl_{name}"))
    import pandas as pd

    frame = pd.read_csv(preds)
    assert {"path", "label", "score", "verdict", "reasons"} <= set(frame.columns)
    assert len(frame) == int(run.data.metrics["n_eval_files"])
    malicious_reasons = [json.loads(r) for r in frame.loc[frame.label == 1, "reasons"]]
    assert any(r["kind"] in ("import", "call") for rs in malicious_reasons for r in rs)


def test_dask_backend_runs_an_experiment_on_a_local_cluster(store):
    tmp, uri = store
    overrides = [o for o in fast_overrides(tmp, uri) if not o.startswith("backend.")]
    cfg = compose_experiment("lightgbm_hf", [*overrides, "backend=dask", "backend.local_workers=1",
                                             "backend.local_processes=false", "name=lightgbm_hf_dask"])
    assert run_config(cfg).backend.name == "dask"
    metrics = run_task(cfg)
    assert math.isfinite(metrics["f1"])
    run = mlflow.search_runs(experiment_names=["safepickle-bench"], output_format="list",
                             filter_string="tags.mlflow.runName = 'lightgbm_hf_dask'")[0]
    assert run.data.tags["backend"] == "dask" and run.info.status == "FINISHED"


def test_sweep_records_a_crashing_run_as_failed_and_goes_on(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = [sys.executable, "-m", "safepickle_bench", "-m", "experiment=rf_hf", "model.max_depth=-1,3",
            *fast_overrides(tmp_path, uri), "export.enabled=false", "evaluation.analyzer_reasons=false",
            "hydra/job_logging=disabled"]
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["safepickle-bench"], output_format="list",
                              filter_string="tags.mlflow.runName = 'rf_hf'")
    by_status = {r.info.status: r for r in runs}
    assert set(by_status) == {"FAILED", "FINISHED"}
    failed = by_status["FAILED"]
    tb = MlflowClient(uri).download_artifacts(failed.info.run_id, "traceback.txt", str(tmp_path))
    assert "max_depth" in Path(tb).read_text()
    assert "f1" in by_status["FINISHED"].data.metrics
    assert (tmp_path / "multirun").is_dir()
