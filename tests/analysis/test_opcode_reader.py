"""The tolerant opcode reader follows what `_pickle.c` accepts and reports malformed input as anomalies."""

from __future__ import annotations

import _compat_pickle
import pickle
import pickletools
import struct

import pytest

from safepickle_bench.analysis import opcodes as ops
from safepickle_bench.analysis.limits import Limits
from safepickle_bench.analysis.opcodes import tokenize
from safepickle_bench.analysis.streams import read_streams


def _loader_name(module: str, name: str, protocol: int) -> tuple[str, str]:
    """Return what `find_class` imports for a GLOBAL (Python 2 names are mapped below protocol 3)."""
    if protocol < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            return _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return module, name


def _benign_objects() -> list[object]:
    return [
        None,
        True,
        [1, -1, 255, 256, 65535, 65536, 2**31 - 1, -(2**31), 2**40, -(2**70), 10**30],
        {"a": 1.5, "b": float("inf"), "c": -0.0, "d": "x" * 300, "é": "naïve ☃"},
        (b"", b"abc", b"\x00" * 300, bytearray(b"ba")),
        {1, 2, 3},
        frozenset({"x"}),
        [[], (), {}, ((1,),), [[[]]]],
        range(5),
        complex(1, 2),
        {"shared": (s := [1, 2]), "again": s},
        pickle.PickleBuffer(b"buffer") if hasattr(pickle, "PickleBuffer") else b"",
    ]


@pytest.mark.parametrize("protocol", range(6))
def test_tokenizer_matches_genops_on_benign_pickles(protocol: int) -> None:
    for obj in _benign_objects():
        if protocol < 5 and isinstance(obj, pickle.PickleBuffer):
            continue
        data = pickle.dumps(obj, protocol=protocol)
        ref = [(op.code, arg, pos) for op, arg, pos in pickletools.genops(data)]
        tok = tokenize(data)
        assert tok.complete and not tok.anomalies
        got = [(chr(code), arg, pos) for pos, code, arg in tok.tokens]
        norm = [(c, " ".join(a) if isinstance(a, tuple) else a, p) for c, a, p in got]
        ref_norm = [(c, a.encode("latin-1") if c == "S" and isinstance(a, str) else a, p) for c, a, p in ref]
        assert norm == ref_norm


@pytest.mark.parametrize("protocol", range(6))
def test_symbolic_reader_counts_match_genops(protocol: int) -> None:
    for obj in _benign_objects():
        if protocol < 5 and isinstance(obj, pickle.PickleBuffer):
            continue
        data = pickle.dumps(obj, protocol=protocol)
        ref = [op for op, _, _ in pickletools.genops(data)]
        stream = read_streams(data, "x").streams[0]
        assert stream.complete and not stream.anomalies
        assert stream.n_opcodes == len(ref)
        assert stream.opcode_seq == bytes(ord(op.code) for op in ref)
        counts: dict[str, int] = {}
        for op in ref:
            counts[op.name] = counts.get(op.name, 0) + 1
        assert stream.opcode_counts == counts
        ref_globals = [
            _loader_name(*a.split(" "), protocol)
            for op, a, _ in pickletools.genops(data)
            if op.name == "GLOBAL"
        ]
        assert [(i.module, i.name) for i in stream.imports if i.opcode == "GLOBAL"] == ref_globals


def test_protocol_is_proto_value_or_highest_opcode_protocol() -> None:
    assert read_streams(pickle.dumps([1], protocol=4), "x").streams[0].protocol == 4
    no_proto = b"]K\x01a."  # EMPTY_LIST (proto 1), BININT1, APPEND
    s = read_streams(no_proto, "x").streams[0]
    assert (s.protocol, s.has_proto, s.complete) == (1, False, True)


def test_text_int_follows_strtol_like_pickle_c() -> None:
    assert ops.parse_int_line(b"01") is True
    assert ops.parse_int_line(b"00") is False
    assert ops.parse_int_line(b"1") == 1 and ops.parse_int_line(b"1") is not True
    assert ops.parse_int_line(b"010") == 8  # C strtol base 0: octal
    assert ops.parse_int_line(b"0x1f") == 31
    assert ops.parse_int_line(b"  -7") == -7
    assert ops.parse_int_line(b"5\x00junk") == 5
    assert ops.parse_int_line(b"123456789012345678901234567890") == 123456789012345678901234567890
    with pytest.raises(ValueError):
        ops.parse_int_line(b"12abc")
    with pytest.raises(ValueError):
        ops.parse_int_line(b"9" * 5000, max_digits=4300)


def test_text_long_accepts_l_suffix_and_base_prefixes() -> None:
    assert ops.parse_long_line(b"123L") == 123
    assert ops.parse_long_line(b"123") == 123
    assert ops.parse_long_line(b"0x10") == 16
    with pytest.raises(ValueError):
        ops.parse_long_line(b"L")


