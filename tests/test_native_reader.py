"""The compiled stream reader gives exactly what the pure-Python engine gives, or hands the stream over."""

from __future__ import annotations

import collections
import datetime
import decimal
import io
import os
import pickle
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safepickle_bench.analysis import symbolic
from safepickle_bench.analysis.limits import DEFAULT_LIMITS, Limits
from safepickle_bench.analysis.native import pure_python
from safepickle_bench.analysis.symbolic import Global, LazyCallRecord, Obj, _Engine, read_native_stream

WILD = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "wild"
PURE = os.environ.get("SAFEPICKLE_PURE_PYTHON", "") not in ("", "0")
needs_native = pytest.mark.skipif(PURE, reason="SAFEPICKLE_PURE_PYTHON=1: the compiled reader is switched off")

_OBJECTS: list[Any] = [
    None, True, 7, -2**40, 2**70, -(2**63), 255, 65535, -1, 3.5, float("inf"), "x" * 40, "é\u20ac\U0001f600",
    b"\x00\xff" * 9, b"z" * 300, (1, "a"), [1, [2, [3]]], {"k": (1.0, None)}, {1, 2, 3}, frozenset({"a"}),
    bytearray(b"abc"), collections.OrderedDict(a=1, b=[2]), datetime.date(2020, 1, 2), decimal.Decimal("1.5"),
    complex(1, 2), range(3), slice(1, 5, 2), collections.Counter("hello"), [{"a": i, "b": str(i)} for i in range(5)],
    {(1, 2): "tuple key"}, {i: str(i) for i in range(3000)}, list(range(2000)), ["shared"] * 3,
    np.arange(6, dtype=np.float32).reshape(2, 3), np.array(["a", None], dtype=object), "x" * 70_000,
]


def _deep(v: Any, depth: int = 0) -> Any:
    """Return a comparable structure of a symbolic value (Global/Obj fields included, depth-limited)."""
    if depth > 12:
        return "..."
    t = type(v)
    if t is Global:
        return ("G", v.module, v.name, v.qual)
    if t is Obj:
        return ("O", v.callable, v.kind, _deep(v.args, depth + 1), _deep(v.state, depth + 1), repr(v.extra))
    if t in (tuple, list):
        return (t.__name__, [_deep(x, depth + 1) for x in v[:50]], len(v))
    if t is dict:
        return ("dict", [(_deep(k, depth + 1), _deep(x, depth + 1)) for k, x in list(v.items())[:50]], len(v))
    if t in (set, frozenset):
        return (t.__name__, sorted(map(repr, v))[:50], len(v))
    if t is float and v != v:
        return ("nan",)
    return (t.__name__, v)


def _record(run: symbolic.StreamRun) -> dict[str, Any]:
    return {
        "stream": run.stream.to_dict(with_seq=True),
        "file_end": run.file_end,
        "extra": [s.to_dict(with_seq=True) for s in run.extra_streams],
        "persistent_ids": _deep(run.persistent_ids),
        "value": _deep(run.value),
        "arrays": run.joblib_arrays,
    }


def _engine(data: bytes, start: int = 0, limits: Limits = DEFAULT_LIMITS) -> tuple[dict[str, Any], int]:
    budget = [limits.max_decompressed_bytes]
    with pure_python():  # the reference, also for the streams it reads inside others
        run = _Engine().run(data, start, len(data), "f#0", limits, 0, time.monotonic() + 60, budget)
    return _record(run), budget[0]


def _native(data: bytes, start: int = 0, limits: Limits = DEFAULT_LIMITS) -> tuple[dict[str, Any] | None, int]:
    budget = [limits.max_decompressed_bytes]
    run = read_native_stream(data, start, len(data), "f#0", limits, 0, time.monotonic() + 60, budget)
    return (None if run is None else _record(run)), budget[0]


def _matches_or_gives_up(data: bytes) -> bool:
    """Assert the compiled reader gives the engine's result, or gives up leaving the budget untouched; True if it
    answered."""
    got, budget = _native(data)
    if got is None:
        assert budget == DEFAULT_LIMITS.max_decompressed_bytes  # giving up leaves no trace
        return False
    assert (got, budget) == _engine(data)
    return True


def _torch_pickles() -> list[tuple[str, bytes]]:
    """The data.pkl of real torch.save state dicts and modules (read from the zip as bytes)."""
    torch = pytest.importorskip("torch")
    out = []
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
    for name, obj in [("state_dict", model.state_dict()), ("module", model),
                      ("mixed", {"step": 3, "lr": [0.1], "t": torch.zeros(2, dtype=torch.bfloat16)})]:
        buf = io.BytesIO()
        torch.save(obj, buf)
        with zipfile.ZipFile(buf) as z:
            out += [(f"torch-{name}", z.read(n)) for n in z.namelist() if n.endswith("data.pkl")]
    return out


