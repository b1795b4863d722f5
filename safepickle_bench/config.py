"""Typed, strict view of the composed Hydra config: every node is checked against its schema before a task runs.

A key a schema does not know (a typo such as `sise: small` under `dataset:`, or `+dataset.sise=small` on the
command line) is an error naming the key and its node, never silently dropped. Nodes that name a class with
`_target_` (models, splits, scanners) are checked against that class's `__init__` parameters. Defaults live
in the YAML files only: the schemas below list keys and types, not values.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from safepickle_bench import paths as project_paths

# Optional[...] below: OmegaConf's structured configs understand Optional, not `X | None`.
# ruff: noqa: UP045


class ConfigError(ValueError):
    """A config node holds a key its schema does not know, or a value of the wrong type."""


# ------------------------------------------------------------------------------------------------ schemas


@dataclass
class DatasetNode:
    """`dataset` / `test_dataset`: a generated set (name, size, seed, n_jobs) or a corpus read in place."""

    name: str
    size: str
    seed: int
    n_jobs: Optional[int]
    root: Optional[str]
    manifest: Optional[str]
    offline: bool
    cache_dir: Optional[str]
    endpoint: Optional[str]
    etag_timeout: float


@dataclass
class FeaturesNode:
    """`features`: the feature groups and how extraction runs."""

    name: str
    groups: list[str]
    n_jobs: int
    cache: bool
    cache_dir: Optional[str]
    backend: Optional[str]


@dataclass
class PathsNode:
    """`paths`: the output root and the folders under it."""

    root_dir: str
    data_dir: str
    models_dir: str
    results_dir: str


@dataclass
class TrackingNode:
    """`tracking`: the MLflow store (null = the default store under the output root)."""

    uri: Optional[str]
    artifact_location: Optional[str]
    experiment_name: str
    log_models: bool


@dataclass
class BackendNode:
    """`backend`: joblib's backend for extraction and cross-validation."""

    name: str
    n_jobs: int
    address: Optional[str]
    local_workers: int
    local_processes: bool


@dataclass
class LatencyNode:
    """`latency`: how per-file timings are sampled."""

    n_files: int
    batch_size: int


@dataclass
class EvaluationNode:
    """`evaluation`: what goes into the per-file predictions."""

    top_features: int
    analyzer_reasons: bool


@dataclass
class ThresholdNode:
    """`threshold`: how the exported detector's decision threshold is chosen."""

    target_fpr: float


@dataclass
class ExportNode:
    """`export`: whether the trained detector is written to models/<name>/."""

    enabled: bool


@dataclass
class ScannerBenchmarkNode:
    """`scanner_benchmark`: the scanner task's options."""

    train_dataset: Optional[str]
    max_files: Optional[int]
    only: Optional[list[str]]


@dataclass
class AttackNode:
    """`attack`: the adaptive-attack benchmark (`models` entries are model nodes, checked as such)."""

    attacks: list[str]
    ratios: dict[str, Any]
    feature_sets: dict[str, list[str]]
    hardening: list[str]
    scanner_max_files: int
    scanner_caps: dict[str, int]
    n_splits: int
    max_samples: Optional[int]
    n_jobs: int
    write_results: bool
    models: dict[str, Any]


PLAIN_NODES: dict[str, type] = {
    "dataset": DatasetNode,
    "test_dataset": DatasetNode,
    "features": FeaturesNode,
    "paths": PathsNode,
    "tracking": TrackingNode,
    "backend": BackendNode,
    "latency": LatencyNode,
    "evaluation": EvaluationNode,
    "export": ExportNode,
    "threshold": ThresholdNode,
    "scanner_benchmark": ScannerBenchmarkNode,
    "attack": AttackNode,
}
"""Top-level node -> the schema of its keys."""
SCALARS: dict[str, type] = {"task": str, "name": str, "seed": int, "fast": bool}
"""Top-level scalar keys and their types (`name` may be null)."""
TARGET_NODES: tuple[str, ...] = ("model", "split")
"""Top-level nodes that name a class with `_target_`."""
SPECIAL_NODES: tuple[str, ...] = ("limits", "scanners", "hydra")
"""Top-level nodes with their own check (limits: the analyzer's Limits; scanners: a map of scanner nodes)."""
FAST_KEY = "fast"
"""Key of a model node holding its fast preset (parameters applied when `fast=true`)."""
HYDRA_KEYS = frozenset({"_target_", "_recursive_", "_convert_", "_partial_", "_args_"})


