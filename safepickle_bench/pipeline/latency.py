"""Latency measured apart from evaluation: analysis+features per file, single and batched inference."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from safepickle_bench.analysis.limits import Limits
from safepickle_bench.models.base import BaseDetector


def _summary(ms: list[float], prefix: str) -> dict[str, float]:
    """Return `<prefix>_median` and `<prefix>_p95` of a list of milliseconds."""
    arr = np.asarray(ms, dtype=float)
    if not len(arr):
        return {f"{prefix}_median": float("nan"), f"{prefix}_p95": float("nan")}
    return {f"{prefix}_median": float(np.median(arr)), f"{prefix}_p95": float(np.percentile(arr, 95))}


def sample_indices(n: int, k: int, seed: int = 0) -> np.ndarray:
    """Return up to k distinct row indices out of n, reproducibly."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(k, n), replace=False)) if n else np.zeros(0, dtype=int)


def feature_latency(paths: Sequence[str], groups: Sequence[str], limits: Limits | None = None) -> dict[str, float]:
    """Time analysis plus featurisation of each file (no cache), in ms: features_ms_median and _p95."""
    from safepickle_bench.analysis import analyze_path
    from safepickle_bench.features import featurize_array

    if paths:  # warm-up: imports and first-call costs are not per-file latency
        featurize_array(analyze_path(paths[0], limits=limits), list(groups))
    ms: list[float] = []
    for p in paths:
        t0 = time.perf_counter()
        featurize_array(analyze_path(p, limits=limits), list(groups))
        ms.append((time.perf_counter() - t0) * 1000.0)
    return _summary(ms, "features_ms")


def inference_latency(estimator: BaseDetector, X: np.ndarray, batch_size: int = 256) -> dict[str, float]:
    """Time single-row predict_proba calls (median, p95 ms) and batched calls (ms per file)."""
    X = np.asarray(X, dtype=np.float64)
    if not len(X):
        return {**_summary([], "inference_ms"), "inference_batch_ms_per_file": float("nan")}
    estimator.predict_proba(X[:1])
    ms: list[float] = []
    for i in range(len(X)):
        row = X[i : i + 1]
        t0 = time.perf_counter()
        estimator.predict_proba(row)
        ms.append((time.perf_counter() - t0) * 1000.0)
    t0 = time.perf_counter()
    for start in range(0, len(X), max(1, batch_size)):
        estimator.predict_proba(X[start : start + batch_size])
    batch_ms = (time.perf_counter() - t0) * 1000.0 / len(X)
    return {**_summary(ms, "inference_ms"), "inference_batch_ms_per_file": batch_ms}
