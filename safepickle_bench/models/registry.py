"""The one model registry: the detector classes (the only names an exported `detector.json` may load) and
the models a run can choose, read from the `model` config group (`conf/model/<name>.yaml`).

The config group is the list of models: each option names its class in `_target_`, and that class must be
one of `DETECTOR_CLASSES` (loading never imports a name from a file). Models are listed in the order of their
classes below: supervised first, the paper's best model first.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from safepickle_bench.models.base import BaseDetector
from safepickle_bench.models.boosting import CatBoostDetector, LightGBMDetector, XGBoostDetector
from safepickle_bench.models.supervised import (
    KNNDetector,
    LinearSVMDetector,
    LogisticRegressionDetector,
    MLPDetector,
    RandomForestDetector,
)
from safepickle_bench.models.unsupervised import (
    AutoencoderDetector,
    IsolationForestDetector,
    LOFDetector,
    OneClassSVMDetector,
)
from safepickle_bench.paths import CONF_DIR

MODEL_CONF_DIR = CONF_DIR / "model"
"""The `model` config group: one YAML file per model a run can choose."""

DETECTOR_CLASSES: dict[str, type[BaseDetector]] = {
    cls.__name__: cls
    for cls in (
        RandomForestDetector,
        CatBoostDetector,
        XGBoostDetector,
        LightGBMDetector,
        LogisticRegressionDetector,
        LinearSVMDetector,
        KNNDetector,
        MLPDetector,
        AutoencoderDetector,
        IsolationForestDetector,
        LOFDetector,
        OneClassSVMDetector,
    )
}


def detector_class(name: str) -> type[BaseDetector]:
    """Return the detector class registered under `name`, or raise a clear error."""
    try:
        return DETECTOR_CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown detector class {name!r}; known: {sorted(DETECTOR_CLASSES)}") from None


def _class_of_option(path: Path) -> type[BaseDetector]:
    """Return the registered class a `conf/model` option names in `_target_`, or raise naming the file."""
    target = str((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("_target_", ""))
    by_path = {f"{cls.__module__}.{cls.__qualname__}": cls for cls in DETECTOR_CLASSES.values()}
    if target not in by_path:
        raise ValueError(f"{path}: _target_ {target!r} is not a registered detector class; known: {sorted(by_path)}")
    return by_path[target]


@cache
def model_classes() -> dict[str, type[BaseDetector]]:
    """Return every model of the `model` config group (option name -> class), in registry order."""
    options = {p.stem: _class_of_option(p) for p in sorted(MODEL_CONF_DIR.glob("*.yaml"))}
    order = list(DETECTOR_CLASSES.values())
    return dict(sorted(options.items(), key=lambda item: (order.index(item[1]), item[0])))


def model_names(kind: str | None = None) -> tuple[str, ...]:
    """Return the model option names, all or only the `supervised` / `unsupervised` ones, in registry order."""
    if kind not in (None, "supervised", "unsupervised"):
        raise ValueError(f"kind must be supervised, unsupervised or None, got {kind!r}")
    return tuple(name for name, cls in model_classes().items()
                 if kind is None or cls.supervised == (kind == "supervised"))
