"""The engine's records on real-world pickles stay what they were when the goldens were recorded.

Inputs: every protocol of a list of everyday objects, torch `data.pkl` of a state dict, a module and a bf16
tensor dict, scikit-learn pickles, nested streams, and every file of the wild corpus (read as one stream from
offset 0, named by the sha256 of its content, never by its file name). Each input's record (the `Stream` with
its opcode sequence, the streams found inside it, the persistent ids, a structural summary of the value at
STOP, the joblib array count, the file end and the decoding budget left) is stored as a sha256 digest in
`golden/engine_records.json`.

Regenerate (only when a change of the records is intended, and say why in the commit):
    python tests/analysis/test_engine_golden.py
"""

from __future__ import annotations

import collections
import datetime
import decimal
import hashlib
import io
import json
import os
import pickle
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from safepickle_bench.analysis.engine import StreamRun, simulate_stream
from safepickle_bench.analysis.limits import DEFAULT_LIMITS, Limits
from safepickle_bench.analysis.values import Global, Obj
from safepickle_bench.paths import wild_dir

GOLDEN = Path(__file__).parent / "golden" / "engine_records.json"

_OBJECTS: list[Any] = [
    None, True, 7, -2**40, 2**70, -(2**63), 255, 65535, -1, 3.5, float("inf"), "x" * 40, "é\u20ac\U0001f600",
    b"\x00\xff" * 9, b"z" * 300, (1, "a"), [1, [2, [3]]], {"k": (1.0, None)}, {1, 2, 3}, frozenset({"a"}),
    bytearray(b"abc"), collections.OrderedDict(a=1, b=[2]), datetime.date(2020, 1, 2), decimal.Decimal("1.5"),
    complex(1, 2), range(3), slice(1, 5, 2), collections.Counter("hello"), [{"a": i, "b": str(i)} for i in range(5)],
    {(1, 2): "tuple key"}, {i: str(i) for i in range(3000)}, list(range(2000)), ["shared"] * 3,
    np.arange(6, dtype=np.float32).reshape(2, 3), np.array(["a", None], dtype=object), "x" * 70_000,
]  # fmt: skip


def _summary(value: Any) -> Any:  # noqa: ANN401
    """Return a JSON-ready structural summary of a symbolic value (memoised: shared and cyclic values are cheap)."""
    seen: dict[int, int] = {}
    keep: list[Any] = []  # keeps summarised values alive, so an id is never reused during one summary

    def walk(v: Any, depth: int) -> Any:  # noqa: ANN401
        if depth > 12:
            return "..."
        t = type(v)
        if t in (tuple, list, dict, set, frozenset, Obj):
            if id(v) in seen:
                return ["ref", seen[id(v)]]
            seen[id(v)] = len(seen)
            keep.append(v)
        if t is Global:
            return ["G", v.module, v.name, v.qual]
        if t is Obj:
            return ["O", v.callable, v.kind, walk(v.args, depth + 1), walk(v.state, depth + 1), repr(v.extra)]
        if t in (tuple, list):
            return [t.__name__, [walk(x, depth + 1) for x in v[:50]], len(v)]
        if t is dict:
            return ["dict", [[walk(k, depth + 1), walk(x, depth + 1)] for k, x in list(v.items())[:50]], len(v)]
        if t in (set, frozenset):
            return [t.__name__, sorted(map(repr, v))[:50], len(v)]
        if t is float:
            return ["float", repr(v)]
        if t is int:
            return ["int", hashlib.sha256(hex(v).encode()).hexdigest()[:16] if v.bit_length() > 64 else v]
        if t in (bytes, bytearray):
            return [t.__name__, hashlib.sha256(v).hexdigest()[:16], len(v)]
        if t is str:
            return ["str", hashlib.sha256(v.encode("utf-8", "surrogatepass")).hexdigest()[:16], len(v)]
        text = repr(v)
        return [t.__name__, "" if " at 0x" in text else text]  # no memory addresses: they change per run

    return walk(value, 0)