def _unknown(where: str, keys: list[str], known: list[str]) -> ConfigError:
    """Return the error for unknown `keys` in node `where`."""
    names = ", ".join(repr(k) for k in keys)
    noun = "key" if len(keys) == 1 else "keys"
    return ConfigError(f"unknown config {noun} {names} in node '{where}' (known: {', '.join(sorted(known))})")


def _check_plain(where: str, node: Any, schema: type) -> None:
    """Check a mapping node against a schema dataclass: unknown keys, then value types."""
    if node is None:
        return
    if not isinstance(node, Mapping | DictConfig):
        raise ConfigError(f"config node '{where}' must be a mapping, got {node!r}")
    known = [f.name for f in fields(schema)]
    extra = sorted(str(k) for k in node if str(k) not in known)
    if extra:
        raise _unknown(where, extra, known)
    data = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    try:
        OmegaConf.merge(OmegaConf.structured(schema), data)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        raise ConfigError(f"config node '{where}', key '{key}': {str(exc).splitlines()[0]}") from None


@functools.cache
def _locate(target: str) -> Any:
    """Return the object a `_target_` names (imported, as Hydra does)."""
    from hydra.utils import get_object

    try:
        return get_object(target)
    except Exception as exc:
        raise ConfigError(f"cannot import _target_ {target!r}: {exc}") from None


def accepted_params(target: str) -> set[str] | None:
    """Return the keyword parameters `_target_`'s constructor accepts (None when it takes **kwargs)."""
    obj = _locate(target)
    init = obj.__init__ if inspect.isclass(obj) else obj
    try:
        params = inspect.signature(init).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.name != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL}


def _check_target(where: str, node: Any, allow_fast: bool = False) -> None:
    """Check a `_target_` node: its parameters (and its fast preset's) must be the class's `__init__` keywords."""
    if node is None:
        return
    if not isinstance(node, Mapping | DictConfig) or "_target_" not in node:
        raise ConfigError(f"config node '{where}' must name a class with _target_")
    accepted = accepted_params(str(node["_target_"]))
    if accepted is None:
        return
    own = {str(k) for k in node} - HYDRA_KEYS - ({FAST_KEY} if allow_fast else set())
    extra = sorted(own - accepted)
    if extra:
        raise _unknown(where, extra, sorted(accepted))
    if allow_fast and node.get(FAST_KEY) is not None:
        fast = node[FAST_KEY]
        if not isinstance(fast, Mapping | DictConfig):
            raise ConfigError(f"config node '{where}.{FAST_KEY}' must be a mapping of parameters")
        extra = sorted(str(k) for k in fast if str(k) not in accepted)
        if extra:
            raise _unknown(f"{where}.{FAST_KEY}", extra, sorted(accepted))


