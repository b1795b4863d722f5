"""Writer style: memo stores added as `pickle.dumps` writes them, or stripped as `pickletools.optimize` does."""

from __future__ import annotations

import pickle
import pickletools

import pytest

from safepickle_bench.craft.payloads import build_payload
from safepickle_bench.craft.writer_style import MEMO_OPCODES, memoize_like_pickler, strip_unused_memo


class _Reduces:
    """An object whose reduction has every memoized kind of argument (strings, bytes, tuples, containers)."""

    def __reduce__(self):  # noqa: ANN204 - pickle protocol
        return (print, ("text", ("a", "b"), b"raw", {"k": [1, 2]}, frozenset({3}), 7))


def _memo_ops(stream: bytes) -> int:
    return sum(op.name in MEMO_OPCODES for op, _a, _p in pickletools.genops(stream))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_memoizing_a_stripped_stream_gives_back_the_picklers_bytes(protocol):
    written = pickle.dumps(_Reduces(), protocol)
    stripped = strip_unused_memo(written)
    assert _memo_ops(stripped) == 0
    assert memoize_like_pickler(stripped) == written


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_memoized_payload_keeps_its_opcodes_and_gains_memo_stores(protocol):
    payload = build_payload("os_system", "/tmp/safepickle-out/markers", protocol=protocol, variant=1)
    bare = payload.stream(protocol)
    memoized = memoize_like_pickler(bare)
    assert _memo_ops(bare) == 0 and _memo_ops(memoized) > 0
    kept = [(op.name, arg) for op, arg, _p in pickletools.genops(memoized) if op.name not in MEMO_OPCODES | {"FRAME"}]
    assert kept == [(op.name, arg) for op, arg, _p in pickletools.genops(bare)]
    assert strip_unused_memo(memoized) == strip_unused_memo(bare)


def test_a_stream_that_already_uses_the_memo_is_left_as_it_is():
    written = pickle.dumps({"a": ("x", "x")}, 2)
    assert _memo_ops(written) > 0
    assert memoize_like_pickler(written) == written
