"""Hostile inputs (bombs, billion laughs, deep nesting, huge numbers and lengths, many streams or entries) are
analysed within the configured limits of time and memory, with the anomaly recorded.

Each case is built small and analysed under reduced `Limits`, which proves the bound without the cost of the
full-size inputs (those are measured at the default limits by experiments/bench_hostile_inputs.py).
"""

from __future__ import annotations

import time
import tracemalloc

import pytest

from safepickle_bench.analysis import Analysis, Limits, analyze_bytes, containers
from safepickle_bench.analysis.hostile_inputs import CASES, CASES_BY_NAME
from safepickle_bench.analysis.streams import read_streams
from safepickle_bench.analysis.values import LazyCallRecord, summarize

MiB = 1 << 20
SMALL = Limits(
    max_decompressed_bytes=4 * MiB,
    max_total_decompressed_bytes=16 * MiB,
    max_opcodes=200_000,
    max_stack_depth=50_000,
    max_seconds=20.0,
)
"""Reduced limits: every bound below is a small multiple of these."""

SCALES = {
    "zip_bomb": 1 / 64,
    "gzip_bomb": 1 / 100,
    "bz2_bomb": 1 / 100,
    "xz_bomb": 1 / 100,
    "nested_bomb": 1 / 64,
    "overlapping_zip_bomb": 0.02,
    "billion_laughs_lists": 1.0,
    "billion_laughs_dup": 1.0,
    "deep_marks": 0.1,
    "deep_tuples": 0.1,
    "deep_lists": 0.1,
    "deep_append_chain": 0.1,
    "deep_dict_nesting": 0.1,
    "huge_int_text": 0.1,
    "huge_long4": 0.01,
    "huge_declared_lengths": 1.0,
    "huge_memo_indices": 0.1,
    "many_streams": 0.01,
    "opcode_flood": 0.02,
    "decode_bomb_in_pickle": 0.02,
    "nested_pickle_chain": 1.0,
    "zip_many_entries": 0.02,
    "zip_declared_huge_size": 1.0,
}
"""Scale of each case in the tests (the benchmark uses 1.0, at the default limits)."""


def kinds(analysis: Analysis) -> set[str]:
    return {a.kind for a in analysis.all_anomalies()}


def analyse_measured(data: bytes, name: str, limits: Limits) -> tuple[Analysis, float, int]:
    """Analyse under tracemalloc: (analysis, seconds, peak bytes allocated while analysing)."""
    tracemalloc.start()
    try:
        start = time.perf_counter()
        analysis = analyze_bytes(data, name, limits, compute_sha256=False)
        for call in analysis.all_calls():  # summaries are computed lazily: they must be safe too
            assert isinstance(call.args, str)
        analysis.to_json()
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return analysis, seconds, peak


