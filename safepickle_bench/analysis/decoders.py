"""Pure decoding callables (base64, hex, codecs, decompressors) evaluated on a pickle's literal arguments.

A decoder is evaluated only on literals, with its output bounded, and only where its arguments are valid the
way the real callable checks them: wherever the real call would fail, the decoder returns None (the call is
then recorded as it is) and never relies on `assert` or on an exception escaping.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import lzma
import re
import zlib
from typing import Any

from safepickle_bench.analysis.values import TOO_BIG, Obj, _TooBig

BYTESIO_CLASSES = frozenset({"io.BytesIO", "_io.BytesIO"})
_B64 = frozenset(
    {
        "base64.b64decode",
        "base64.standard_b64decode",
        "base64.decodebytes",
        "base64.decodestring",
        "binascii.a2b_base64",
    }
)
_HEX = frozenset(
    {
        "binascii.unhexlify",
        "binascii.a2b_hex",
        "builtins.bytes.fromhex",
        "builtins.bytearray.fromhex",
        "base64.b16decode",
    }
)
_DECOMPRESS = {
    "zlib.decompress": "zlib",
    "gzip.decompress": "gzip",
    "bz2.decompress": "bz2",
    "lzma.decompress": "lzma",
}
_CODEC_FUNCS = frozenset({"codecs.decode", "_codecs.decode", "codecs.encode", "_codecs.encode"})

_DTYPE_RE = re.compile(r"^[<>|=]?([a-zA-Z?])(\d*)")


def as_bytes(v: Any) -> bytes | None:
    """Return the bytes a value stands for (bytes literal, bytearray, BytesIO of bytes), else None."""
    if type(v) is bytes:
        return v
    if type(v) is bytearray:
        return bytes(v)
    if isinstance(v, Obj) and v.callable in BYTESIO_CLASSES and type(v.args) is tuple and v.args:
        return as_bytes(v.args[0])
    return None


_LZMA_MEMLIMIT = 256 << 20
"""Memory an lzma decoder run on a pickle's literal may use (same bound as the container layer's)."""


def _decompress(kind: str, raw: bytes, max_out: int) -> bytes | _TooBig | None:
    """Decompress statically with an output bound; None if the data is bad, TOO_BIG if over `max_out`."""
    max_out = max(0, max_out)
    try:
        if kind in ("zlib", "gzip"):
            wbits = zlib.MAX_WBITS | (16 if kind == "gzip" else 0)
            counted = _zlib_output_size(raw, wbits, max_out)
            if counted is None:
                return TOO_BIG
            size, complete = counted
            if complete:
                # Sized exactly, zlib hands back its single output block: the result is never built twice.
                return zlib.decompress(raw, wbits, max(size, 1))
            out = zlib.decompressobj(wbits).decompress(raw, max_out + 1)  # truncated stream: what it holds
        elif kind == "bz2":
            out = bz2.BZ2Decompressor().decompress(raw, max_out + 1)
        else:
            out = lzma.LZMADecompressor(memlimit=_LZMA_MEMLIMIT).decompress(raw, max_out + 1)
    except (zlib.error, OSError, lzma.LZMAError, ValueError, EOFError):
        return None
    return TOO_BIG if len(out) > max_out else out


def _zlib_output_size(raw: bytes, wbits: int, max_out: int) -> tuple[int, bool] | None:
    """Count what a zlib/gzip stream decompresses to, 8 MiB at a time: (size, whether the stream ends), or
    None when it is over `max_out`."""
    d = zlib.decompressobj(wbits)
    step = min(8 << 20, max_out + 1)
    size = 0
    data = raw
    while True:
        piece = d.decompress(data, step)
        size += len(piece)
        if size > max_out:
            return None
        data = d.unconsumed_tail
        if d.eof or (not data and len(piece) < step):
            return size, d.eof


def _valid_altchars(altchars: bytes | str) -> bool:
    """Return True when `base64.b64decode` accepts these altchars (ASCII, exactly two characters)."""
    if type(altchars) is str:
        if not altchars.isascii():
            return False  # the real call raises ValueError
        altchars = altchars.encode("ascii")
    return len(altchars) == 2  # the real call asserts this


def decode_call(qual: str, args: Any, max_out: int) -> bytes | str | _TooBig | None:
    """Evaluate a pure decoding call (base64, hex, latin-1 encode, decompress) on literal arguments."""
    if type(args) is not tuple or not args:
        return None
    a0 = args[0]
    raw = a0.encode("latin-1", "replace") if type(a0) is str else as_bytes(a0)
    try:
        if qual in _B64:
            if raw is None:
                return None
            altchars = args[1] if len(args) > 1 and type(args[1]) in (bytes, str) else None
            if not altchars:
                return binascii.a2b_base64(raw)
            if not _valid_altchars(altchars):
                return None  # the real b64decode fails on these altchars: the call is recorded as it is
            return base64.b64decode(raw, altchars)
        if qual == "base64.urlsafe_b64decode":
            return base64.urlsafe_b64decode(raw) if raw is not None else None
        if qual in ("base64.b32decode", "base64.b85decode", "base64.a85decode"):
            return getattr(base64, qual.split(".")[1])(raw) if raw is not None else None
        if qual in _HEX:
            if type(a0) is str and qual.endswith("fromhex"):
                return bytes.fromhex(a0)
            return binascii.unhexlify(raw) if raw is not None else None
        if qual in _DECOMPRESS:
            return _decompress(_DECOMPRESS[qual], raw, max_out) if raw is not None else None
        if qual in _CODEC_FUNCS:
            enc = args[1] if len(args) > 1 else "utf-8"
            if type(enc) is not str:
                return None
            e = enc.lower().replace("-", "_")
            if type(a0) is str and qual.endswith("encode"):
                if e in ("hex", "hex_codec", "base64", "base64_codec", "zlib", "zlib_codec"):
                    return None
                return a0.encode(enc)
            if raw is None:
                return None
            if e in ("hex", "hex_codec"):
                return binascii.unhexlify(raw)
            if e in ("base64", "base64_codec"):
                return binascii.a2b_base64(raw)
            if e in ("zlib", "zlib_codec"):
                return _decompress("zlib", raw, max_out)
            if e in ("bz2", "bz2_codec"):
                return _decompress("bz2", raw, max_out)
            if qual.endswith("decode") and type(a0) is bytes:
                return a0.decode(enc)
            return None
        if qual in ("builtins.bytes", "builtins.bytearray"):
            if raw is not None and type(a0) is not str:
                return raw
            if type(a0) is str and len(args) > 1 and type(args[1]) is str:
                return a0.encode(args[1])
            if type(a0) in (list, tuple) and all(type(x) is int for x in a0):
                return bytes(a0)
            return None
        if qual in ("builtins.str.encode",) and type(a0) is str:
            enc = args[1] if len(args) > 1 and type(args[1]) is str else "utf-8"
            return a0.encode(enc)
    except (ValueError, TypeError, LookupError, binascii.Error, UnicodeError, OverflowError):
        return None
    return None


DECODE_CALLABLES = frozenset(
    _B64
    | _HEX
    | _CODEC_FUNCS
    | set(_DECOMPRESS)
    | {
        "base64.urlsafe_b64decode",
        "base64.b32decode",
        "base64.b85decode",
        "base64.a85decode",
        "builtins.bytes",
        "builtins.bytearray",
        "builtins.str.encode",
    }
)


def dtype_layout(dtype: Any) -> tuple[int, bool] | None:
    """Return (itemsize, hasobject) of a symbolic `numpy.dtype(...)` value with its BUILD state, else None."""
    if not isinstance(dtype, Obj) or not dtype.callable.endswith(".dtype"):
        return None
    args = dtype.args
    if type(args) is not tuple or not args:
        return None
    spec = args[0].decode("latin-1") if type(args[0]) is bytes else args[0]
    if type(spec) is not str:
        return None
    m = _DTYPE_RE.match(spec)
    if m is None:
        return None
    kind, digits = m.groups()
    hasobject = kind == "O"
    itemsize = int(digits) if digits else {"O": 8, "?": 1, "b": 1, "B": 1}.get(kind, 0)
    state = dtype.state
    if type(state) is tuple and len(state) >= 8:
        elsize, flags = state[5], state[7]
        if type(elsize) is int and elsize > 0:
            itemsize = elsize
        if type(flags) is int:
            hasobject = hasobject or bool(flags & 1)
    if kind in "UuSaVv" and (type(state) is not tuple or len(state) < 8) and not digits:
        return None
    return itemsize, hasobject
