"""Run the pipeline's Hydra experiments from the results scripts and get back metrics and per-file scores.

Every table script in `experiments/tables/` builds a `ReportContext` (where results go, which size, the
MLflow store, where exported models go) and calls `train_experiment` for each run it needs: the run is the
same `train` task as `python -m safepickle_bench experiment=...`, logged to MLflow like any other; this
module only composes the overrides and reads the run's `predictions.csv` artifact back.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from safepickle_bench import paths
from safepickle_bench.models.registry import model_names
from safepickle_bench.pipeline.app import run_task

log = logging.getLogger(__name__)

SUPERVISED: tuple[str, ...] = model_names("supervised")
UNSUPERVISED: tuple[str, ...] = model_names("unsupervised")
MODELS: tuple[str, ...] = SUPERVISED + UNSUPERVISED
"""Every model of the `model` config group, in the registry's order (supervised first)."""
PAPER_FEATURES = "opcodes"
"""The paper's representation: the normalised opcode-frequency vector."""
OUR_FEATURES = "all"
"""Every feature group of this project."""


@dataclass(frozen=True)
class ReportContext:
    """Where a results script writes, at which dataset size, and where its runs are tracked."""

    out_dir: Path
    size: str = "full"
    fast: bool = False
    tracking_uri: str | None = None
    models_dir: Path | None = None
    data_dir: Path = field(default_factory=paths.data_dir)

    @property
    def small(self) -> bool:
        """Return True for the `small` smoke-size datasets."""
        return self.size == "small"

    @property
    def figures_dir(self) -> Path:
        """Return (and create) the folder of the PNG figures."""
        path = self.out_dir / "figures"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def overrides(self) -> list[str]:
        """Return the Hydra overrides every run of this context shares."""
        out = [f"paths.root_dir={paths.root_dir()}", f"paths.data_dir={self.data_dir}", f"paths.results_dir={self.out_dir}",
               f"dataset.size={self.size}"]
        if self.models_dir is not None:
            out.append(f"paths.models_dir={self.models_dir}")
        if self.tracking_uri:
            out.append(f"tracking.uri={self.tracking_uri}")
        if self.fast:
            out.append("fast=true")
        return out

    def command_suffix(self) -> str:
        """Return the flags that reproduce this context on a command line (for the tables' captions)."""
        return " --small" if self.small else ""


def add_context_args(parser: argparse.ArgumentParser) -> None:
    """Add the options every results script shares (--small, --size, --fast, --out, --tracking-uri...)."""
    parser.add_argument("--small", action="store_true", help="small datasets and fast model presets")
    parser.add_argument("--size", default=None, help="dataset size (default: full, or small with --small)")
    parser.add_argument("--fast", action="store_true", help="each model's fast preset (implied by --small)")
    parser.add_argument("--out", default=str(paths.results_dir()), help="results folder (tables, figures)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: the project's mlflow.db)")
    parser.add_argument("--models-dir", default=None, help="where supervised runs export their models")


def context_from_args(args: argparse.Namespace) -> ReportContext:
    """Build the ReportContext of parsed command-line options."""
    size = args.size or ("small" if args.small else "full")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return ReportContext(
        out_dir=out,
        size=size,
        fast=bool(args.fast or args.small),
        tracking_uri=args.tracking_uri,
        models_dir=Path(args.models_dir).resolve() if args.models_dir else None,
    )


