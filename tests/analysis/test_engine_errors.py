"""A failing decoder or a bug in a handler never costs what a stream showed: the stream keeps its records,
the rest of it is still tokenized, and the error is an anomaly of that stream."""

from __future__ import annotations

import ast
import base64
import pickletools
from collections.abc import Iterator
from pathlib import Path

import pytest

from safepickle_bench.analysis import analyze_bytes
from safepickle_bench.analysis import opcodes as ops
from safepickle_bench.analysis.decoders import decode_call
from safepickle_bench.analysis.handlers import DISPATCH
from safepickle_bench.models.explain import analyzer_reasons

B64_WITH_BAD_ALTCHARS = (
    b"\x80\x02cposix\nsystem\nX\x04\x00\x00\x00echoq\x00\x85R0"
    b"cbase64\nb64decode\nX\x04\x00\x00\x00aGk=X\x04\x00\x00\x00zlib\x86R."
)
"""Runs posix.system in the real loader, which fails only afterwards, at b64decode's altchars check."""


def test_b64decode_with_bad_altchars_is_recorded_as_it_is_and_the_payload_is_flagged(no_dangerous_events):
    analysis = analyze_bytes(B64_WITH_BAD_ALTCHARS, "repro.pkl")
    assert len(analysis.streams) == 1
    assert [a for a in analysis.all_anomalies() if a.kind == "internal_error"] == []
    calls = [(c.callable, c.opcode, c.args) for c in analysis.all_calls()]
    assert calls == [("posix.system", "REDUCE", "('echo',)"), ("base64.b64decode", "REDUCE", "('aGk=', 'zlib')")]
    assert "posix.system" in {i.qualname for i in analysis.all_imports()}
    flagged = {(r["kind"], r["global"], r["category"]) for r in analyzer_reasons(analysis, max_items=50)}
    assert ("call", "posix.system", "process_shell") in flagged


@pytest.mark.parametrize("altchars", [b"zlib", b"-", b"-_", "-_", "zlib", "\u00e9\u00e8", b"", "", b"+/"])
def test_b64decode_is_evaluated_exactly_when_the_real_call_succeeds(altchars):
    try:
        expected = base64.b64decode(b"aGk=", altchars)
    except (AssertionError, ValueError):
        expected = None
    got = decode_call("base64.b64decode", ("aGk=", altchars), 1 << 20)
    assert got == (base64.b64decode(b"aGk=") if not altchars else expected)  # empty altchars: none given


def _stream_with_a_failing_opcode() -> tuple[bytes, int]:
    """Imports and calls, then NEWFALSE (made to fail), then more imports, calls and strings; return the bytes
    and the NEWFALSE offset."""
    head = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00hi\x85R0cbuiltins\nlen\n)R0"
    tail = b"0cbuiltins\neval\nX\x03\x00\x00\x001+1\x85R0N."
    return head + b"\x89" + tail, len(head)


@pytest.fixture
def broken_newfalse() -> Iterator[None]:
    """Make the NEWFALSE handler fail (it stands for any bug in a handler) for one test."""

    def broken_handler(m, p):  # noqa: ANN001, ANN202
        raise ZeroDivisionError("a bug in a handler")

    code = ops.NAME_TO_CODE["NEWFALSE"]
    saved = DISPATCH[code]
    DISPATCH[code] = broken_handler
    try:
        yield
    finally:
        DISPATCH[code] = saved


def test_an_internal_error_mid_stream_keeps_what_was_found_and_counts_the_rest(broken_newfalse):
    data, failing_at = _stream_with_a_failing_opcode()
    analysis = analyze_bytes(data, "f.pkl")
    assert [a.kind for a in analysis.anomalies] == []  # no file-level failure
    (stream,) = analysis.streams
    errors = [a for a in stream.anomalies if a.kind == "internal_error"]
    assert len(errors) == 1 and errors[0].offset == failing_at and "ZeroDivisionError" in errors[0].detail
    reduces = [pos for op, _, pos in pickletools.genops(data) if op.name == "REDUCE" and pos < failing_at]
    assert [(c.callable, c.offset) for c in stream.calls] == list(zip(["os.system", "builtins.len"], reduces, strict=True))
    assert [i.qualname for i in stream.imports] == ["os.system", "builtins.len", "builtins.eval"]
    assert "1+1" in stream.strings
    assert stream.n_opcodes == sum(1 for _ in pickletools.genops(data))
    assert stream.opcode_seq == bytes(op.code.encode("latin-1")[0] for op, _, _ in pickletools.genops(data))
    assert stream.complete and stream.end == len(data)


def test_a_recursion_in_call_semantics_is_an_anomaly_of_its_stream_not_a_lost_stream():
    # partial(os.system), whose BUILD state makes it wrap itself: calling it recurses without end
    data = b"\x80\x02cfunctools\npartial\ncos\nsystem\n\x85R\x94h\x00(h\x00)}Ntbh\x00X\x02\x00\x00\x00hi\x85R."
    analysis = analyze_bytes(data, "f.pkl")
    assert [a.kind for a in analysis.anomalies] == []
    (stream,) = analysis.streams
    assert [a.kind for a in stream.anomalies] == ["internal_error"]
    assert "RecursionError" in stream.anomalies[0].detail
    assert "os.system" in {i.qualname for i in stream.imports}
    assert [c.callable for c in stream.calls][:2] == ["functools.partial", "functools.partial"]
    assert stream.complete and stream.n_opcodes == sum(1 for _ in pickletools.genops(data))


def test_no_assert_statement_in_the_analyzer():
    package = Path(__file__).resolve().parents[2] / "safepickle_bench" / "analysis"
    found = [
        f"{src.name}:{node.lineno}"
        for src in sorted(package.rglob("*.py"))
        for node in ast.walk(ast.parse(src.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert found == []
