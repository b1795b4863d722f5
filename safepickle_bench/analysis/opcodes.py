"""Table-driven, tolerant pickle opcode reader (protocols 0-5) that accepts what CPython's `_pickle.c` accepts.

The opcode table is built from `pickletools.opcodes` (code, name, argument kind, protocol). Argument
decoding follows `Modules/_pickle.c`, which is more permissive than `pickletools.genops`: text integers
are parsed like C `strtol` (octal, hex, `I01` is True), `LONG` takes an optional `L` suffix, `STRING`
only needs matching outer quotes, `BINUNICODE` decodes with `surrogatepass`, `FRAME` only needs its bytes
to be present. Malformed input never raises out of `tokenize`: it becomes an `Anomaly` with an offset.
"""

from __future__ import annotations

import codecs
import pickletools
import re
import struct
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from safepickle_bench.analysis.limits import DEFAULT_LIMITS, Limits
from safepickle_bench.analysis.result import Anomaly

HIGHEST_PROTOCOL = 5

# ---------------------------------------------------------------------------------------------------------
# The opcode table, indexed by opcode byte (None where no protocol defines the byte).

OPCODE_NAME: list[str | None] = [None] * 256
"""Opcode byte -> pickletools name."""
OPCODE_PROTO: list[int] = [0] * 256
"""Opcode byte -> protocol that introduced it."""
OPCODE_ARG: list[str | None] = [None] * 256
"""Opcode byte -> pickletools argument descriptor name (None for opcodes without an inline argument)."""
for _op in pickletools.opcodes:
    _c = ord(_op.code)
    OPCODE_NAME[_c] = _op.name
    OPCODE_PROTO[_c] = _op.proto
    OPCODE_ARG[_c] = _op.arg.name if _op.arg is not None else None
del _op, _c

NAME_TO_CODE: dict[str, int] = {n: c for c, n in enumerate(OPCODE_NAME) if n is not None}
"""pickletools name -> opcode byte."""
VALID_OPCODES: frozenset[int] = frozenset(NAME_TO_CODE.values())
"""Every byte that some protocol defines as an opcode."""


class ArgError(Exception):
    """An opcode argument the real loader rejects: `kind` is an anomaly kind, `next_pos` where reading may go on."""

    def __init__(self, kind: str, detail: str, next_pos: int | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.next_pos = next_pos


# ---------------------------------------------------------------------------------------------------------
# Text argument decoders (protocol 0 opcodes), following _pickle.c.

_STRTOL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))")
_STRTOD = re.compile(
    rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan)", re.IGNORECASE
)
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def _cut_nul(line: bytes) -> bytes:
    """Return the line up to its first NUL byte (C string semantics)."""
    i = line.find(b"\x00")
    return line if i < 0 else line[:i]


def _pylong_from_string(text: bytes, base: int, max_digits: int) -> int:
    """Parse like `PyLong_FromString` (Python `int(text, base)`), bounded by `max_digits`; ValueError if bad."""
    if len(text) > max_digits + 64 and base != 16:
        stripped = text.strip().lstrip(b"+-").replace(b"_", b"")
        if len(stripped) > max_digits and stripped[:2].lower() not in (b"0x", b"0o", b"0b"):
            raise ValueError(f"integer text of {len(stripped)} digits exceeds max_int_digits")
    return int(text.decode("latin-1"), base)


def parse_int_line(line: bytes, max_digits: int = 4300) -> int | bool:
    """Decode an `INT` argument line (without its newline) the way `load_int` does; ValueError if rejected."""
    if not line:
        raise ValueError("empty INT line")
    s = _cut_nul(line + b"\n")
    m = _STRTOL.match(s)
    value: int | None = None
    if m is not None:
        sign, hexd, octd, decd = m.groups()
        endp = m.end()
        if endp == len(s) or s[endp] == 0x0A:
            if hexd is not None:
                v = int(hexd, 16)
            elif octd is not None:
                v = int(octd, 8)
            elif len(decd) <= 20:
                v = int(decd)
            else:
                v = _LONG_MAX + 1
            if sign == b"-":
                v = -v
            if _LONG_MIN <= v <= _LONG_MAX:
                value = v
    elif s[:1] in (b"\n", b""):
        value = 0  # strtol converted nothing and stopped at the newline or NUL: 0, accepted
    if value is None:
        # Out of C long range or trailing junk: _pickle.c retries with PyLong_FromString(s, NULL, 0).
        return _pylong_from_string(s, 0, max_digits)
    if len(line) == 2 and value in (0, 1):
        return bool(value)
    return value


