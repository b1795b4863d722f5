"""MLflow plumbing: store setup, flattened params, tags, failed-run records and model flavours."""

from __future__ import annotations

import logging
import math
import subprocess
from pathlib import Path
from typing import Any

import mlflow
from omegaconf import DictConfig, OmegaConf

from safepickle_bench.config import TrackingConfig
from safepickle_bench.models.base import BaseDetector

log = logging.getLogger(__name__)
MAX_PARAM_CHARS = 500


def setup_mlflow(cfg: TrackingConfig) -> str:
    """Point MLflow at the configured store, create the experiment if needed, and return its id."""
    mlflow.set_tracking_uri(cfg.uri)
    exp = mlflow.get_experiment_by_name(cfg.experiment_name)
    if exp is not None:
        exp_id = exp.experiment_id
    else:
        try:
            exp_id = mlflow.create_experiment(cfg.experiment_name, artifact_location=cfg.artifact_location)
        except mlflow.exceptions.MlflowException:  # created meanwhile by a concurrent run
            exp_id = mlflow.get_experiment_by_name(cfg.experiment_name).experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Return a nested mapping as {dotted.key: str(value)} (values cut to MLflow-friendly length)."""
    out: dict[str, str] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = str(data)[:MAX_PARAM_CHARS]
    return out


def config_params(cfg: DictConfig) -> dict[str, str]:
    """Return the resolved config, flattened, for `mlflow.log_params`."""
    container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    return flatten(container)


def git_commit(root: Path) -> str:
    """Return the project's git commit (with `-dirty` when files changed), or `unknown`."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    """Log numeric metrics (NaN kept: it means undefined on this data)."""
    clean = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    mlflow.log_metrics(clean, step=step)


def ui_hint(uri: str) -> str:
    """Return the command that opens the MLflow UI on this store."""
    return f"mlflow ui --backend-store-uri {uri}"


def log_model_flavour(estimator: BaseDetector, name: str = "model") -> str | None:
    """Log the model with its library's MLflow flavour in a non-pickle format; return the flavour or None.

    CatBoost (.cbm), XGBoost (.ubj) and LightGBM (the Booster, text) have one; sklearn-based detectors are
    logged as the skops file inside the `detector/` artifacts instead of an mlflow.sklearn pickle.
    """
    reqs = {"catboost": ["catboost"], "xgboost": ["xgboost"], "lightgbm": ["lightgbm"]}
    try:
        if estimator.library == "catboost":
            mlflow.catboost.log_model(estimator.model_, name=name, pip_requirements=reqs["catboost"])
        elif estimator.library == "xgboost":
            mlflow.xgboost.log_model(estimator.model_, name=name, model_format="ubj",
                                     pip_requirements=reqs["xgboost"])
        elif estimator.library == "lightgbm":
            mlflow.lightgbm.log_model(estimator.booster_, name=name, pip_requirements=reqs["lightgbm"])
        else:
            return None
    except Exception as exc:  # the exported detector artifact still holds the model
        log.warning("could not log the %s flavour: %s", estimator.library, exc)
        return None
    return estimator.library


def finite(metrics: dict[str, float]) -> dict[str, float]:
    """Return metrics whose values are finite numbers."""
    return {k: v for k, v in metrics.items() if isinstance(v, float) and math.isfinite(v)}
