"""Property tests: on random and mutated bytes `read_streams` never raises and always stays within its limits."""

from __future__ import annotations

import pickle
import time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safepickle_bench.analysis import opcodes as ops
from safepickle_bench.analysis.limits import Limits
from safepickle_bench.analysis.result import ANOMALY_KINDS
from safepickle_bench.analysis.streams import read_streams

LIMITS = Limits(
    max_opcodes=2_000,
    max_streams=8,
    max_nested_pickle_depth=2,
    max_stack_depth=500,
    max_string_literals=50,
    max_string_chars=64,
    max_seconds=2.0,
    max_pickle_bytes=64 * 1024,
    max_decompressed_bytes=64 * 1024,
)
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _seeds() -> list[bytes]:
    objs: list[object] = [
        {"w": [1.5, 2, None, True], "name": "layer", "b": b"\x00\x01", "s": {1, 2}, "f": frozenset({3})},
        [(i, str(i)) for i in range(20)],
        np.arange(6).reshape(2, 3),
        range(3),
    ]
    seeds = [pickle.dumps(o, protocol=p) for o in objs for p in range(6)]
    seeds.append(b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x07echo hi\x85R.")
    seeds.append(b"(S'echo hi'\nios\nsystem\n.")
    return seeds


SEEDS = _seeds()


def _check(data: bytes) -> None:
    t0 = time.monotonic()
    read = read_streams(data, "h", LIMITS)
    elapsed = time.monotonic() - t0
    assert elapsed < LIMITS.max_seconds + 1.0
    top = [s for s in read.streams if ">" not in s.location]
    assert len(top) <= LIMITS.max_streams
    for s in read.streams:
        assert s.n_opcodes <= LIMITS.max_opcodes
        assert len(s.opcode_seq) == s.n_opcodes == sum(s.opcode_counts.values())
        assert all(code in ops.VALID_OPCODES for code in s.opcode_seq)
        assert len(s.strings) <= LIMITS.max_string_literals <= 50 and s.n_strings >= len(s.strings)
        assert all(len(x) <= LIMITS.max_string_chars for x in s.strings)
        assert s.nested_depth <= LIMITS.max_nested_pickle_depth
        assert 0 <= s.start <= s.end <= len(data) or s.nested_depth > 0
        for a in s.anomalies:
            assert a.kind in ANOMALY_KINDS
        s.to_dict()
    for a in read.anomalies:
        assert a.kind in ANOMALY_KINDS


@SETTINGS
@given(st.binary(max_size=512))
def test_random_bytes_never_raise_and_stay_within_limits(data: bytes) -> None:
    _check(data)


@SETTINGS
@given(st.binary(max_size=256).map(lambda b: b"\x80\x04" + b))
def test_random_bytes_after_proto_never_raise(data: bytes) -> None:
    _check(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "opcode"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[i : i + draw(st.integers(1, 8))]
        elif op == "opcode" and data:
            data[i] = draw(st.sampled_from(sorted(ops.VALID_OPCODES)))
    return bytes(data)


@SETTINGS
@given(mutated())
def test_mutated_real_pickles_never_raise_and_stay_within_limits(data: bytes) -> None:
    _check(data)


def test_pathological_inputs_hit_limits_as_anomalies() -> None:
    deep = b"(" * 100_000 + b"."
    wide = b"\x80\x02" + b"N" * 50_000 + b"."
    many = pickle.dumps(1) * 100
    for data, kind in ((deep, None), (wide, "limit_opcodes"), (many, "limit_streams")):
        read = read_streams(data, "h", LIMITS)
        kinds = {a.kind for a in read.anomalies} | {a.kind for s in read.streams for a in s.anomalies}
        assert kind is None or kind in kinds
        _check(data)


def test_deadline_in_the_past_stops_with_limit_time() -> None:
    read = read_streams(pickle.dumps(list(range(100))), "h", LIMITS, deadline=time.monotonic() - 1)
    kinds = {a.kind for a in read.anomalies} | {a.kind for s in read.streams for a in s.anomalies}
    assert "limit_time" in kinds
