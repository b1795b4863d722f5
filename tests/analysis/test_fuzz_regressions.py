"""Inputs that once broke the analyzer (tests/analysis/regressions/, see its README) are now analysed cleanly."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from safepickle_bench.analysis import analyze_bytes

REGRESSIONS = Path(__file__).parent / "regressions"
SAMPLES = sorted(p for p in REGRESSIONS.iterdir() if p.is_file() and p.name != "README.md")

EXPECTED_CALLS = {
    "huge_int_call_summary.pkl": ["builtins.int"],
    "joblib_shape_huge_ints.pkl": ["joblib.numpy_pickle.NumpyArrayWrapper", "numpy.dtype"],
}
"""Callables each sample must still show (the analysis goes on past the input that used to break it)."""


def test_every_regression_sample_is_documented():
    readme = (REGRESSIONS / "README.md").read_text()
    assert SAMPLES and all(f"`{p.name}`" in readme for p in SAMPLES)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_regression_sample_is_analysed_without_internal_error(path):
    start = time.perf_counter()
    analysis = analyze_bytes(path.read_bytes(), path.name)
    summaries = [c.args for c in analysis.all_calls()]
    text = analysis.to_json()
    assert time.perf_counter() - start < 5.0
    assert analysis.error is None and text
    assert not [a for a in analysis.all_anomalies() if a.kind == "internal_error"]
    assert all(isinstance(s, str) and len(s) <= 300 for s in summaries)
    for callable_ in EXPECTED_CALLS.get(path.name, []):
        assert callable_ in {c.callable for c in analysis.all_calls()}, callable_
