"""Static pickle analysis: bytes in, a structured `Analysis` out, without executing a byte of it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from safepickle_bench.analysis.limits import DEFAULT_LIMITS, Limits
from safepickle_bench.analysis.result import (
    ANOMALY_KINDS,
    Analysis,
    Anomaly,
    CallRecord,
    ImportRecord,
    Stream,
)

if TYPE_CHECKING:
    from safepickle_bench.analysis.analyzer import analyze_bytes, analyze_path

__all__ = [
    "ANOMALY_KINDS",
    "DEFAULT_LIMITS",
    "Analysis",
    "Anomaly",
    "CallRecord",
    "ImportRecord",
    "Limits",
    "Stream",
    "analyze_bytes",
    "analyze_path",
]

_LAZY = frozenset({"analyze_bytes", "analyze_path"})


def __getattr__(name: str) -> Any:  # noqa: ANN401 - module attribute of any type
    """Import the analyzer on first use, so importing one submodule does not pull in every layer."""
    if name in _LAZY:
        from safepickle_bench.analysis import analyzer

        return getattr(analyzer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