def parse_long_line(line: bytes, max_digits: int = 4300) -> int:
    """Decode a `LONG` argument line (optional trailing `L`) the way `load_long` does; ValueError if rejected."""
    if not line:
        raise ValueError("empty LONG line")
    if line.endswith(b"L"):
        line = line[:-1]
    return _pylong_from_string(_cut_nul(line), 0, max_digits)


def parse_decimal_key(line: bytes, max_digits: int = 4300) -> int:
    """Decode a `GET`/`PUT` memo key line (`PyLong_FromString(s, NULL, 10)`); ValueError if rejected."""
    if not line:
        raise ValueError("empty memo key line")
    return _pylong_from_string(_cut_nul(line), 10, max_digits)


def parse_float_line(line: bytes) -> float:
    """Decode a `FLOAT` argument line the way `load_float` (`PyOS_string_to_double`) does; ValueError if rejected."""
    if not line:
        raise ValueError("empty FLOAT line")
    s = _cut_nul(line)
    m = _STRTOD.match(s)
    if m is None or m.end() != len(s):
        raise ValueError("could not convert string to float")
    text = m.group(0)
    value = float(text)
    if value in (float("inf"), float("-inf")) and b"inf" not in text.lower():
        raise ValueError("FLOAT out of range")
    return value


def parse_string_line(line: bytes) -> bytes:
    """Decode a `STRING` argument (quoted, backslash escapes) the way `load_string` does; ValueError if rejected."""
    if len(line) < 2 or line[0] != line[-1] or line[0] not in (0x27, 0x22):
        raise ValueError("the STRING opcode argument must be quoted")
    inner = line[1:-1]
    if b"\\" not in inner:
        return inner
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return codecs.escape_decode(inner)[0]


def decode_utf8_line(line: bytes) -> str:
    """Decode a GLOBAL/INST module or name line (strict UTF-8, as `_pickle.c`); ValueError if rejected."""
    if not line:
        raise ValueError("empty GLOBAL line")
    return line.decode("utf-8")


def decode_binunicode(raw: bytes) -> str:
    """Decode a BINUNICODE payload the way `_pickle.c` does (UTF-8 with surrogatepass)."""
    return raw.decode("utf-8", "surrogatepass")


def decode_unicode_line(line: bytes) -> str:
    """Decode a protocol-0 `UNICODE` line (raw-unicode-escape); ValueError if rejected."""
    return line.decode("raw-unicode-escape")


# ---------------------------------------------------------------------------------------------------------
# Argument readers by pickletools descriptor name: reader(data, pos, end, max_digits) -> (arg, next_pos).
# They raise ArgError('truncated', ...) when the argument runs past `end`, ArgError('bad_argument', ...,
# next_pos) when _pickle.c rejects a well-delimited argument.

_U2 = struct.Struct("<H")
_I4 = struct.Struct("<i")
_U4 = struct.Struct("<I")
_U8 = struct.Struct("<Q")
_F8 = struct.Struct(">d")


def _need(p: int, n: int, end: int, what: str) -> None:
    if p + n > end:
        raise ArgError("truncated", f"{what}: needs {n} bytes, {max(end - p, 0)} left")


def _line(data: bytes, p: int, end: int) -> tuple[bytes, int]:
    nl = data.find(b"\n", p, end)
    if nl < 0:
        raise ArgError("truncated", "line argument without newline")
    return data[p:nl], nl + 1


def _r_uint1(data: bytes, p: int, end: int, md: int) -> tuple[Any, int]:
    _need(p, 1, end, "uint1")
    return data[p], p + 1


def _r_uint2(data: bytes, p: int, end: int, md: int) -> tuple[Any, int]:
    _need(p, 2, end, "uint2")
    return _U2.unpack_from(data, p)[0], p + 2


