"""Detectors behind one scikit-learn interface, their non-pickle export, and the loader used by `scan`.

Names are imported on first use: loading the shipped detector to scan files must not pull in every model
library (scikit-learn, torch, CatBoost...) when it needs none of them."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from safepickle_bench.models.base import BaseDetector
    from safepickle_bench.models.detector import FileVerdict, LoadedDetector, export_detector, load_detector
    from safepickle_bench.models.registry import DETECTOR_CLASSES, detector_class

_HOMES: dict[str, str] = {
    "BaseDetector": "base",
    "DETECTOR_CLASSES": "registry",
    "detector_class": "registry",
    "export_detector": "detector",
    "load_detector": "detector",
    "LoadedDetector": "detector",
    "FileVerdict": "detector",
}
"""Public name -> the submodule that defines it."""

__all__ = [
    "BaseDetector",
    "DETECTOR_CLASSES",
    "FileVerdict",
    "LoadedDetector",
    "detector_class",
    "export_detector",
    "load_detector",
]


def __getattr__(name: str) -> Any:  # noqa: ANN401 - module attribute of any type
    """Import the submodule defining `name` on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)