def engine_record(data: bytes, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Read `data` as one stream from offset 0 and return everything the engine reports about it."""
    budget = [limits.max_decompressed_bytes]
    run: StreamRun = simulate_stream(data, 0, "f#0", limits, deadline=time.monotonic() + 120, decode_budget=budget)
    return {
        "stream": run.stream.to_dict(with_seq=True),
        "file_end": run.file_end,
        "extra": [s.to_dict(with_seq=True) for s in run.extra_streams],
        "persistent_ids": _summary(run.persistent_ids),
        "value": _summary(run.value),
        "arrays": run.joblib_arrays,
        "budget_left": budget[0],
    }


def digest(record: dict[str, Any]) -> str:
    """Return the sha256 of a record's canonical JSON."""
    text = json.dumps(record, sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _torch_pickles() -> list[tuple[str, Callable[[], bytes]]]:
    """The data.pkl of torch.save state dicts, modules and a bf16 tensor dict (read from the zip as bytes)."""

    def make(name: str) -> bytes:
        import torch

        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
        obj = {
            "state_dict": model.state_dict(),
            "module": model,
            "mixed": {"step": 3, "lr": [0.1], "t": torch.zeros(2, dtype=torch.bfloat16)},
        }[name]
        buf = io.BytesIO()
        torch.save(obj, buf)
        with zipfile.ZipFile(buf) as z:
            return next(z.read(n) for n in z.namelist() if n.endswith("data.pkl"))

    return [(f"torch-{name}", lambda name=name: make(name)) for name in ("state_dict", "module", "mixed")]


def _sklearn_pickles() -> list[tuple[str, Callable[[], bytes]]]:
    def models() -> list[Any]:
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        rng = np.random.default_rng(0)
        x = rng.normal(size=(60, 4))
        y = (x[:, 0] > 0).astype(int)
        return [
            make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y),
            RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(x, y),
        ]

    return [
        (f"sklearn{i}-p{p}", lambda i=i, p=p: pickle.dumps(models()[i], protocol=p))
        for i in range(2)
        for p in (2, 4, 5)
    ]


def _nested_pickles() -> list[tuple[str, Callable[[], bytes]]]:
    """Streams that carry other streams (loads of bytes, of base64 and zlib text, of a BytesIO)."""
    import base64
    import zlib

    inner = pickle.dumps({"w": [1.0, 2.0], "name": "inner"}, protocol=2)
    b64 = base64.b64encode(zlib.compress(inner))
    out = [
        ("nested-loads", b"\x80\x02cpickle\nloads\nC" + bytes([len(inner)]) + inner + b"\x85R."),
        (
            "nested-b64-zlib",
            b"\x80\x02cpickle\nloads\nczlib\ndecompress\ncbase64\nb64decode\nC"
            + bytes([len(b64)]) + b64 + b"\x85R\x85R\x85R.",
        ),
        (
            "nested-unpickler",
            b"\x80\x02cbuiltins\ngetattr\ncpickle\nUnpickler\ncio\nBytesIO\nC" + bytes([len(inner)]) + inner
            + b"\x85R\x85RX\x04\x00\x00\x00load\x86R)R.",
        ),
    ]  # fmt: skip
    return [(name, lambda data=data: data) for name, data in out]


def inputs() -> list[tuple[str, Callable[[], bytes]]]:
    """Every golden input: a name and a function making its bytes."""
    items: list[tuple[str, Callable[[], bytes]]] = [
        (f"obj{i}-p{p}", lambda o=o, p=p: pickle.dumps(o, protocol=p)) for i, o in enumerate(_OBJECTS) for p in range(6)
    ]
    items += _torch_pickles() + _sklearn_pickles() + _nested_pickles()
    wild = wild_dir()
    if wild.is_dir():
        # keyed by content: no name from the hostile corpus is written into the golden
        items += [
            (f"wild:{hashlib.sha256(f.read_bytes()).hexdigest()}", lambda f=f: f.read_bytes())
            for f in sorted(wild.rglob("*"))
            if f.is_file() and f.suffix not in (".csv", ".md")
        ]
    return items


def _golden() -> dict[str, str]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))["records"]


def _cases() -> list[Any]:
    if not GOLDEN.is_file():
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=f"{GOLDEN} missing"))]
    golden = _golden()
    made = dict(inputs())
    return [pytest.param(name, made.get(name), id=name) for name in golden]


@pytest.mark.parametrize(("name", "make"), _cases())
def test_engine_record_matches_the_golden_record(name, make, no_dangerous_events):
    if make is None:
        if name.startswith("wild:") and os.environ.get("CI"):
            pytest.fail(f"{name}: the wild corpus is missing at {wild_dir()} in CI")
        pytest.skip(f"{name}: input not available here")
    if name.startswith(("torch-", "sklearn")):
        pytest.importorskip(name.split("-")[0].rstrip("0123456789"))
    record = engine_record(make())
    assert digest(record) == _golden()[name], json.dumps(record, default=repr)[:4000]


def test_golden_covers_every_kind_of_input():
    names = list(_golden()) if GOLDEN.is_file() else []
    assert sum(n.startswith("obj") for n in names) == 6 * len(_OBJECTS)
    assert {"torch-state_dict", "torch-module", "torch-mixed"} <= set(names)
    assert sum(n.startswith("sklearn") for n in names) == 6
    assert sum(n.startswith("nested-") for n in names) == 3


def _regenerate() -> None:
    """Record every input's digest into the golden file."""
    records = {name: digest(engine_record(make())) for name, make in inputs()}
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(
        json.dumps({"about": __doc__.split("\n\n")[0], "records": records}, indent=1, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    print(f"wrote {len(records)} records to {GOLDEN}", file=sys.stderr)


if __name__ == "__main__":
    _regenerate()
