"""Properties of the engine on any bytes: it never raises, never fails internally, and its records agree."""

from __future__ import annotations

import pickle
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safepickle_bench.analysis.engine import simulate_stream
from safepickle_bench.analysis.limits import DEFAULT_LIMITS

_SEEDS = [
    pickle.dumps(o, protocol=p)
    for o in (None, 7, -(2**40), 3.5, "x" * 40, b"\x00\xff" * 9, (1, "a"), [1, [2, [3]]], {"k": (1.0, None)},
              {1, 2, 3}, frozenset({"a"}), bytearray(b"abc"), range(3), slice(1, 5, 2), complex(1, 2))
    for p in range(6)
]  # fmt: skip


def _check(data: bytes) -> None:
    """Read `data` as one stream and check the record is consistent and free of internal errors."""
    budget = [DEFAULT_LIMITS.max_decompressed_bytes]
    run = simulate_stream(data, 0, "f#0", deadline=time.monotonic() + 60, decode_budget=budget)
    s = run.stream
    assert [a for a in s.anomalies if a.kind == "internal_error"] == []
    assert s.n_opcodes == len(s.opcode_seq) == sum(s.opcode_counts.values())
    assert 0 <= s.start <= s.end <= len(data)
    assert not s.complete or data[s.end - 1] == ord(".")  # a complete stream ends after its STOP
    assert s.complete or s.anomalies  # an incomplete one says why
    assert 0 <= budget[0] <= DEFAULT_LIMITS.max_decompressed_bytes
    assert all(x.offset < len(data) for x in (*s.imports, *s.calls))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(_SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 10_000),
)
def test_engine_reads_mutated_pickles_without_internal_errors(seed, edits, cut):
    data = bytearray(seed)
    for i, b in edits:
        data[i % len(data)] = b
    _check(bytes(data[: max(1, len(data) - cut % 8)]))


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=64))
def test_engine_reads_random_bytes_without_internal_errors(data):
    _check(b"\x80\x02" + data)