def test_float_and_string_lines_follow_pickle_c() -> None:
    assert ops.parse_float_line(b"1.5") == 1.5
    assert ops.parse_float_line(b"nan") != ops.parse_float_line(b"nan")
    with pytest.raises(ValueError):
        ops.parse_float_line(b" 1.5")  # PyOS_string_to_double does not skip spaces
    with pytest.raises(ValueError):
        ops.parse_float_line(b"1e999")
    assert ops.parse_string_line(b"'abc'") == b"abc"
    assert ops.parse_string_line(b'"a\\x41\\n"') == b"aA\n"
    with pytest.raises(ValueError):
        ops.parse_string_line(b"'unterminated")
    with pytest.raises(ValueError):
        ops.parse_string_line(b"'mismatch\"")


def test_text_opcodes_genops_rejects_are_read() -> None:
    # pickletools.genops rejects INT 'I01' only after value checks, LONG with 'L', and unquoted-escape
    # STRINGs differently; _pickle.c accepts each of these.
    data = b"(I01\nL12L\nS'a\\x41'\nI0x10\nt."
    s = read_streams(data, "x").streams[0]
    assert s.complete and not s.anomalies
    assert s.strings == ["aA"]


def test_binunicode_with_lone_surrogate_is_accepted() -> None:
    raw = "\ud800x".encode("utf-8", "surrogatepass")
    data = b"X" + struct.pack("<I", len(raw)) + raw + b"."
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # strict UTF-8 would reject it; the loader uses surrogatepass
    s = read_streams(data, "x").streams[0]
    assert s.complete and not s.anomalies and s.strings == ["\ud800x"]


def test_frame_needs_its_bytes_but_not_aligned_opcodes() -> None:
    body = b"K\x01K\x02\x86."
    data = b"\x80\x04\x95" + struct.pack("<Q", 3) + body  # frame shorter than the rest: _pickle.c reads on
    s = read_streams(data, "x").streams[0]
    assert s.complete and s.n_opcodes == 6
    truncated = b"\x80\x04\x95" + struct.pack("<Q", 100) + body
    s2 = read_streams(truncated, "x").streams[0]
    assert not s2.complete and [a.kind for a in s2.anomalies] == ["truncated"]


def test_unknown_opcode_is_an_anomaly_with_offset() -> None:
    data = b"\x80\x02K\x01\xff."
    tok = tokenize(data)
    assert [(a.kind, a.offset) for a in tok.anomalies] == [("unknown_opcode", 4)]
    assert [code for _, code, _ in tok.tokens] == [0x80, ord("K")]
    s = read_streams(data, "x").streams[0]
    assert [(a.kind, a.offset) for a in s.anomalies] == [("unknown_opcode", 4)]
    assert s.n_opcodes == 2 and not s.complete


@pytest.mark.parametrize(
    "data",
    [
        b"X\x05\x00\x00\x00ab",
        b"\x8c\x10abc",
        b"J\x01\x02",
        b"r\x01",
        b"h",
        b"G\x00\x00",
        b"Vabc",
        b"cos\nsys",
    ],
)
def test_truncated_argument_is_an_anomaly(data: bytes) -> None:
    tok = tokenize(b"N" + data)
    assert [a.kind for a in tok.anomalies] == ["truncated"]
    s = read_streams(b"N" + data, "x").streams[0]
    assert [a.kind for a in s.anomalies] == ["truncated"] and not s.complete


def test_missing_stop_is_an_anomaly() -> None:
    s = read_streams(b"\x80\x04K\x01", "x").streams[0]
    assert [a.kind for a in s.anomalies] == ["no_stop"] and not s.complete


def test_opcode_limit_is_an_anomaly_not_an_exception() -> None:
    data = b"(" + b"K\x01" * 5000 + b"l."
    limits = Limits(max_opcodes=100)
    s = read_streams(data, "x", limits).streams[0]
    assert s.n_opcodes == 100 and [a.kind for a in s.anomalies] == ["limit_opcodes"]
    assert [a.kind for a in tokenize(data, limits=limits).anomalies] == ["limit_opcodes"]


def test_bad_text_int_is_recorded_and_reading_goes_on() -> None:
    data = b"I12abc\nK\x01."
    s = read_streams(data, "x").streams[0]
    assert [a.kind for a in s.anomalies] == ["bad_argument"]
    assert s.complete and s.n_opcodes == 3


def test_unsupported_protocol_is_bad_argument() -> None:
    s = read_streams(b"\x80\x09N.", "x").streams[0]
    assert [a.kind for a in s.anomalies] == ["bad_argument"] and s.complete


def test_opcode_table_covers_every_pickletools_opcode() -> None:
    for op in pickletools.opcodes:
        code = ord(op.code)
        assert ops.OPCODE_NAME[code] == op.name and ops.OPCODE_PROTO[code] == op.proto
    assert len(ops.VALID_OPCODES) == len(pickletools.opcodes)
