"""The detector classes an exported `detector.json` may name (loading never imports a name from a file)."""

from __future__ import annotations

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
        IsolationForestDetector,
        LOFDetector,
        OneClassSVMDetector,
        AutoencoderDetector,
    )
}


def detector_class(name: str) -> type[BaseDetector]:
    """Return the detector class registered under `name`, or raise a clear error."""
    try:
        return DETECTOR_CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown detector class {name!r}; known: {sorted(DETECTOR_CLASSES)}") from None
