"""The Hydra application: compose the packaged `conf/`, dispatch `task=` to its entry function, record crashes in MLflow."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

import hydra
from omegaconf import DictConfig

from safepickle_bench.paths import CONF_DIR

log = logging.getLogger(__name__)

TASKS: tuple[str, ...] = ("train", "build_data", "scanners", "attack")


def _train_task(cfg: DictConfig, model_choice: str | None) -> Any:
    """Run the training task on the typed config."""
    from safepickle_bench.config import run_config
    from safepickle_bench.pipeline.train import train

    return train(run_config(cfg, model_choice))


def _build_data_task(cfg: DictConfig, model_choice: str | None) -> Any:
    """Build the configured dataset (datasets package)."""
    from safepickle_bench.datasets.build import build_from_config

    return build_from_config(cfg)


def _scanners_task(cfg: DictConfig, model_choice: str | None) -> Any:
    """Benchmark the third-party scanners (scanners package)."""
    from safepickle_bench.pipeline.scanner_benchmark import run_from_config

    return run_from_config(cfg)


def _attack_task(cfg: DictConfig, model_choice: str | None) -> Any:
    """Run the adaptive-attack benchmark (attacks package)."""
    from safepickle_bench.pipeline.attack_benchmark import run_from_config

    return run_from_config(cfg)


TASK_FUNCTIONS: dict[str, Callable[[DictConfig, str | None], Any]] = {
    "train": _train_task,
    "build_data": _build_data_task,
    "scanners": _scanners_task,
    "attack": _attack_task,
}


def record_failure(cfg: DictConfig, name: str, tb: str) -> str | None:
    """Mark the active (or a new) MLflow run FAILED with the traceback as an artifact; return its id."""
    import mlflow

    from safepickle_bench.config import run_config
    from safepickle_bench.pipeline.tracking import setup_mlflow

    try:
        if mlflow.active_run() is None:
            setup_mlflow(run_config(cfg).tracking)
            mlflow.start_run(run_name=name)
        while True:  # close nested fold runs first, then the parent
            run = mlflow.active_run()
            mlflow.set_tag("error", tb.strip().splitlines()[-1][:500])
            parent = run.data.tags.get("mlflow.parentRunId") if run.data else None
            if parent is None:
                mlflow.log_text(tb, "traceback.txt")
                mlflow.end_run(status="FAILED")
                return run.info.run_id
            mlflow.end_run(status="FAILED")
    except Exception:  # recording the failure must not hide it
        log.exception("could not record the failure in MLflow")
        return None


def run_task(cfg: DictConfig, model_choice: str | None = None, multirun: bool = False) -> Any:
    """Run `cfg.task` once; on a crash record a FAILED MLflow run, then re-raise unless inside a sweep."""
    from safepickle_bench.config import validate

    task = str(cfg.get("task", "train"))
    if task not in TASK_FUNCTIONS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    validate(cfg)  # a typo in any node stops every task here, naming the key
    try:
        return TASK_FUNCTIONS[task](cfg, model_choice)
    except Exception:
        tb = traceback.format_exc()
        name = str(cfg.get("name") or f"{model_choice or task}_{cfg.get('dataset', {}).get('name', '')}")
        run_id = record_failure(cfg, name, tb)
        log.error("run %s failed (MLflow run %s marked FAILED):\n%s", name, run_id, tb)
        if not multirun:
            raise
        return None


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def hydra_main(cfg: DictConfig) -> Any:
    """Entry point of `python -m safepickle_bench [overrides]` (and `-m` sweeps)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    return run_task(cfg, hc.runtime.choices.get("model"), multirun=hc.mode == RunMode.MULTIRUN)
