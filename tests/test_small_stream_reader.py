"""The fast reader of small streams gives exactly what the full engine gives, or hands the stream over."""

from __future__ import annotations

import collections
import datetime
import decimal
import pickle
import time
from pathlib import Path

import pytest

from safepickle_bench.analysis.limits import DEFAULT_LIMITS
from safepickle_bench.analysis.symbolic import SMALL_STREAM_BYTES, _Engine, read_small_stream

WILD = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "wild"

_OBJECTS = [
    None, True, 7, -2**40, 3.5, "x" * 40, b"\x00\xff" * 9, (1, "a"), [1, [2, [3]]], {"k": (1.0, None)},
    {1, 2, 3}, frozenset({"a"}), bytearray(b"abc"), collections.OrderedDict(a=1, b=[2]),
    datetime.date(2020, 1, 2), decimal.Decimal("1.5"), complex(1, 2), range(3), slice(1, 5, 2),
    collections.Counter("hello"), [{"a": i, "b": str(i)} for i in range(5)],
]


def _inputs() -> list[tuple[str, bytes]]:
    """Small benign pickles of every protocol plus the small wild-corpus files (read as bytes only)."""
    items = [(f"obj{i}-p{p}", pickle.dumps(o, protocol=p)) for i, o in enumerate(_OBJECTS) for p in range(6)]
    if WILD.is_dir():
        items += [(f.name, f.read_bytes()) for f in sorted(WILD.rglob("*")) if f.is_file() and f.name != "MANIFEST.csv"]
    return [(name, data) for name, data in items if 0 < len(data) <= SMALL_STREAM_BYTES]


def _engine_run(data: bytes):
    deadline = time.monotonic() + DEFAULT_LIMITS.max_seconds
    return _Engine().run(data, 0, len(data), "f#0", DEFAULT_LIMITS, 0, deadline, [DEFAULT_LIMITS.max_decompressed_bytes])


def _record(run) -> dict:
    return {"stream": run.stream.to_dict(with_seq=True), "file_end": run.file_end, "extra": len(run.extra_streams),
            "persistent_ids": repr(run.persistent_ids), "value": repr(run.value)}


def test_fast_reader_matches_the_full_engine_whenever_it_answers():
    inputs = _inputs()
    answered = 0
    for name, data in inputs:
        fast = read_small_stream(data, 0, len(data), "f#0", DEFAULT_LIMITS, 0)
        if fast is None:
            continue
        answered += 1
        assert _record(fast) == _record(_engine_run(data)), name
    # the comparison means something only if the fast path really answered for many streams
    assert answered >= 60, f"fast reader answered only {answered} of {len(inputs)} inputs"


@pytest.mark.parametrize("data", [b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00hi\x85R.", b"\x80\x04\xff", b"(I1\n"])
def test_fast_reader_hands_over_payloads_and_malformed_streams_or_matches(data):
    fast = read_small_stream(data, 0, len(data), "f#0", DEFAULT_LIMITS, 0)
    if fast is not None:
        assert _record(fast) == _record(_engine_run(data))
    else:
        assert _engine_run(data).stream.n_opcodes >= 1