def _r_int4(data: bytes, p: int, end: int, md: int) -> tuple[Any, int]:
    _need(p, 4, end, "int4")
    return _I4.unpack_from(data, p)[0], p + 4


def _r_uint4(data: bytes, p: int, end: int, md: int) -> tuple[Any, int]:
    _need(p, 4, end, "uint4")
    return _U4.unpack_from(data, p)[0], p + 4


def _r_uint8(data: bytes, p: int, end: int, md: int) -> tuple[Any, int]:
    _need(p, 8, end, "uint8")
    return _U8.unpack_from(data, p)[0], p + 8


def _r_float8(data: bytes, p: int, end: int, md: int) -> tuple[Any, int]:
    _need(p, 8, end, "float8")
    return _F8.unpack_from(data, p)[0], p + 8


def _text(parse: Callable[..., Any], what: str, with_digits: bool) -> Callable[..., tuple[Any, int]]:
    def reader(data: bytes, p: int, end: int, md: int) -> tuple[Any, int]:
        line, q = _line(data, p, end)
        try:
            return (parse(line, md) if with_digits else parse(line)), q
        except (ValueError, UnicodeDecodeError, OverflowError) as e:
            raise ArgError("bad_argument", f"{what}: {e}", q) from None

    return reader


def _r_stringnl_noescape(data: bytes, p: int, end: int, md: int) -> tuple[Any, int]:
    line, q = _line(data, p, end)
    try:
        return line.decode("ascii"), q
    except UnicodeDecodeError:
        raise ArgError("bad_argument", "PERSID id is not ASCII", q) from None


def _r_pair(data: bytes, p: int, end: int, md: int) -> tuple[Any, int]:
    l1, q = _line(data, p, end)
    l2, q = _line(data, q, end)
    try:
        return (decode_utf8_line(l1), decode_utf8_line(l2)), q
    except (ValueError, UnicodeDecodeError) as e:
        raise ArgError("bad_argument", f"GLOBAL/INST name: {e}", q) from None


def _sized(nbytes: int, kind: str, signed: bool = False) -> Callable[..., tuple[Any, int]]:
    fmt = {1: None, 4: _I4 if signed else _U4, 8: _U8}[nbytes]

    def reader(data: bytes, p: int, end: int, md: int) -> tuple[Any, int]:
        _need(p, nbytes, end, f"{kind} length")
        n = data[p] if fmt is None else fmt.unpack_from(data, p)[0]
        p += nbytes
        if n < 0:
            raise ArgError("bad_argument", f"{kind} has negative byte count {n}")
        _need(p, n, end, kind)
        raw = data[p : p + n]
        if kind == "unicode":
            try:
                return decode_binunicode(raw), p + n
            except UnicodeDecodeError as e:
                raise ArgError("bad_argument", f"BINUNICODE: {e}", p + n) from None
        if kind == "long":
            return int.from_bytes(raw, "little", signed=True), p + n
        return raw, p + n

    return reader


_READERS: dict[str | None, Callable[..., tuple[Any, int]] | None] = {
    None: None,
    "uint1": _r_uint1,
    "uint2": _r_uint2,
    "int4": _r_int4,
    "uint4": _r_uint4,
    "uint8": _r_uint8,
    "float8": _r_float8,
    "decimalnl_short": _text(parse_int_line, "INT", True),
    "decimalnl_long": _text(parse_long_line, "LONG", True),
    "floatnl": _text(parse_float_line, "FLOAT", False),
    "stringnl": _text(parse_string_line, "STRING", False),
    "stringnl_noescape": _r_stringnl_noescape,
    "stringnl_noescape_pair": _r_pair,
    "unicodestringnl": _text(decode_unicode_line, "UNICODE", False),
    "string1": _sized(1, "string"),
    "string4": _sized(4, "string", signed=True),
    "bytes1": _sized(1, "bytes"),
    "bytes4": _sized(4, "bytes"),
    "bytes8": _sized(8, "bytes"),
    "bytearray8": _sized(8, "bytes"),
    "unicodestring1": _sized(1, "unicode"),
    "unicodestring4": _sized(4, "unicode"),
    "unicodestring8": _sized(8, "unicode"),
    "long1": _sized(1, "long"),
    "long4": _sized(4, "long", signed=True),
}