def _check_limits(node: Any) -> None:
    """Check `limits`: overrides of the analyzer's Limits fields."""
    from safepickle_bench.analysis.limits import Limits

    if node is None:
        return
    known = [f.name for f in fields(Limits)]
    extra = sorted(str(k) for k in node if str(k) not in known)
    if extra:
        raise _unknown("limits", extra, known)


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError unless every node of the composed config matches its schema (keys and types)."""
    known = set(PLAIN_NODES) | set(SCALARS) | set(TARGET_NODES) | set(SPECIAL_NODES)
    extra = sorted(str(k) for k in cfg if str(k) not in known)
    if extra:
        raise _unknown("<root>", extra, sorted(known))
    for key, kind in SCALARS.items():
        value = cfg.get(key)
        if value is not None and not isinstance(value, kind):
            raise ConfigError(f"config key '{key}' must be a {kind.__name__}, got {value!r}")
    for key, schema in PLAIN_NODES.items():
        _check_plain(key, cfg.get(key), schema)
    _check_target("model", cfg.get("model"), allow_fast=True)
    _check_target("split", cfg.get("split"))
    _check_limits(cfg.get("limits"))
    for name, node in (cfg.get("scanners") or {}).items():
        _check_target(f"scanners.{name}", node)
    attack = cfg.get("attack")
    for name, node in ((attack.get("models") if attack is not None else None) or {}).items():
        _check_target(f"attack.models.{name}", node, allow_fast=True)


# ---------------------------------------------------------------------------------------- typed views


@dataclass(frozen=True)
class DatasetRef:
    """Which dataset (name, size preset, seed) a run trains or tests on."""

    name: str
    size: str
    seed: int


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
    experiment_name: str
    log_models: bool


@dataclass(frozen=True)
class BackendConfig:
    """joblib backend for feature extraction and cross-validation (`local_*`: Dask's in-process cluster)."""

    name: str
    n_jobs: int
    address: str | None = None
    local_workers: int = 1
    local_processes: bool = False


@dataclass(frozen=True)
class LatencyConfig:
    """How latency is sampled."""

    n_files: int
    batch_size: int


@dataclass(frozen=True)
class EvaluationConfig:
    """What goes into the per-file predictions."""

    top_features: int
    analyzer_reasons: bool


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


def _typed(cls: type, node: Any) -> Any:
    """Build dataclass `cls` from a validated node (keys the view does not carry belong to other readers)."""
    data = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


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


def model_params(node: Any, fast: bool = False) -> dict[str, Any]:
    """Return a model node as `instantiate` input: `_target_` and parameters, the fast preset applied if asked."""
    data = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    preset = data.pop(FAST_KEY, None) or {}
    return {**data, **preset} if fast else data


def build_model(node: Any, fast: bool = False) -> Any:
    """Instantiate a model node (its fast preset applied when `fast`)."""
    from hydra.utils import instantiate

    return instantiate(model_params(node, fast), _convert_="all")


@functools.cache
def fast_presets() -> dict[str, dict[str, Any]]:
    """Return {detector class name: its fast preset} from the packaged model configs."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((project_paths.CONF_DIR / "model").glob("*.yaml")):
        node = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        out[str(node["_target_"]).rsplit(".", 1)[-1]] = dict(node.get(FAST_KEY) or {})
    return out


def run_config(cfg: DictConfig, model_choice: str | None = None) -> RunConfig:
    """Validate the composed Hydra config and build the typed RunConfig (paths made absolute)."""
    validate(cfg)
    root = project_paths.root_dir(str(cfg.paths.root_dir))

    def _abs(value: Any) -> Path:
        return Path(str(value)).expanduser().absolute()

    paths = PathsConfig(
        root_dir=root,
        data_dir=_abs(cfg.paths.data_dir),
        models_dir=_abs(cfg.paths.models_dir),
        results_dir=_abs(cfg.paths.results_dir),
    )
    tr = OmegaConf.to_container(cfg.tracking, resolve=True)
    tr["uri"] = tr["uri"] or project_paths.mlflow_uri(root)
    tr["artifact_location"] = tr["artifact_location"] or project_paths.mlflow_artifact_location(root)
    test = cfg.get("test_dataset")
    return RunConfig(
        task=str(cfg.task),
        name=str(cfg.get("name") or default_run_name(cfg, model_choice)),
        seed=int(cfg.seed),
        fast=bool(cfg.fast),
        dataset=_typed(DatasetRef, cfg.dataset),
        test_dataset=_typed(DatasetRef, test) if test else None,
        feature_groups=feature_groups_of(cfg.get("features")),
        paths=paths,
        tracking=_typed(TrackingConfig, tr),
        backend=_typed(BackendConfig, cfg.backend),
        latency=_typed(LatencyConfig, cfg.latency),
        evaluation=_typed(EvaluationConfig, cfg.evaluation),
        export_enabled=bool(cfg.export.enabled),
        limits=dict(OmegaConf.to_container(cfg.get("limits") or OmegaConf.create({}), resolve=True)),
        model=cfg.model,
        split=cfg.split,
        raw=cfg,
    )