def setup_logging() -> None:
    """Log INFO from this project to stderr, quieten chatty libraries."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    for noisy in ("matplotlib", "hydra", "numba", "urllib3", "alembic", "mlflow", "distributed", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def compose_config(overrides: Sequence[str]) -> DictConfig:
    """Compose `conf/config.yaml` with the given overrides (no Hydra run directory, no logging setup)."""
    with initialize_config_dir(config_dir=str(paths.CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@dataclass
class TrainOutcome:
    """What one train run gave: its name, metrics, per-file predictions and MLflow run id (or the error)."""

    name: str
    model: str
    features: str
    metrics: dict[str, float] = field(default_factory=dict)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    run_id: str | None = None
    error: str | None = None
    wall_seconds: float = math.nan

    @property
    def ok(self) -> bool:
        """Return True when the run finished with metrics."""
        return self.error is None and bool(self.metrics)


def features_overrides(features: str) -> list[str]:
    """Return the overrides selecting a feature set: a `conf/features` option, or groups joined by "+"."""
    if "+" not in features:
        return [f"features={features}"]
    groups = [g for g in features.split("+") if g]
    return ["features=opcodes", f"features.name={features}", f"features.groups=[{','.join(groups)}]"]


def _predictions_of(run_id: str) -> pd.DataFrame:
    """Download and read the `predictions.csv` artifact of an MLflow run."""
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="predictions.csv", dst_path=tmp)
        return pd.read_csv(local, keep_default_na=False, na_values=[""])


def train_experiment(
    ctx: ReportContext,
    experiment: str,
    model: str,
    features: str = OUR_FEATURES,
    name: str | None = None,
    extra: Sequence[str] = (),
    export: bool = False,
) -> TrainOutcome:
    """Run `experiment=<experiment>` with `model`, `features` and extra overrides; never raises.

    Exports the model only with `export=True` (the main-comparison runs); per-file reasons are turned off
    (tables only need scores), so runs stay quick.
    """
    run_name = name or f"{experiment}__{model}__{features}"
    overrides = [
        f"experiment={experiment}", f"model={model}", *features_overrides(features), f"name={run_name}",
        *ctx.overrides(), "evaluation.analyzer_reasons=false", "evaluation.top_features=0",
        f"export.enabled={'true' if export else 'false'}", *extra,
    ]
    outcome = TrainOutcome(name=run_name, model=model, features=features)
    t0 = time.perf_counter()
    print(f"  run {run_name}: {' '.join(o for o in overrides if not o.startswith('paths.'))}", file=sys.stderr, flush=True)
    try:
        cfg = compose_config(overrides)
        metrics = run_task(cfg, model, multirun=True)
        if not metrics:
            raise RuntimeError("the run failed (see its FAILED MLflow run)")
        run = mlflow.last_active_run()
        outcome.metrics = dict(metrics)
        outcome.run_id = run.info.run_id if run is not None else None
        if outcome.run_id:
            outcome.predictions = _predictions_of(outcome.run_id)
    except Exception as exc:  # one failed run is reported in its table, the others go on
        log.exception("run %s failed", run_name)
        outcome.error = f"{type(exc).__name__}: {exc}"
    outcome.wall_seconds = time.perf_counter() - t0
    return outcome


def log_table_run(ctx: ReportContext, name: str, files: Sequence[Path], params: dict[str, Any] | None = None,
                  metrics: dict[str, float] | None = None) -> str | None:
    """Log one MLflow run for a written table: its files as artifacts, headline metrics, the context."""
    from safepickle_bench.config import run_config
    from safepickle_bench.pipeline.tracking import setup_mlflow

    try:
        tracking = run_config(compose_config(ctx.overrides())).tracking
        setup_mlflow(tracking)
        with mlflow.start_run(run_name=f"results/{name}") as run:
            mlflow.set_tags({"task": "results", "table": name, "dataset.size": ctx.size})
            mlflow.log_params({"size": ctx.size, "fast": ctx.fast, **(params or {})})
            finite = {re.sub(r"[^\w.\- /]", "_", k): float(v) for k, v in (metrics or {}).items()
                      if isinstance(v, int | float) and math.isfinite(float(v))}
            if finite:
                mlflow.log_metrics(finite)
            for f in files:
                if Path(f).is_file():
                    mlflow.log_artifact(str(f))
            return run.info.run_id
    except Exception:  # tracking must not lose a table already written
        log.exception("could not log table %s to MLflow", name)
        return None


def fit_on_dataset(ctx: ReportContext, experiment: str, model: str, features: str = OUR_FEATURES,
                   extra: Sequence[str] = ()) -> tuple[Any, list[str]]:
    """Fit the experiment's model on every row of its training dataset; return (estimator, feature columns).

    Used for figures that need a fitted model (feature importance) without exporting one more model.
    """
    import numpy as np

    from safepickle_bench.analysis.limits import Limits
    from safepickle_bench.config import run_config
    from safepickle_bench.pipeline.data import load_labelled_features
    from safepickle_bench.pipeline.train import build_estimator

    cfg = run_config(compose_config([f"experiment={experiment}", f"model={model}",
                                     *features_overrides(features), *ctx.overrides(), *extra]), model)
    data = load_labelled_features(cfg.dataset, cfg.paths.data_dir, cfg.raw.get("features"), cfg.backend,
                                  Limits.from_mapping(cfg.limits))
    estimator = build_estimator(cfg).fit(data.X.to_numpy(dtype=np.float64), data.y)
    return estimator, data.columns