ARG_READER: list[Callable[..., tuple[Any, int]] | None] = [_READERS[k] for k in OPCODE_ARG]
"""Opcode byte -> argument reader `(data, pos, end, max_int_digits) -> (arg, next_pos)` or None."""

# Text GET/PUT keys are base-10 (not base 0 like INT).
for _name in ("GET", "PUT"):
    ARG_READER[NAME_TO_CODE[_name]] = _text(parse_decimal_key, _name, True)
del _name

_CODE_PROTO = NAME_TO_CODE["PROTO"]
_CODE_FRAME = NAME_TO_CODE["FRAME"]
_CODE_STOP = NAME_TO_CODE["STOP"]
_CODE_PUT = NAME_TO_CODE["PUT"]


def check_special(code: int, arg: Any, next_pos: int, end: int) -> None:
    """Apply `_pickle.c` checks that depend on the decoded argument (PROTO range, FRAME bytes present...)."""
    if code == _CODE_PROTO:
        if arg > HIGHEST_PROTOCOL:
            raise ArgError("bad_argument", f"unsupported pickle protocol: {arg}", next_pos)
    elif code == _CODE_FRAME:
        if next_pos + arg > end:
            raise ArgError("truncated", f"FRAME of {arg} bytes, {end - next_pos} left")
    elif code == _CODE_PUT and arg < 0:
        raise ArgError("bad_argument", "negative PUT argument", next_pos)


# ---------------------------------------------------------------------------------------------------------
# The standalone tokenizer (no stack simulation): used for reference, tests and as a fallback.


@dataclass(slots=True)
class TokenStream:
    """Opcodes of one stream as (offset, code, arg) tuples, with the anomalies met and where reading stopped."""

    tokens: list[tuple[int, int, Any]] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    end: int = 0
    """Offset after STOP, or where reading stopped."""
    complete: bool = False


def tokenize(
    data: bytes | bytearray | memoryview,
    start: int = 0,
    end: int | None = None,
    *,
    location: str = "",
    limits: Limits = DEFAULT_LIMITS,
    deadline: float | None = None,
    on_token: Callable[[int, int, Any], None] | None = None,
) -> TokenStream:
    """Read the opcodes of one pickle stream from `start` up to STOP, recording anomalies instead of raising.

    With `on_token`, each `(offset, code, arg)` is handed to it instead of being kept in `tokens` (memory
    stays flat however many opcodes are read).
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    end = len(data) if end is None else min(end, len(data))
    out = TokenStream()
    append = out.tokens.append if on_token is None else on_token
    readers = ARG_READER
    names = OPCODE_NAME
    md = limits.max_int_digits
    max_ops = limits.max_opcodes
    deadline = time.monotonic() + limits.max_seconds if deadline is None else deadline
    pos = start
    n = 0
    while True:
        if pos >= end:
            out.anomalies.append(Anomaly("no_stop", pos, location, "stream ends without STOP"))
            break
        if n >= max_ops:
            out.anomalies.append(Anomaly("limit_opcodes", pos, location, f"max_opcodes={max_ops}"))
            break
        if not n & 4095 and time.monotonic() > deadline:
            out.anomalies.append(Anomaly("limit_time", pos, location, "max_seconds reached"))
            break
        code = data[pos]
        if names[code] is None:
            out.anomalies.append(Anomaly("unknown_opcode", pos, location, f"byte 0x{code:02x}"))
            break
        reader = readers[code]
        n += 1
        if reader is None:
            if on_token is None:
                append((pos, code, None))
            else:
                on_token(pos, code, None)
            pos += 1
            if code == _CODE_STOP:
                out.complete = True
                break
            continue
        try:
            arg, nxt = reader(data, pos + 1, end, md)
            check_special(code, arg, nxt, end)
        except ArgError as e:
            out.anomalies.append(Anomaly(e.kind, pos, location, f"{names[code]}: {e.detail}"))
            if e.next_pos is None:
                n -= 1
                break
            if on_token is None:
                append((pos, code, None))
            else:
                on_token(pos, code, None)
            pos = e.next_pos
            continue
        if on_token is None:
            append((pos, code, arg))
        else:
            on_token(pos, code, arg)
        pos = nxt
    out.end = pos
    return out
