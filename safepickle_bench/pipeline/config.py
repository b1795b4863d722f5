"""Typed view of the Hydra config: the pipeline reads these dataclasses, never raw dict keys."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


def _pick(cls: type, node: Any) -> dict[str, Any]:
    """Return the keys of `node` that are fields of dataclass `cls` (others belong to other owners)."""
    if node is None:
        return {}
    data = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class DatasetRef:
    """Which dataset (name, size preset, seed) a run trains or tests on."""

    name: str
    size: str = "full"
    seed: int = 0


@dataclass(frozen=True)
class PathsConfig:
    """Project folders, made absolute."""

    root_dir: Path
    data_dir: Path
    models_dir: Path
    results_dir: Path


@dataclass(frozen=True)
class TrackingConfig:
    """Where MLflow runs go."""

    uri: str
    artifact_location: str
    experiment_name: str = "safepickle-bench"
    log_models: bool = True


@dataclass(frozen=True)
class BackendConfig:
    """joblib backend for feature extraction and cross-validation."""

    name: str = "loky"
    n_jobs: int = 2
    address: str | None = None
    local_workers: int = 1
    local_processes: bool = False


@dataclass(frozen=True)
class LatencyConfig:
    """How latency is sampled."""

    n_files: int = 100
    batch_size: int = 256


@dataclass(frozen=True)
class EvaluationConfig:
    """What goes into the per-file predictions."""

    top_features: int = 5
    analyzer_reasons: bool = True


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run needs, typed. `model` and `split` stay config nodes to instantiate."""

    task: str
    name: str
    seed: int
    fast: bool
    dataset: DatasetRef
    test_dataset: DatasetRef | None
    feature_groups: tuple[str, ...]
    paths: PathsConfig
    tracking: TrackingConfig
    backend: BackendConfig
    latency: LatencyConfig
    evaluation: EvaluationConfig
    export_enabled: bool
    limits: dict[str, Any]
    model: DictConfig = field(repr=False)
    split: DictConfig = field(repr=False)
    raw: DictConfig = field(repr=False)


def feature_groups_of(node: Any) -> tuple[str, ...]:
    """Return the feature groups a `features` config node selects (`groups` list, or its `name`)."""
    if node is None:
        return ("all",)
    groups = node.get("groups") if hasattr(node, "get") else None
    if groups is None:
        groups = node.get("name", "all") if hasattr(node, "get") else "all"
    if isinstance(groups, str):
        return tuple(g.strip() for g in groups.split(",") if g.strip())
    return tuple(str(g) for g in groups)


def default_run_name(cfg: DictConfig, model_choice: str | None) -> str:
    """Return `<model>_<dataset>` (plus `_on_<test>`) when the config does not name the run."""
    model = model_choice or str(cfg.model.get("_target_", "model")).rsplit(".", 1)[-1]
    name = f"{model}_{cfg.dataset.name}"
    if cfg.get("test_dataset"):
        name += f"_on_{cfg.test_dataset.name}"
    return name


def run_config(cfg: DictConfig, model_choice: str | None = None) -> RunConfig:
    """Build the typed RunConfig from a composed Hydra config (paths made absolute)."""
    root = Path(str(cfg.paths.root_dir)).expanduser().resolve()

    def _abs(value: Any) -> Path:
        p = Path(str(value)).expanduser()
        return (p if p.is_absolute() else Path.cwd() / p).resolve()

    paths = PathsConfig(
        root_dir=root,
        data_dir=_abs(cfg.paths.data_dir),
        models_dir=_abs(cfg.paths.models_dir),
        results_dir=_abs(cfg.paths.results_dir),
    )
    tr = _pick(TrackingConfig, cfg.get("tracking"))
    tr["uri"] = tr.get("uri") or f"sqlite:///{root / 'mlflow.db'}"
    tr["artifact_location"] = tr.get("artifact_location") or (root / "mlartifacts").as_uri()
    test = cfg.get("test_dataset")
    return RunConfig(
        task=str(cfg.get("task", "train")),
        name=str(cfg.get("name") or default_run_name(cfg, model_choice)),
        seed=int(cfg.get("seed", 0)),
        fast=bool(cfg.get("fast", False)),
        dataset=DatasetRef(**_pick(DatasetRef, cfg.dataset)),
        test_dataset=DatasetRef(**_pick(DatasetRef, test)) if test else None,
        feature_groups=feature_groups_of(cfg.get("features")),
        paths=paths,
        tracking=TrackingConfig(**tr),
        backend=BackendConfig(**_pick(BackendConfig, cfg.get("backend"))),
        latency=LatencyConfig(**_pick(LatencyConfig, cfg.get("latency"))),
        evaluation=EvaluationConfig(**_pick(EvaluationConfig, cfg.get("evaluation"))),
        export_enabled=bool(cfg.get("export", {}).get("enabled", True)),
        limits=dict(OmegaConf.to_container(cfg.get("limits") or OmegaConf.create({}), resolve=True)),
        model=cfg.model,
        split=cfg.split,
        raw=cfg,
    )
