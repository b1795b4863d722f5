"""Checks shared by the benign producer tests: same bytes per seed, analyzer reads, oracle loads clean."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from safepickle_bench.analysis import analyze_path
from safepickle_bench.datasets.carriers import CarrierFile, Producer
from safepickle_bench.features.imports import dangerous_findings


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def produce_twice(producer: Producer, root: Path, seed: int) -> tuple[Path, list[CarrierFile]]:
    """Run a producer twice with the same seed into two folders; assert identical files; return the first."""
    outputs = []
    for run in ("a", "b"):
        folder = root / f"{producer.name}-{seed}-{run}"
        folder.mkdir(parents=True)
        files = producer.make(np.random.default_rng([seed, 17]), folder)
        assert files, producer.name
        assert all((folder / f.name).is_file() for f in files), producer.name
        outputs.append((folder, files))
    assert _digests(outputs[0][0]) == _digests(outputs[1][0]), f"{producer.name} seed {seed}: bytes differ"
    assert outputs[0][1] == outputs[1][1]
    return outputs[0]


def analyzer_findings(path: Path) -> list[dict[str, object]]:
    """Analyse one file: assert no internal_error anomaly and at least one stream; return dangerous findings."""
    analysis = analyze_path(path)
    assert analysis.error is None, (path, analysis.error)
    internal = [a for a in analysis.all_anomalies() if a.kind == "internal_error"]
    assert not internal, (path, internal)
    assert analysis.streams, path
    return dangerous_findings(analysis)


@pytest.fixture
def produced(tmp_path: Path) -> Callable[[list[Producer], int], list[tuple[Path, CarrierFile]]]:
    """Return a function producing each producer's files for seeds 0..n-1 (checked reproducible)."""

    def run(producers: list[Producer], n_seeds: int) -> list[tuple[Path, CarrierFile]]:
        out = []
        for producer in producers:
            for seed in range(n_seeds):
                folder, files = produce_twice(producer, tmp_path, seed)
                out += [(folder / f.name, f) for f in files]
        return out

    return run


@pytest.fixture
def analyzer_reads() -> Callable[[list[Path]], dict[str, list[dict[str, object]]]]:
    """Return a function that analyses files (no internal_error) and maps each path to its dangerous findings."""

    def run(paths: list[Path]) -> dict[str, list[dict[str, object]]]:
        return {str(p): analyzer_findings(p) for p in paths}

    return run


@pytest.fixture
def oracle_loads_clean() -> Callable[[list[tuple[Path, str]]], None]:
    """Return a function asserting the label oracle loads every (path, loader) with no dangerous event."""
    from safepickle_bench.datasets.oracle import confirm

    def run(items: list[tuple[Path, str]]) -> None:
        for result in confirm(items, timeout=120):
            assert result.event == "", (result.path, result.event, result.detail)
            assert result.loaded, (result.path, result.error)

    return run