def test_every_case_has_a_test_scale():
    assert set(SCALES) == {c.name for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_input_is_analysed_within_the_limits_with_its_anomaly(case):
    data = case.build(SCALES[case.name])
    analysis, seconds, peak = analyse_measured(data, case.name, SMALL)
    assert analysis.error is None
    assert "internal_error" not in kinds(analysis)
    assert case.expected <= kinds(analysis) or (case.expected & kinds(analysis)), (case.name, kinds(analysis))
    # Time: well under the budget (tracemalloc slows allocation-heavy cases down ~2x).
    assert seconds < 10.0, (case.name, seconds)
    # Memory: the input, plus at most a few decompression budgets, plus per-opcode state for max_opcodes.
    bound = 3 * len(data) + 3 * SMALL.max_decompressed_bytes + 200 * SMALL.max_opcodes
    assert peak < bound, (case.name, peak, bound)


DECODER_STATE = {"xz_bomb": 9 * MiB}
"""Memory a decoder needs besides its output: the xz bomb declares an 8 MiB dictionary (`xz -6`)."""


@pytest.mark.parametrize("name", ["zip_bomb", "gzip_bomb", "bz2_bomb", "xz_bomb", "decode_bomb_in_pickle"])
def test_a_bomb_costs_at_most_about_its_decompression_budget_in_memory(name):
    data = CASES_BY_NAME[name].build(SCALES[name])
    analysis, _, peak = analyse_measured(data, name, SMALL)
    assert "limit_decompressed" in kinds(analysis)
    assert peak < len(data) + 2 * SMALL.max_decompressed_bytes + DECODER_STATE.get(name, MiB), peak


def test_xz_stream_needing_a_huge_decoder_dictionary_is_refused(monkeypatch):
    monkeypatch.setattr(containers, "LZMA_MEMLIMIT", 4 * MiB)  # the bomb's stream declares 8 MiB
    analysis = analyze_bytes(CASES_BY_NAME["xz_bomb"].build(SCALES["xz_bomb"]), "dict.xz", SMALL)
    cut = [a for a in analysis.anomalies if a.kind == "limit_decompressed"]
    assert cut and "decoder over" in cut[0].detail


def test_nested_and_overlapping_bombs_stop_at_the_file_total():
    for name in ("nested_bomb", "overlapping_zip_bomb"):
        analysis = analyze_bytes(CASES_BY_NAME[name].build(SCALES[name]), name, SMALL)
        cut = [a for a in analysis.anomalies if a.kind == "limit_decompressed"]
        assert cut, name
        assert "max_total_decompressed_bytes" in cut[-1].detail


def test_decoding_inside_a_pickle_shares_the_budget_and_records_the_cut():
    data = CASES_BY_NAME["decode_bomb_in_pickle"].build(0.01)  # 2.5 MiB per call, 16 calls
    stream = analyze_bytes(data, "decode.pkl", SMALL).streams[0]
    cut = [a for a in stream.anomalies if a.kind == "limit_decompressed"]
    assert cut and "zlib.decompress" in cut[0].detail
    assert sum(c.callable == "zlib.decompress" for c in stream.calls) == 16  # every call is still recorded


def test_billion_laughs_is_never_expanded():
    for name in ("billion_laughs_lists", "billion_laughs_dup"):
        analysis, seconds, peak = analyse_measured(CASES_BY_NAME[name].build(1.0), name, SMALL)
        assert seconds < 2.0 and peak < 20 * MiB, (name, seconds, peak)
        assert analysis.streams[0].complete
        assert "builtins.len" in {c.callable for c in analysis.all_calls()}


def test_deep_nesting_is_measured_not_recursed():
    deep = analyze_bytes(CASES_BY_NAME["deep_tuples"].build(0.1), "deep.pkl", SMALL).streams[0]
    assert deep.complete and deep.max_container_nesting >= 256  # bounded walk, capped depth
    marks = analyze_bytes(CASES_BY_NAME["deep_marks"].build(0.1), "marks.pkl", SMALL).streams[0]
    assert marks.max_container_nesting >= 100_000


def test_huge_integers_are_summarised_without_converting_them_to_text():
    stream = analyze_bytes(CASES_BY_NAME["huge_long4"].build(0.01), "long4.pkl", SMALL).streams[0]
    assert [c.callable for c in stream.calls] == ["builtins.int", "builtins.str"]
    assert "bits>" in stream.calls[0].args
    assert summarize((10**5000, "x")).startswith("(<int ")
    text = analyze_bytes(CASES_BY_NAME["huge_int_text"].build(0.1), "int.pkl", SMALL)
    assert any("max_int_digits" in a.detail for a in text.all_anomalies())


def test_finished_streams_do_not_keep_big_literals_alive():
    stream = analyze_bytes(CASES_BY_NAME["huge_long4"].build(0.01), "long4.pkl", SMALL).streams[0]
    lazy = [c for c in stream.calls if isinstance(c, LazyCallRecord)]
    assert lazy and not any(c.pending for c in lazy)  # summarised when the stream ended, references dropped
    small = analyze_bytes(b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02hi\x85R.", "s.pkl").streams[0]
    assert small.calls[0].pending  # small arguments stay lazy (no summary cost unless read)
    assert small.calls[0].args == "('hi',)" and not small.calls[0].pending


def test_huge_declared_lengths_are_truncations_found_without_allocating():
    data = CASES_BY_NAME["huge_declared_lengths"].build(1.0)
    analysis, seconds, peak = analyse_measured(data, "lengths.zip", SMALL)
    assert len(analysis.streams) == 6
    assert all(any(a.kind == "truncated" for a in s.anomalies) for s in analysis.streams)
    assert seconds < 1.0 and peak < 5 * MiB


def test_opcode_flood_stops_at_the_limits_with_flat_memory():
    data = CASES_BY_NAME["opcode_flood"].build(0.05)  # 1,000,000 NONEs
    analysis, _, peak = analyse_measured(data, "flood.pkl", SMALL)
    stream = analysis.streams[0]
    assert {"limit_stack", "limit_opcodes"} <= kinds(analysis)
    assert stream.n_opcodes == SMALL.max_opcodes
    assert peak < 3 * len(data) + 40 * MiB, peak  # the leftover opcodes are streamed, not kept as tuples


def test_many_streams_and_huge_memo_indices():
    many = read_streams(CASES_BY_NAME["many_streams"].build(0.01), "many.pkl", SMALL)
    assert len(many.streams) == SMALL.max_streams and "limit_streams" in {a.kind for a in many.anomalies}
    memo = analyze_bytes(CASES_BY_NAME["huge_memo_indices"].build(0.1), "memo.pkl", SMALL).streams[0]
    assert memo.complete and memo.memo_puts == 10_000


def test_zip_with_many_entries_is_cut_by_the_time_budget():
    data = CASES_BY_NAME["zip_many_entries"].build(0.1)  # 10,000 entries
    analysis = analyze_bytes(data, "many.zip", SMALL)
    assert len(analysis.streams) > 1000 and "internal_error" not in kinds(analysis)
    start = time.perf_counter()
    cut = analyze_bytes(data, "many.zip", Limits(max_seconds=0.05))
    assert time.perf_counter() - start < 2.0
    assert "limit_time" in kinds(cut)
    assert len(cut.streams) < len(analysis.streams)


def test_zip_entry_declaring_two_to_the_62_bytes_is_read_from_its_real_bytes():
    analysis = analyze_bytes(CASES_BY_NAME["zip_declared_huge_size"].build(1.0), "huge.zip", SMALL)
    assert "container_corrupt" in kinds(analysis)
    assert [s.complete for s in analysis.streams] == [True]


def test_nested_pickle_chain_stops_at_the_nesting_limit():
    analysis = analyze_bytes(CASES_BY_NAME["nested_pickle_chain"].build(1.0), "chain.pkl", SMALL)
    assert "limit_depth" in kinds(analysis)
    assert max(s.nested_depth for s in analysis.streams) == SMALL.max_nested_pickle_depth
