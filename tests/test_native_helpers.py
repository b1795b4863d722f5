"""The compiled zip-directory parser, entry filter and opcode tally agree with their pure-Python versions."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safepickle_bench.analysis import analyze_bytes, containers, symbolic
from safepickle_bench.analysis.native import pure_python

PURE = os.environ.get("SAFEPICKLE_PURE_PYTHON", "") not in ("", "0")
pytestmark = pytest.mark.skipif(PURE, reason="SAFEPICKLE_PURE_PYTHON=1: the compiled helpers are switched off")
WILD = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "wild"


def _both(data: bytes) -> tuple[dict, dict]:
    """Analyse the same bytes with the compiled container helpers and without them."""
    fast = analyze_bytes(data, "f", compute_sha256=False).to_dict()
    with pure_python():
        slow = analyze_bytes(data, "f", compute_sha256=False).to_dict()
    for d in (fast, slow):
        d.pop("timings", None)
    return fast, slow


def _zip(entries: dict[str, bytes], *, force_zip64: bool = False, comment: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, body in entries.items():
            with z.open(zipfile.ZipInfo(name), "w", force_zip64=force_zip64) as fh:
                fh.write(body)
        z.comment = comment
    return buf.getvalue()


_PAYLOAD = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00hi\x85R."
_ZIPS = {
    "torch-like": _zip({"m/data.pkl": pickle.dumps({"a": 1}, 2), "m/data/0": b"\x00" * 8, "m/data/1": b"x",
                        "m/version": b"3\n", "m/constants/4": b"", "m/data/12\n": _PAYLOAD, "m/": b""}),
    "zip64": _zip({"archive/data.pkl": _PAYLOAD, "archive/data/0": b"\x01" * 4}, force_zip64=True),
    "names": _zip({"caf\u00e9/d\u00e4ta.pkl": _PAYLOAD, "\u0663/data/\u0663": b"", "x/data/\u0663\u0664": _PAYLOAD}),
    "plain": _zip({"a.pkl": _PAYLOAD, "b.bin": b"\x80\x04K\x01.", "dir/": b""}, comment=b"hello"),
}


@pytest.mark.parametrize("name", sorted(_ZIPS))
def test_compiled_zip_helpers_give_the_pure_python_analysis(name):
    data = _ZIPS[name]
    fast, slow = _both(data)
    assert fast == slow


@pytest.mark.parametrize("name", sorted(_ZIPS))
def test_compiled_zip_helpers_agree_on_damaged_and_wrapped_zips(name):
    data = _ZIPS[name]
    cd = data.rfind(b"PK\x01\x02")
    variants = [b"junk" * 10 + data, data + b"tail", data[:cd + 10] + b"\xff" * 5 + data[cd + 15:], data[:-30],
                data.replace(b"PK\x01\x02", b"PK\x01\x03", 1)]
    for v in variants:
        fast, slow = _both(v)
        assert fast == slow


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=12), max_size=12), st.booleans())
def test_compiled_entry_filter_matches_the_regex_rule(names, torch_like):
    names += ["data/1", "a/data/22", "constants/3", "data/1\n", "data/1\n\n", "xdata/1", "data/", "d/", "data/x1"]
    native = symbolic._NATIVE
    assert native is not None
    expected = [i for i, n in enumerate(names)
                if not (n.endswith("/") or (torch_like and containers._TORCH_TENSOR_ENTRY.search(n)))]
    assert native.entries_to_read(names, torch_like) == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=5000), st.booleans())
def test_compiled_tally_matches_the_python_tally(seq, want_protocol):
    native = symbolic._NATIVE
    assert native is not None
    with pure_python():
        expected = symbolic._tally(bytearray(seq), want_protocol)
    got = native.tally(seq, want_protocol)
    assert got == expected
    assert list(got[0]) == list(expected[0])  # same key order too


def test_compiled_tally_orders_long_sequences_by_opcode_byte():
    seq = bytes([0x4B, 0x2E] * 3000)  # BININT1 seen first, but STOP (0x2E) has the lower byte
    counts = symbolic._NATIVE.tally(seq, True)[0]
    assert list(counts) == ["STOP", "BININT1"]
    assert list(symbolic._NATIVE.tally(seq[:100], True)[0]) == ["BININT1", "STOP"]  # short: first-seen order


def _analyze_json(files: list[str], pure: bool) -> list[dict]:
    """Run the analyze CLI in a fresh process, with or without the compiled fast paths."""
    import json
    import subprocess
    import sys

    env = {**os.environ, "SAFEPICKLE_PURE_PYTHON": "1" if pure else "0"}
    out = subprocess.run([sys.executable, "-m", "safepickle_bench", "analyze", "--json", "--no-hash", *files],
                         capture_output=True, text=True, env=env, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [json.loads(line) for line in out.stdout.split("\n") if line.strip()]
    for r in rows:
        r.pop("timings", None)
    return rows


@pytest.mark.skipif(not WILD.is_dir(), reason="wild corpus not present")
def test_analyze_cli_prints_the_same_json_with_and_without_the_compiled_fast_paths():
    files = sorted(str(f) for f in WILD.rglob("*") if f.is_file() and f.name != "MANIFEST.csv")
    fast, pure = _analyze_json(files, pure=False), _analyze_json(files, pure=True)
    assert len(fast) == len(files) >= 100
    for a, b in zip(fast, pure, strict=True):
        assert a == b, a["path"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=3))
def test_compiled_ngram_hashing_matches_the_numpy_version(seqs):
    import numpy as np

    from safepickle_bench.analysis.result import Analysis, Stream
    from safepickle_bench.features import ngrams

    streams = [Stream(f"f#{i}", 0, len(s), 2, True, True, len(s), {}, s, [], [], [], 0, [], 0, 0, 0, 0, i % 2, 0)
               for i, s in enumerate(seqs)]
    analysis = Analysis(path="f", size=0, sha256="", streams=streams)
    fast = ngrams.compute(analysis)
    with pure_python():
        assert ngrams._NATIVE is None
        slow = ngrams.compute(analysis)
    assert ngrams._NATIVE is not None
    assert np.array_equal(fast, slow)
