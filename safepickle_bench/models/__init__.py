"""Detectors behind one scikit-learn interface, their non-pickle export, and the loader used by `scan`."""

from safepickle_bench.models.base import BaseDetector
from safepickle_bench.models.registry import DETECTOR_CLASSES, detector_class

__all__ = ["BaseDetector", "DETECTOR_CLASSES", "detector_class", "export_detector", "load_detector"]


def __getattr__(name: str) -> object:
    """Import the export/load helpers lazily (they pull in the analyzer and features)."""
    if name in ("export_detector", "load_detector", "LoadedDetector", "FileVerdict"):
        from safepickle_bench.models import detector

        return getattr(detector, name)
    raise AttributeError(name)
