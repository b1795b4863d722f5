"""Benchmark scoring: errors counted both ways, unavailable scanners get no figure, per-sample matrix cells."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from safepickle_bench.pipeline.scanner_benchmark import (
    METRIC_COLUMNS,
    benchmark,
    detection_matrix,
    score_records,
)
from safepickle_bench.scanners.base import Scanner, ScanResult


def _records(verdicts: list[str], labels: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "path": [f"f{i}" for i in range(len(labels))],
            "label": labels,
            "verdict": verdicts,
            "seconds": [0.001 * (i + 1) for i in range(len(labels))],
            "skipped": False,
            "error": [("boom" if v == "error" else None) for v in verdicts],
        }
    )


def test_errors_scored_fail_closed_and_fail_open():
    # 4 malicious: detected, missed, error, error; 4 benign: clean, clean, error, false positive
    recs = _records(
        ["malicious", "benign", "error", "error", "benign", "benign", "error", "malicious"],
        [1, 1, 1, 1, 0, 0, 0, 0],
    )
    row = score_records(recs, "toy", "fake", "in-process")
    # fail-closed: tp=3 fp=2 fn=1 -> f1 = 6/9 ; fail-open: tp=1 fp=1 fn=3 -> f1 = 2/6
    assert row["f1_fail_closed"] == pytest.approx(6 / 9)
    assert row["f1_fail_open"] == pytest.approx(2 / 6)
    assert row["recall"] == pytest.approx(3 / 4) and row["recall_fail_open"] == pytest.approx(1 / 4)
    assert row["fpr"] == pytest.approx(2 / 4) and row["fpr_fail_open"] == pytest.approx(1 / 4)
    assert row["error_rate"] == pytest.approx(3 / 8)
    assert row["ms_median"] == pytest.approx(4.5)
    assert list(row)[: len(METRIC_COLUMNS)] == list(METRIC_COLUMNS)


class ListScanner(Scanner):
    """A fake scanner answering from a dict name -> verdict."""

    name = "listed"

    def __init__(self, answers: dict[str, str], ok: bool = True) -> None:
        super().__init__()
        self.answers, self.ok = answers, ok

    def available(self) -> tuple[bool, str]:
        return (True, "") if self.ok else (False, "no signature database")

    def _scan(self, path: Path) -> ScanResult:
        v = self.answers[path.name]
        if v == "raise":
            raise RuntimeError("wrapper bug")
        return ScanResult(v, 1.0 if v == "malicious" else 0.0)


def test_benchmark_reports_unavailable_without_figures_and_survives_exceptions(tmp_path):
    names = ["a.pkl", "b.pkl", "c.pkl", "d.pkl"]
    for n in names:
        (tmp_path / n).write_bytes(b"x")
    manifest = pd.DataFrame(
        {
            "path": names,
            "abspath": [str(tmp_path / n) for n in names],
            "label": [1, 1, 0, 0],
            "evasion_technique": ["eop", "none", "none", "none"],
        }
    )
    good = ListScanner({"a.pkl": "malicious", "b.pkl": "raise", "c.pkl": "benign", "d.pkl": "benign"})
    missing = ListScanner({}, ok=False)
    metrics, records = benchmark({"good": good, "clamav_like": missing}, manifest, "toy")
    by = metrics.set_index("scanner")
    assert by.loc["clamav_like", "available"] == False  # noqa: E712
    assert "unavailable: no signature database" in by.loc["clamav_like", "note"]
    assert math.isnan(by.loc["clamav_like", "f1_fail_closed"])
    assert by.loc["good", "error_rate"] == pytest.approx(0.25)
    assert by.loc["good", "f1_fail_closed"] == pytest.approx(1.0)
    assert by.loc["good", "f1_fail_open"] == pytest.approx(2 / 3)
    matrix = detection_matrix(records).set_index("path")
    assert matrix.loc["a.pkl", "good"] == "detected"
    assert matrix.loc["b.pkl", "good"] == "error"
    assert matrix.loc["c.pkl", "good"] == "clean"
    assert "clamav_like" not in matrix.columns


class _SlowChildScanner(Scanner):
    """Flags files whose name holds 'bad'; notes how many scans overlapped."""

    name = "slow_child"
    process_per_file = True

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.lock, self.running, self.overlap = threading.Lock(), 0, 0

    def _scan(self, path: Path) -> ScanResult:
        import time

        with self.lock:
            self.running += 1
            self.overlap = max(self.overlap, self.running)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1
        return ScanResult("malicious" if "bad" in path.name else "benign", 1.0, [], None, 0.05)


@pytest.mark.parametrize(("per_file", "expect_overlap"), [(True, 2), (False, 1)])
def test_concurrent_scans_only_for_process_per_file_scanners_and_keep_manifest_order(
        tmp_path, per_file, expect_overlap):
    names = [f"{'bad' if i % 3 == 0 else 'ok'}_{i}.pkl" for i in range(8)]
    for n in names:
        (tmp_path / n).write_bytes(b"N.")
    manifest = pd.DataFrame({"abspath": [str(tmp_path / n) for n in names], "path": names,
                             "label": [int(n.startswith("bad")) for n in names]})
    scanner = _SlowChildScanner()
    scanner.process_per_file = per_file
    _, records = benchmark({"slow_child": scanner}, manifest, "toy", workers=2)
    assert list(records["path"]) == names
    assert list(records["verdict"]) == ["malicious" if n.startswith("bad") else "benign" for n in names]
    assert scanner.overlap == expect_overlap