def _sklearn_pickles() -> list[tuple[str, bytes]]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] > 0).astype(int)
    models = [make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y),
              RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(x, y)]
    return [(f"sklearn{i}-p{p}", pickle.dumps(m, protocol=p)) for i, m in enumerate(models) for p in (2, 4, 5)]


def _inputs() -> list[tuple[str, bytes]]:
    items = [(f"obj{i}-p{p}", pickle.dumps(o, protocol=p)) for i, o in enumerate(_OBJECTS) for p in range(6)]
    items += _torch_pickles() + _sklearn_pickles()
    if WILD.is_dir():
        items += [(f.name, f.read_bytes()) for f in sorted(WILD.rglob("*")) if f.is_file() and f.name != "MANIFEST.csv"]
    return items


def test_native_extension_is_built_unless_pure_python_is_asked_for():
    if PURE:
        assert not symbolic.native_available()
    else:
        assert symbolic.native_available(), (
            "safepickle_bench.analysis._native is not built (pip install -e . needs a C compiler and the Python "
            "headers); set SAFEPICKLE_PURE_PYTHON=1 to run on the pure-Python reader on purpose"
        )


@needs_native
def test_native_reader_matches_the_engine_on_real_pickles_whenever_it_answers():
    answered: list[str] = []
    for name, data in _inputs():
        if _matches_or_gives_up(data):
            answered.append(name)
    # The comparison means something only if the compiled reader answered for the files that matter.
    assert {n for n in answered if n.startswith("torch-")} == {"torch-state_dict", "torch-module", "torch-mixed"}
    assert {"sklearn0-p5", "sklearn1-p5", "sklearn1-p2", "sklearn1-p4"} <= set(answered)
    assert len(answered) >= 150, f"answered only {len(answered)}"


@needs_native
def test_native_reader_records_are_the_engines_record_types():
    data = pickle.dumps(collections.OrderedDict(a=datetime.date(2020, 1, 2)), protocol=2)
    budget = [DEFAULT_LIMITS.max_decompressed_bytes]
    run = read_native_stream(data, 0, len(data), "f#0", DEFAULT_LIMITS, 0, time.monotonic() + 60, budget)
    assert run is not None
    assert all(type(c) is LazyCallRecord and c.pending for c in run.stream.calls)
    assert [c.callable for c in run.stream.calls] == ["collections.OrderedDict", "_codecs.encode", "datetime.date"]
    assert run.stream.calls[1].args.startswith("('\\x07")  # the date's bytes, latin-1 text for protocol 2
    assert {i.qualname for i in run.stream.imports} == {"collections.OrderedDict", "datetime.date", "_codecs.encode"}


@needs_native
@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00hi\x85R.",  # a payload: answered, and the same
        b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x8c\x07getattr\x93.",
        b"\x80\x04\xff",  # unknown opcode
        b"(I1\n",  # protocol 0 text
        b"\x80\x02h\x05.",  # missing memo key
        b"\x80\x02].",  # fine
        b"\x80\x02K",  # truncated
        b"\x80\x02cbuiltins\ngetattr\nq\x00.",
        b"\x80\x02ccollections\nOrderedDict\nq\x00)R}b.",
        b"\x80\x02c__builtin__\nset\nq\x00.",  # protocol 2 name mapping
        b"\x80\x02X\x01\x00\x00\x00a\x8c\x01b\x93.",
    ],
)
def test_native_reader_gives_up_or_matches_on_payloads_and_malformed_streams(data):
    _matches_or_gives_up(data)


@needs_native
def test_native_reader_decodes_latin1_bytes_calls_and_spends_the_budget_like_the_engine():
    data = pickle.dumps(b"\x00\x01payload" * 10, protocol=2)  # _codecs.encode('...', 'latin1')
    got, budget = _native(data)
    assert got is not None
    assert (got, budget) == _engine(data)
    assert budget == DEFAULT_LIMITS.max_decompressed_bytes - 90


@needs_native
def test_native_reader_hands_limits_to_the_engine():
    data = pickle.dumps(list(range(100)), protocol=2)
    for limits in (Limits(max_opcodes=10), Limits(max_stack_depth=3)):
        got, _ = _native(data, limits=limits)
        assert got is None
    big = pickle.dumps(["s"] * 10, protocol=2)
    got, _ = _native(big, limits=Limits(max_string_literals=3, max_string_chars=1))
    assert got is not None and got == _engine(big, limits=Limits(max_string_literals=3, max_string_chars=1))[0]


_SEEDS = [pickle.dumps(o, protocol=p) for o in _OBJECTS[:30] for p in range(6)]


@needs_native
@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(_SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 10_000),
)
def test_native_reader_matches_the_engine_on_mutated_pickles(seed, edits, cut):
    data = bytearray(seed)
    for i, b in edits:
        data[i % len(data)] = b
    _matches_or_gives_up(bytes(data[: max(1, len(data) - cut % 8)]))


@needs_native
@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=64))
def test_native_reader_matches_or_gives_up_on_random_bytes(data):
    _matches_or_gives_up(b"\x80\x02" + data)
