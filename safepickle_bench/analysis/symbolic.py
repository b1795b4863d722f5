"""Symbolic pickle machine: reads one stream's opcodes and simulates stack, MARKs and memo without executing.

One loop both tokenizes and simulates (a 256-entry handler list indexed by the opcode byte, handlers are
closures over the stream's state). It resolves every import (GLOBAL, STACK_GLOBAL, INST, OBJ) and every
call (REDUCE, NEWOBJ, NEWOBJ_EX, BUILD, INST, OBJ) to `module.qualname` where the values allow it, follows
getattr/attrgetter/methodcaller/partial/__import__ chains, decodes bytes handed to loads-like callables
(also base64/hex/latin-1/zlib encoded) and reads them as nested streams, and skips the raw array bytes that
joblib's `NumpyArrayWrapper` makes the real loader read from the middle of the stream. Nothing is imported,
nothing is unpickled.
"""

from __future__ import annotations

import _compat_pickle
import base64
import binascii
import bz2
import copyreg
import dataclasses
import gc
import lzma
import re
import struct
import time
import zlib
from collections import _count_elements  # type: ignore[attr-defined]
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from safepickle_bench.analysis import opcodes as ops
from safepickle_bench.analysis.limits import DEFAULT_LIMITS, Limits
from safepickle_bench.analysis.result import Anomaly, CallRecord, ImportRecord, Stream

MAX_ANOMALIES_PER_STREAM = 10_000
"""Anomalies kept per stream (a stream of a million bad POPs must not cost a million records)."""
CHECK_EVERY = 1024
"""Opcodes between two checks of the deadline, the opcode limit and the stack limit."""
ARG_STR_CHARS = 80
"""Characters of a string literal kept in a call's argument summary."""
ARG_SUMMARY_CHARS = 300
"""Characters of a whole argument summary."""

# ---------------------------------------------------------------------------------------------------------
# Symbolic values. Literals are plain Python values (str, bytes, int, float, bool, None, tuple, list, dict,
# set, frozenset); everything the loader would build by calling something is a Global or an Obj.


class _Unknown:
    """A value the simulation cannot know (stack underflow, missing memo key, out-of-band buffer...)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "?"


UNKNOWN = _Unknown()


class Global:
    """An imported object: `module` plus dotted `name` (`name` empty for the module itself)."""

    __slots__ = ("module", "name", "qual")

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name
        self.qual = "?" if module == "?" else f"{module}.{name}" if name else module
        """`module.name` (or the module alone)."""

    def __repr__(self) -> str:
        return self.qual


class Obj:
    """The result of a call: what was called, with which arguments, and the state BUILD gave it.

    `kind` marks values with call semantics of their own: 'attr' (attribute `extra=(base, name)` of a
    non-module value), 'attrgetter' (`extra=names`), 'methodcaller' (`extra=(name, args)`), 'partial'
    (`extra=(func, args)`), 'persid' (a persistent id, `args` = the id).
    """

    __slots__ = ("callable", "args", "state", "kind", "extra")

    def __init__(self, callable_: str, args: Any = (), kind: str = "", extra: Any = None) -> None:
        self.callable = callable_
        self.args = args
        self.state: Any = None
        self.kind = kind
        self.extra = extra

    def __repr__(self) -> str:
        if self.kind == "persid":
            return "<persistent id>"
        return (qual_of(self) if self.kind else self.callable) + "(...)"


def qual_of(value: Any) -> str:
    """Return the dotted name of a callable value, or '?' when it cannot be known statically."""
    if type(value) is Global:
        return value.qual
    if isinstance(value, Obj):
        if value.kind == "attr":
            base, name = value.extra
            if isinstance(base, Obj) and not base.kind:
                return f"{base.callable}.{name}"
            if isinstance(base, str | bytes | bytearray | int | float | list | dict | tuple | set):
                return f"builtins.{type(base).__name__}.{name}"
            return f"?.{name}"
        if value.kind == "attrgetter":
            return "operator.attrgetter(...)"
        if value.kind == "methodcaller":
            return "operator.methodcaller(...)"
        if value.kind == "partial":
            return qual_of(value.extra[0])
    return "?"


def class_of(value: Any) -> str:
    """Return the dotted name of the class of a value (what BUILD sets state on)."""
    if isinstance(value, Obj):
        return value.callable
    if isinstance(value, Global):
        return value.qual
    if value is UNKNOWN:
        return "?"
    return f"builtins.{type(value).__name__}"


_PLAIN = frozenset({int, bool, float, type(None)})
_REPR_OK = _PLAIN | {Obj, Global, _Unknown}


def summarize(value: Any, budget: int = ARG_SUMMARY_CHARS) -> str:
    """Return a short, truncated text of a symbolic value (strings cut to ~80 characters)."""
    try:
        text = _summarize(value)
    except ValueError:  # an int too long for str() (sys.get_int_max_str_digits): no repr() shortcuts
        text = _summ(value, 3, False)
    return text if len(text) <= budget else text[: budget - 3] + "..."


def _summarize(value: Any) -> str:
    t = type(value)
    if t is tuple and len(value) <= 6:
        if set(map(type, value)) <= _PLAIN:
            return repr(value)  # the common case (shapes, strides, flags) at C speed
        parts = [
            repr(x)
            if type(x) in _REPR_OK or type(x) is tuple and len(x) <= 6 and set(map(type, x)) <= _PLAIN
            else _summ(x, 2)
            for x in value
        ]
        return "(" + ", ".join(parts) + ("," if len(value) == 1 else "") + ")"
    return _summ(value, 3)


def _summ(v: Any, depth: int, fast: bool = True) -> str:
    t = type(v)
    if t is int:
        return str(v) if -_BIG_INT < v < _BIG_INT else f"<int {v.bit_length()} bits>"
    if t is str:
        return repr(v) if len(v) <= ARG_STR_CHARS else repr(v[:ARG_STR_CHARS]) + f"...({len(v)} chars)"
    if t is Obj or t is Global:
        return repr(v)
    if t is tuple or t is list:
        if depth <= 0:
            return "(...)" if t is tuple else "[...]"
        if fast and len(v) <= 6 and set(map(type, v)) <= _PLAIN:
            return repr(v)
        items = [_summ(x, depth - 1, fast) for x in v[:6]]
        if len(v) > 6:
            items.append(f"...+{len(v) - 6}")
        if t is tuple:
            return "(" + ", ".join(items) + ("," if len(v) == 1 else "") + ")"
        return "[" + ", ".join(items) + "]"
    if t is bool or t is float or v is None:
        return repr(v)
    if t is bytes or t is bytearray:
        return repr(bytes(v[:40])) + (f"...({len(v)} bytes)" if len(v) > 40 else "")
    if t is dict:
        if depth <= 0:
            return "{...}"
        items = [f"{_summ(k, 0, fast)}: {_summ(x, depth - 1, fast)}" for k, x in list(v.items())[:4]]
        if len(v) > 4:
            items.append(f"...+{len(v) - 4}")
        return "{" + ", ".join(items) + "}"
    if t is set or t is frozenset:
        if depth <= 0:
            return "{...}"
        items = [_summ(x, depth - 1, fast) for x in list(v)[:6]]
        if len(v) > 6:
            items.append(f"...+{len(v) - 6}")
        return "{" + ", ".join(items) + "}"
    return "?"


_BIG_INT = 2**64

_ARGS_SLOT = CallRecord.args  # the slot descriptor of the plain record, where a computed summary is stored
_UNSET = object()


def _holds_big(v: Any) -> bool:  # noqa: ANN401
    """Return True when a value is, or directly holds (tuple/list items), a literal over BIG_LITERAL bytes.

    One level only, to stay cheap: the big literals of real pickles (array data, encoded bytes, huge ints)
    sit directly in the argument tuple of the call or the state tuple of BUILD.
    """
    t = type(v)
    if t is tuple or t is list:
        for x in v[:8]:
            tx = type(x)
            if (tx is bytes or tx is str or tx is bytearray) and len(x) > BIG_LITERAL:
                return True
            if tx is int and x.bit_length() > 8 * BIG_LITERAL:
                return True
        return False
    if t is bytes or t is str or t is bytearray:
        return len(v) > BIG_LITERAL
    return t is int and v.bit_length() > 8 * BIG_LITERAL


def _drop_big_references(calls: list[CallRecord]) -> None:
    """Summarise now the lazy call records that hold big literals, so a finished stream does not keep them."""
    for rec in calls:
        if type(rec) is LazyCallRecord and rec._raw is not _UNSET and _holds_big(rec._raw):
            rec.args  # noqa: B018 - computing the summary drops the reference


class LazyCallRecord(CallRecord):
    """A `CallRecord` whose `args` summary is computed on first read, not while the stream is simulated.

    Summarising every call's arguments was a quarter of the analyzer's time, and most summaries are never
    read (features use callables and counts). The record keeps a reference to the symbolic arguments until
    `args` is first read (then only the text); it compares equal to a plain `CallRecord` with the same
    fields and pickles as one.
    """

    __slots__ = ("_raw",)

    def __init__(
        self,
        callable: str,  # noqa: A002 - the dataclass field names, so dataclasses.replace() works
        opcode: str,
        offset: int,
        args: str = "",
        raw: Any = _UNSET,  # noqa: ANN401
    ) -> None:
        """Record a call; `raw` (the symbolic arguments) is summarised into `args` when first read."""
        self.callable = callable
        self.opcode = opcode
        self.offset = offset
        if raw is _UNSET:
            _ARGS_SLOT.__set__(self, args)
        self._raw = raw

    @property  # type: ignore[override]
    def args(self) -> str:
        """Return the short summary of the call's literal arguments (computed once)."""
        raw = self._raw
        if raw is not _UNSET:
            _ARGS_SLOT.__set__(self, summarize(raw))
            self._raw = _UNSET
        return _ARGS_SLOT.__get__(self)

    @args.setter
    def args(self, value: str) -> None:
        _ARGS_SLOT.__set__(self, value)
        self._raw = _UNSET

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CallRecord):
            return (self.callable, self.opcode, self.offset, self.args) == (
                other.callable,
                other.opcode,
                other.offset,
                other.args,
            )
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # like the plain (mutable) dataclass

    def __repr__(self) -> str:
        return repr(self.plain())

    @property
    def pending(self) -> bool:
        """True while the summary is not computed yet (the record still references the arguments)."""
        return self._raw is not _UNSET

    def plain(self) -> CallRecord:
        """Return the record as a plain `CallRecord` (summary computed)."""
        return CallRecord(self.callable, self.opcode, self.offset, self.args)

    def __reduce__(self) -> tuple[Any, ...]:
        return CallRecord, (self.callable, self.opcode, self.offset, self.args)


_SCALAR_KEYS = frozenset({str, int, bytes, float, bool, type(None), Global, Obj, _Unknown})
_UNHASHABLE = frozenset({list, dict, set, bytearray})


def _key_verdict(v: Any, budget: int = 256) -> int:
    """Return 1 if a value hashes safely, 0 if it is unhashable (the loader fails too), -1 if too deep to try."""
    t = type(v)
    if t in _SCALAR_KEYS:
        return 1
    if t is not tuple and t is not frozenset:
        return 0 if t in _UNHASHABLE else -1
    todo = [v]
    while todo:
        budget -= 1
        if budget < 0:
            return -1
        for y in todo.pop():
            ty = type(y)
            if ty is tuple or ty is frozenset:
                todo.append(y)
            elif ty not in _SCALAR_KEYS:
                return 0 if ty in _UNHASHABLE else -1
    return 1


def _nesting(value: Any, cap: int = 256) -> int:
    """Return how deeply containers nest inside a value (bounded, cycle-safe)."""
    best = 0
    todo = [(value, 0)]
    seen: set[int] = set()
    steps = 0
    while todo and steps < 5_000:
        v, d = todo.pop()
        steps += 1
        t = type(v)
        if t in (tuple, list, set, frozenset, dict):
            if id(v) in seen:
                continue
            seen.add(id(v))
            d += 1
            best = max(best, d)
            if d >= cap:
                break
            for x in v.values() if t is dict else v:
                if type(x) in (tuple, list, set, frozenset, dict):
                    todo.append((x, d))
    return best


# ---------------------------------------------------------------------------------------------------------
# Knowledge about callables that matter statically.

LOADS_CALLABLES = frozenset(
    {
        "pickle.loads",
        "pickle._loads",
        "_pickle.loads",
        "dill.loads",
        "dill._dill.loads",
        "cloudpickle.loads",
        "cloudpickle.cloudpickle.loads",
        "cloudpickle.cloudpickle_fast.loads",
        "numpy.loads",
        "numpy.core.numeric.loads",
        "numpy._core.numeric.loads",
        "joblib.numpy_pickle.loads",
        "pickle5.loads",
        "srsly.pickle_loads",
        "torch.serialization._load",
    }
)
"""Callables that unpickle bytes given as first argument."""
LOAD_FILE_CALLABLES = frozenset(
    {
        "pickle.load",
        "pickle._load",
        "_pickle.load",
        "dill.load",
        "dill._dill.load",
        "cloudpickle.load",
        "torch.load",
        "torch.serialization.load",
        "joblib.load",
        "joblib.numpy_pickle.load",
        "numpy.load",
        "pandas.read_pickle",
        "pandas.io.pickle.read_pickle",
    }
)
"""Callables that unpickle a file object given as first argument."""
UNPICKLER_CLASSES = frozenset(
    {"pickle.Unpickler", "pickle._Unpickler", "_pickle.Unpickler", "dill.Unpickler", "dill._dill.Unpickler"}
)
BYTESIO_CLASSES = frozenset({"io.BytesIO", "_io.BytesIO"})
GETATTR_CALLABLES = frozenset({"builtins.getattr", "builtins.object.__getattribute__"})
ATTRGETTER_CALLABLES = frozenset({"_operator.attrgetter", "operator.attrgetter"})
METHODCALLER_CALLABLES = frozenset({"_operator.methodcaller", "operator.methodcaller"})
PARTIAL_CALLABLES = frozenset({"functools.partial", "_functools.partial"})
IMPORT_CALLABLES = frozenset({"builtins.__import__", "importlib.__import__"})
IMPORT_MODULE_CALLABLES = frozenset({"importlib.import_module", "importlib._bootstrap._gcd_import"})
GETITEM_CALLABLES = frozenset(
    {"_operator.getitem", "operator.getitem", "builtins.dict.get", "builtins.dict.__getitem__"}
)
SYS_MODULES_GET = frozenset({"sys.modules.get", "sys.modules.__getitem__"})
MAP_CALLABLES = frozenset({"builtins.map", "builtins.filter", "itertools.starmap"})
RECONSTRUCTOR_CALLABLES = frozenset({"copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__"})
"""Callables that build an instance of the class given as first argument (protocol 0-1 objects)."""
JOBLIB_WRAPPERS = frozenset(
    {"joblib.numpy_pickle.NumpyArrayWrapper", "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper"}
)
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


_SPECIAL: dict[str, int] = {}
for _code, _group in enumerate(
    (
        GETATTR_CALLABLES,
        ATTRGETTER_CALLABLES,
        METHODCALLER_CALLABLES,
        PARTIAL_CALLABLES,
        IMPORT_CALLABLES,
        IMPORT_MODULE_CALLABLES,
        GETITEM_CALLABLES,
        SYS_MODULES_GET,
        None,
        LOADS_CALLABLES,
        LOAD_FILE_CALLABLES,
        MAP_CALLABLES,
        frozenset(f"{c}.load" for c in UNPICKLER_CLASSES),
        RECONSTRUCTOR_CALLABLES,
    ),
    start=1,
):
    for _q in _group or ():
        _SPECIAL[_q] = _code
del _code, _group, _q


def _as_bytes(v: Any) -> bytes | None:
    """Return the bytes a value stands for (bytes literal, bytearray, BytesIO of bytes), else None."""
    if type(v) is bytes:
        return v
    if type(v) is bytearray:
        return bytes(v)
    if isinstance(v, Obj) and v.callable in BYTESIO_CLASSES and type(v.args) is tuple and v.args:
        return _as_bytes(v.args[0])
    return None


_LZMA_MEMLIMIT = 256 << 20
"""Memory an lzma decoder run on a pickle's literal may use (same bound as the container layer's)."""


class _TooBig:
    """Returned by `decode_call` when a decompression would produce more than it may."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<too big>"


TOO_BIG = _TooBig()
BIG_LITERAL = 1 << 16
"""Bytes of a literal past which a call record does not keep a reference to it after its stream ends."""


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


def decode_call(qual: str, args: Any, max_out: int) -> bytes | str | _TooBig | None:
    """Evaluate a pure decoding call (base64, hex, latin-1 encode, decompress) on literal arguments."""
    if type(args) is not tuple or not args:
        return None
    a0 = args[0]
    raw = a0.encode("latin-1", "replace") if type(a0) is str else _as_bytes(a0)
    try:
        if qual in _B64:
            if raw is None:
                return None
            altchars = args[1] if len(args) > 1 and type(args[1]) in (bytes, str) else None
            return base64.b64decode(raw, altchars) if altchars else binascii.a2b_base64(raw)
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

for _q in DECODE_CALLABLES:
    _SPECIAL[_q] = 9
del _q


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


# ---------------------------------------------------------------------------------------------------------


class _Halt(Exception):
    """Stops the opcode loop: `kind` None for STOP, else an anomaly kind; `pos` where reading stopped."""

    def __init__(self, kind: str | None, offset: int, detail: str = "", pos: int | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.offset = offset
        self.detail = detail
        self.pos = offset if pos is None else pos


_STOPPED = _Halt(None, -1)
"""Marks a stream read up to its STOP by the inline fast path (no exception raised)."""

_STREAM_FIELDS = [
    "location",
    "start",
    "end",
    "protocol",
    "has_proto",
    "complete",
    "n_opcodes",
    "opcode_counts",
    "opcode_seq",
    "imports",
    "calls",
    "strings",
    "n_strings",
    "anomalies",
    "max_stack_depth",
    "max_container_nesting",
    "memo_puts",
    "memo_gets",
    "nested_depth",
    "skipped_bytes",
]
if [f.name for f in dataclasses.fields(Stream)][: len(_STREAM_FIELDS)] != _STREAM_FIELDS:  # pragma: no cover
    raise ImportError("Stream fields changed order: update the positional Stream(...) call in symbolic.py")
_CONTAINERS = frozenset({tuple, list, set, frozenset, dict})
_PROTO_OF = ops.OPCODE_PROTO


class _Reloop(Exception):
    """Asks the loop to re-read its bounds (a joblib array read inside an unfinished frame)."""

    def __init__(self, pos: int) -> None:
        super().__init__()
        self.pos = pos


@dataclass(slots=True)
class StreamRun:
    """One simulated stream plus what callers need beyond the `Stream` record."""

    stream: Stream
    value: Any = None
    """Top of the stack at STOP (the unpickled object, symbolically), UNKNOWN if STOP was not reached."""
    persistent_ids: list[Any] = field(default_factory=list)
    """Persistent ids (PERSID/BINPERSID) in order, e.g. legacy torch storage tuples."""
    extra_streams: list[Stream] = field(default_factory=list)
    """Streams found inside this one: nested pickles (`>nestedK`) and joblib object arrays (`>objarrayK`)."""
    file_end: int = 0
    """Offset a file-reading loader stands at after this stream (after STOP, or after its frame)."""
    joblib_arrays: int = 0
    """Number of joblib NumpyArrayWrapper arrays whose data was read (skipped or parsed)."""


_U2 = struct.Struct("<H").unpack_from
_I4 = struct.Struct("<i").unpack_from
_U4 = struct.Struct("<I").unpack_from
_U8 = struct.Struct("<Q").unpack_from
_F8 = struct.Struct(">d").unpack_from
_NAME_MAPPING = _compat_pickle.NAME_MAPPING
_IMPORT_MAPPING = _compat_pickle.IMPORT_MAPPING
_C = ops.NAME_TO_CODE
_MEMO_PUT_CODES = (_C["PUT"], _C["BINPUT"], _C["LONG_BINPUT"], _C["MEMOIZE"])
_MEMO_GET_CODES = (_C["GET"], _C["BINGET"], _C["LONG_BINGET"])
_TEXT_IMPORT_CODES = (_C["GLOBAL"], _C["INST"])
_STRING_CODES = frozenset(
    _C[n]
    for n in (
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
        "BYTEARRAY8",
        "UNICODE",
        "BINUNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE8",
    )
)
names_ = ops.OPCODE_NAME
_TALLY = [0] * 256
"""Opcode byte -> 1 string literal, 2 memo put, 3 memo get, 0 other."""
for _c in _STRING_CODES:
    _TALLY[_c] = 1
for _c in _MEMO_PUT_CODES:
    _TALLY[_c] = 2
for _c in _MEMO_GET_CODES:
    _TALLY[_c] = 3
del _c
_TALLY_TABLE = bytes(_TALLY)
"""`_TALLY` as a bytes.translate table."""


def _count_codes(seq: bytearray) -> dict[int, int]:
    """Return opcode byte -> count for a sequence of opcode bytes (first-seen order below 4096 opcodes)."""
    if len(seq) < 4096:
        counts: dict[int, int] = {}
        _count_elements(counts, seq)  # Counter's C helper, without building a Counter
        return counts
    hist = np.bincount(np.frombuffer(seq, dtype=np.uint8), minlength=256)
    return {int(c): int(hist[c]) for c in np.flatnonzero(hist)}


def simulate_stream(
    data: bytes,
    start: int,
    location: str,
    limits: Limits = DEFAULT_LIMITS,
    *,
    end: int | None = None,
    nested_depth: int = 0,
    deadline: float | None = None,
    decode_budget: list[int] | None = None,
) -> StreamRun:
    """Read and simulate one pickle stream of `data` from `start` to its STOP; never raises on bad input.

    `decode_budget` is a one-item list holding how many bytes decoding calls inside pickles (zlib.decompress,
    base64...) may still produce; it is shared with nested streams and decremented in place (default: a
    fresh budget of `limits.max_decompressed_bytes`: everything decoded inside one region counts as one
    decompression).
    """
    if decode_budget is None:
        decode_budget = [limits.max_decompressed_bytes]
    if not isinstance(data, bytes):
        data = bytes(data)
    end = len(data) if end is None else min(end, len(data))
    if deadline is None:
        deadline = time.monotonic() + limits.max_seconds
    engine = _ENGINES.pop() if _ENGINES else _Engine()
    # The simulation allocates many long-lived containers: no collections while a large stream runs
    # (a small one allocates too little for a collection to matter, and toggling has its own cost).
    gc_was_on = end - start > 4096 and gc.isenabled()
    if gc_was_on:
        gc.disable()
    try:
        return engine.run(data, start, end, location, limits, nested_depth, deadline, decode_budget)
    finally:
        if gc_was_on:
            gc.enable()
        _ENGINES.append(engine)


_ENGINES: list[_Engine] = []
"""Idle engines. Building an engine's closures costs far more than reading a small stream, so engines are
reused; a stream read inside another (nested pickle, joblib object array) takes another engine. list.pop and
list.append are atomic, so threads never share an engine."""


def _tally(seq: bytearray, want_protocol: bool) -> tuple[dict[str, int], int, int, int, int]:
    """Return opcode name -> count (first-seen order below 4096 opcodes, else by code), the string literal,
    memo put and memo get counts, and the highest protocol of any opcode (0 unless `want_protocol`)."""
    counts = _count_codes(seq)
    names = ops.OPCODE_NAME
    opcode_counts: dict[str, int] = {}
    for c, n in counts.items():  # a plain loop: a 3.11 comprehension builds a function per call
        opcode_counts[names[c]] = n  # type: ignore[index]
    top = max(map(_PROTO_OF.__getitem__, counts), default=0) if want_protocol else 0
    if len(seq) < 4096:
        kinds = seq.translate(_TALLY_TABLE)
        return opcode_counts, kinds.count(1), kinds.count(2), kinds.count(3), top  # type: ignore[return-value]
    tallies = [0, 0, 0, 0]  # other, string literals, memo puts, memo gets
    for c, n in counts.items():
        tallies[_TALLY[c]] += n
    return opcode_counts, tallies[1], tallies[2], tallies[3], top  # type: ignore[return-value]


class _Engine:
    """The handlers of the symbolic machine, built once as closures over shared cells, reused per stream."""

    def __init__(self) -> None:  # noqa: C901 - one function on purpose: the handlers share its cells
        """Build the handler table; `self.run` reads one stream."""
        data = b""
        start = end = 0
        location = ""
        limits = DEFAULT_LIMITS
        nested_depth = 0
        deadline = 0.0
        md = limits.max_int_digits
        max_lits, max_chars = limits.max_string_literals, limits.max_string_chars

        stack: list[Any] = []
        push = stack.append
        spop = stack.pop
        marks: list[int] = []
        memo: dict[int, Any] = {}
        seq = bytearray()
        anomalies: list[Anomaly] = []
        imports: list[ImportRecord] = []
        calls: list[CallRecord] = []
        strings: list[str] = []
        persistent_ids: list[Any] = []
        overrides: dict[str, Any] = {}
        extra_streams: list[Stream] = []
        fence = 0
        maxd = 0
        max_marks = 0
        proto = 0
        first_proto = -1
        frame_end = 0
        jump_at = -1
        jump_to = -1
        nested_count = 0
        joblib_arrays = 0
        skipped = 0
        budget: list[int] = [0]
        big_seen = False  # a literal over BIG_LITERAL bytes was read

        def anomaly(kind: str, offset: int, detail: str = "") -> None:
            if len(anomalies) < MAX_ANOMALIES_PER_STREAM:
                anomalies.append(Anomaly(kind, offset, location, detail))

        def underflow(offset: int) -> Any:
            anomaly(
                "stack_underflow", offset, f"{ops.OPCODE_NAME[data[offset]]} on an empty stack (above MARK)"
            )
            return UNKNOWN

        def pop(offset: int) -> Any:
            nonlocal maxd
            n = len(stack)
            if n > fence:
                if n > maxd:
                    maxd = n
                return spop()
            return underflow(offset)

        def top(offset: int) -> Any:
            if len(stack) > fence:
                return stack[-1]
            return underflow(offset)

        def popmark(offset: int) -> list[Any]:
            nonlocal fence, maxd, max_marks
            n = len(stack)
            if n > maxd:
                maxd = n
            if len(marks) > max_marks:
                max_marks = len(marks)
            if marks:
                k = marks.pop()
                fence = marks[-1] if marks else 0
            else:
                anomaly("mark_missing", offset, f"{ops.OPCODE_NAME[data[offset]]} without MARK")
                return []
            items = stack[k:]
            del stack[k:]
            return items

        def trunc(offset: int, detail: str) -> None:
            raise _Halt("truncated", offset, detail)

        def note_str(s: Any) -> None:
            if len(strings) < max_lits:
                strings.append(s[:max_chars] if type(s) is str else bytes(s[:max_chars]).decode("latin-1"))

        def find_class(module: str, name: str) -> tuple[str, str]:
            if proto < 3:
                if (module, name) in _NAME_MAPPING:
                    return _NAME_MAPPING[(module, name)]
                if module in _IMPORT_MAPPING:
                    return _IMPORT_MAPPING[module], name
            return module, name

        def imported(module: str, name: str, opname: str, offset: int) -> Any:
            module, name = find_class(module, name)
            imports.append(ImportRecord(module, name, opname, offset))
            g = Global(module, name)
            if overrides and g.qual in overrides:
                # An earlier BUILD replaced this module/class attribute: the loader now gets that value.
                anomaly(
                    "unresolved_global", offset, f"{g.qual} was overwritten by BUILD earlier in the stream"
                )
                return overrides[g.qual]
            return g

        # ---- calls ------------------------------------------------------------------------------------

        def nested(raw: bytes, offset: int, via: str) -> Any:
            nonlocal nested_count
            if nested_depth + 1 > limits.max_nested_pickle_depth:
                anomaly("limit_depth", offset, f"nested pickle via {via} deeper than max_nested_pickle_depth")
                return UNKNOWN
            nested_count += 1
            loc = f"{location}>nested{nested_count}"
            sub = simulate_stream(
                raw, 0, loc, limits, nested_depth=nested_depth + 1, deadline=deadline, decode_budget=budget
            )
            anomaly("nested_pickle", offset, f"{len(raw)} bytes via {via} read as {loc}")
            extra_streams.append(sub.stream)
            extra_streams.extend(sub.extra_streams)
            return sub.value

        def getattr_value(base: Any, name: str, opname: str, offset: int) -> Any:
            if isinstance(base, Global):
                g = Global(base.module, f"{base.name}.{name}" if base.name else name)
                imports.append(ImportRecord(g.module, g.name, opname, offset))
                return g
            return Obj("?", (), "attr", (base, name))

        def module_value(name: Any, fromlist: Any = None) -> Any:
            if type(name) is not str or not name:
                return UNKNOWN
            if fromlist is None or (type(fromlist) in (tuple, list) and not fromlist):
                return Global(name.split(".")[0], "")
            return Global(name, "")

        def call(fn: Any, args: Any, opname: str, offset: int) -> Any:
            nonlocal big_seen
            targs = args if type(args) is tuple else ()
            if type(fn) is Obj and fn.kind == "partial":
                func, pargs = fn.extra  # partial(f, *a)(*b) is the call f(*a, *b): record that one
                return call(func, tuple(pargs) + targs, opname, offset)
            qual = qual_of(fn)
            calls.append(LazyCallRecord(qual, opname, offset, "", args))
            if type(fn) is Obj and fn.kind:
                kind = fn.kind
                if kind == "attrgetter" and len(targs) == 1:
                    names = fn.extra
                    vals = []
                    for nm in names:
                        v = targs[0]
                        for part in nm.split("."):
                            v = getattr_value(v, part, opname, offset)
                        vals.append(v)
                    return vals[0] if len(vals) == 1 else tuple(vals)
                if kind == "methodcaller" and len(targs) == 1:
                    name, margs = fn.extra
                    meth = getattr_value(targs[0], name, opname, offset)
                    return call(meth, margs, opname, offset)
                if kind == "attr":
                    base, name = fn.extra
                    if name == "load" and isinstance(base, Obj) and base.callable in UNPICKLER_CLASSES:
                        raw = _as_bytes(base.args[0]) if type(base.args) is tuple and base.args else None
                        if raw is not None:
                            return nested(raw, offset, f"{base.callable}(BytesIO).load")
                return Obj(qual, args)
            special = _SPECIAL.get(qual)
            if special is None:
                return Obj(qual, args)
            if special == 14 and targs:
                return Obj(qual_of(targs[0]), args)
            if special == 13 and targs:
                a0 = targs[0]
                if (
                    isinstance(a0, Obj)
                    and a0.callable in UNPICKLER_CLASSES
                    and type(a0.args) is tuple
                    and a0.args
                ):
                    raw = _as_bytes(a0.args[0])
                    if raw is not None:
                        return nested(raw, offset, qual)
            if special == 1 and len(targs) >= 2 and type(targs[1]) is str:
                return getattr_value(targs[0], targs[1], opname, offset)
            if special == 2 and targs and all(type(a) is str for a in targs):
                return Obj(qual, args, "attrgetter", targs)
            if special == 3 and targs and type(targs[0]) is str:
                return Obj(qual, args, "methodcaller", (targs[0], targs[1:]))
            if special == 4 and targs:
                return Obj(qual, args, "partial", (targs[0], targs[1:]))
            if special == 5 and targs:
                return module_value(targs[0], targs[3] if len(targs) > 3 else None)
            if special == 6 and targs and type(targs[0]) is str:
                return Global(targs[0], "")
            if special == 7 and len(targs) >= 2:
                base, key = targs[0], targs[1]
                if isinstance(base, Global) and base.qual == "sys.modules":
                    return module_value(key, True)
                if type(base) is dict:
                    return base.get(key, UNKNOWN) if _key_verdict(key) == 1 else UNKNOWN
                if type(base) in (tuple, list) and type(key) is int and -len(base) <= key < len(base):
                    return base[key]
                return Obj(qual, args)
            if special == 8 and targs:
                return module_value(targs[0], True)
            if special == 9:
                room = budget[0]
                v = decode_call(qual, args, min(limits.max_decompressed_bytes, room)) if room > 0 else TOO_BIG
                if v is TOO_BIG:
                    anomaly(
                        "limit_decompressed",
                        offset,
                        f"{qual}: output over max_decompressed_bytes or the file's remaining "
                        f"decompression budget ({max(room, 0)} bytes)",
                    )
                    return Obj(qual, args)
                if v is None:
                    return Obj(qual, args)
                budget[0] -= len(v)  # type: ignore[arg-type]
                if len(v) > BIG_LITERAL:  # type: ignore[arg-type]
                    big_seen = True
                return v
            if special == 10 and targs:
                raw = _as_bytes(targs[0])
                if raw is not None:
                    return nested(raw, offset, qual)
            if special == 11 and targs:
                a0 = targs[0]
                if isinstance(a0, Obj) and a0.callable in BYTESIO_CLASSES:
                    raw = _as_bytes(a0)
                    if raw is not None:
                        return nested(raw, offset, f"{qual}(BytesIO)")
            if special == 12 and len(targs) >= 2:
                fq = qual_of(targs[0])
                if fq != "?":
                    calls.append(LazyCallRecord(fq, opname, offset, "", targs[1:]))
            return Obj(qual, args)

        def joblib_read(wrapper: Obj, p: int) -> int:
            """Return where opcodes go on after the loader reads the wrapper's array data."""
            nonlocal joblib_arrays, skipped, jump_at, jump_to
            state = wrapper.state
            if type(state) is not dict:
                anomaly("bad_argument", p - 1, "joblib NumpyArrayWrapper state is not a dict")
                return p
            pending = jump_at >= 0
            fpos = jump_to if pending else max(p, frame_end)
            layout = dtype_layout(state.get("dtype"))
            shape = state.get("shape")
            if (
                layout is None
                or type(shape) is not tuple
                or not all(type(x) is int and x >= 0 for x in shape)
            ):
                anomaly("bad_argument", p - 1, "joblib array wrapper with unknown dtype or shape")
                return p
            itemsize, hasobject = layout
            joblib_arrays += 1
            if hasobject:
                loc = f"{location}>objarray{joblib_arrays}"
                sub = simulate_stream(
                    data,
                    fpos,
                    loc,
                    limits,
                    end=end,
                    nested_depth=nested_depth,
                    deadline=deadline,
                    decode_budget=budget,
                )
                extra_streams.append(sub.stream)
                extra_streams.extend(sub.extra_streams)
                if not sub.stream.complete:
                    raise _Halt("truncated", fpos, "joblib object array stream incomplete", pos=sub.file_end)
                npos = sub.file_end
            else:
                count = 0 if 0 in shape else 1
                for x in shape:
                    count *= x
                    if count > end:  # already past the data: no need for a product of huge ints
                        break
                npos = fpos
                if state.get("numpy_array_alignment_bytes") is not None:
                    if npos >= end:
                        raise _Halt("truncated", npos, "joblib array padding byte missing")
                    npos += 1 + data[npos]
                if count > end:  # the product may be a huge int: never print it
                    raise _Halt("truncated", fpos, "joblib array data longer than the whole region", pos=end)
                npos += count * itemsize
                if npos > end:
                    raise _Halt(
                        "truncated", fpos, f"joblib array data of {npos - fpos} bytes past the end", pos=end
                    )
                skipped += npos - fpos
            stack[-1] = Obj("numpy.ndarray", (), "", None)
            if p < frame_end:
                jump_at, jump_to = frame_end, npos
                raise _Reloop(p)
            return npos

        # ---- handlers: h(p) -> next position, p is the offset after the opcode byte ------------------

        def h_unknown(p: int) -> int:
            raise _Halt("unknown_opcode", p - 1, f"byte 0x{data[p - 1]:02x}")

        def h_generic(p: int) -> int:
            """Opcodes with a text or sized argument: decode with the shared readers, then simulate."""
            nonlocal big_seen
            code = data[p - 1]
            try:
                arg, q = ops.ARG_READER[code](data, p, end, md)
                ops.check_special(code, arg, q, end)
            except ops.ArgError as e:
                if e.next_pos is None:
                    raise _Halt(e.kind, p - 1, f"{ops.OPCODE_NAME[code]}: {e.detail}") from None
                anomaly(e.kind, p - 1, f"{ops.OPCODE_NAME[code]}: {e.detail}")
                arg, q = _BAD, e.next_pos
            if q - p > BIG_LITERAL:
                big_seen = True
            SIMULATE[code](arg, p - 1)
            return q

        def h_none(p: int) -> int:
            push(None)
            return p

        def h_true(p: int) -> int:
            push(True)
            return p

        def h_false(p: int) -> int:
            push(False)
            return p

        def h_binint1(p: int) -> int:
            if p >= end:
                trunc(p - 1, "BININT1")
            push(data[p])
            return p + 1

        def h_binint2(p: int) -> int:
            if p + 2 > end:
                trunc(p - 1, "BININT2")
            push(_U2(data, p)[0])
            return p + 2

        def h_binint(p: int) -> int:
            if p + 4 > end:
                trunc(p - 1, "BININT")
            push(_I4(data, p)[0])
            return p + 4

        def h_binfloat(p: int) -> int:
            if p + 8 > end:
                trunc(p - 1, "BINFLOAT")
            push(_F8(data, p)[0])
            return p + 8

        def h_long1(p: int) -> int:
            if p >= end:
                trunc(p - 1, "LONG1")
            n = data[p]
            q = p + 1 + n
            if q > end:
                trunc(p - 1, "LONG1")
            push(int.from_bytes(data[p + 1 : q], "little", signed=True))
            return q

        def h_short_binunicode(p: int) -> int:
            if p >= end:
                trunc(p - 1, "SHORT_BINUNICODE")
            q = p + 1 + data[p]
            if q > end:
                trunc(p - 1, "SHORT_BINUNICODE")
            try:
                s = data[p + 1 : q].decode("utf-8", "surrogatepass")
            except UnicodeDecodeError as e:
                anomaly("bad_argument", p - 1, f"SHORT_BINUNICODE: {e}")
                s = data[p + 1 : q].decode("latin-1")
            push(s)
            if len(strings) < max_lits:
                strings.append(s[:max_chars])
            return q

        def h_binunicode(p: int) -> int:
            nonlocal big_seen
            if p + 4 > end:
                trunc(p - 1, "BINUNICODE")
            q = p + 4 + _U4(data, p)[0]
            if q - p > BIG_LITERAL:
                big_seen = True
            if q > end:
                trunc(p - 1, "BINUNICODE")
            try:
                s = data[p + 4 : q].decode("utf-8", "surrogatepass")
            except UnicodeDecodeError as e:
                anomaly("bad_argument", p - 1, f"BINUNICODE: {e}")
                s = data[p + 4 : q].decode("latin-1")
            push(s)
            if len(strings) < max_lits:
                strings.append(s[:max_chars])
            return q

        def h_short_binbytes(p: int) -> int:
            if p >= end:
                trunc(p - 1, "SHORT_BINBYTES")
            q = p + 1 + data[p]
            if q > end:
                trunc(p - 1, "SHORT_BINBYTES")
            b = data[p + 1 : q]
            push(b)
            note_str(b)
            return q

        def h_binbytes(p: int) -> int:
            nonlocal big_seen
            if p + 4 > end:
                trunc(p - 1, "BINBYTES")
            q = p + 4 + _U4(data, p)[0]
            if q - p > BIG_LITERAL:
                big_seen = True
            if q > end:
                trunc(p - 1, "BINBYTES")
            b = data[p + 4 : q]
            push(b)
            note_str(b)
            return q

        def h_bytes8(p: int) -> int:
            """BINBYTES8 / BYTEARRAY8 with a length that fits: decoded here; anything else via h_generic."""
            nonlocal big_seen
            if p + 8 <= end:
                q = p + 8 + _U8(data, p)[0]
                if q <= end:
                    if q - p > BIG_LITERAL:
                        big_seen = True
                    b = data[p + 8 : q]
                    if data[p - 1] == 0x96:  # BYTEARRAY8
                        push(bytearray(b))
                    else:
                        push(b)
                    if len(strings) < max_lits:
                        strings.append(b[:max_chars].decode("latin-1"))
                    return q
            return h_generic(p)

        def h_empty_tuple(p: int) -> int:
            push(())
            return p

        def h_empty_list(p: int) -> int:
            push([])
            return p

        def h_empty_dict(p: int) -> int:
            push({})
            return p

        def h_empty_set(p: int) -> int:
            push(set())
            return p

        def h_mark(p: int) -> int:
            nonlocal fence
            fence = len(stack)
            marks.append(fence)
            return p

        def h_pop(p: int) -> int:
            nonlocal fence
            if marks and marks[-1] == len(stack):
                marks.pop()
                fence = marks[-1] if marks else 0
            else:
                pop(p - 1)
            return p

        def h_pop_mark(p: int) -> int:
            popmark(p - 1)
            return p

        def h_dup(p: int) -> int:
            push(top(p - 1))
            return p

        def h_tuple(p: int) -> int:
            nonlocal fence, maxd, max_marks
            if marks:
                n = len(stack)
                if n > maxd:
                    maxd = n
                if len(marks) > max_marks:
                    max_marks = len(marks)
                k = marks.pop()
                fence = marks[-1] if marks else 0
                push(tuple(stack[k:]))
                del stack[k:-1]
            else:
                push(tuple(popmark(p - 1)))
            return p

        def h_tuple1(p: int) -> int:
            if len(stack) > fence:
                stack[-1] = (stack[-1],)
            else:
                push((underflow(p - 1),))
            return p

        def h_tuple2(p: int) -> int:
            nonlocal maxd
            n = len(stack)
            if n - fence >= 2:
                if n > maxd:
                    maxd = n
                b = spop()
                stack[-1] = (stack[-1], b)
            else:
                b = pop(p - 1)
                push((pop(p - 1), b))
            return p

        def h_tuple3(p: int) -> int:
            nonlocal maxd
            n = len(stack)
            if n - fence >= 3:
                if n > maxd:
                    maxd = n
                c = spop()
                b = spop()
                stack[-1] = (stack[-1], b, c)
            else:
                c = pop(p - 1)
                b = pop(p - 1)
                push((pop(p - 1), b, c))
            return p

        def h_list(p: int) -> int:
            push(popmark(p - 1))
            return p

        def safe_items(items: list[Any], offset: int, what: str) -> list[Any]:
            """Keep the items that can be hashed without risk (deeply nested tuples overflow C hashing)."""
            kept = []
            for x in items:
                verdict = _key_verdict(x)
                if verdict == 1:
                    kept.append(x)
                elif verdict == 0:
                    anomaly("bad_argument", offset, f"unhashable {what}")
            return kept

        def set_items(target: Any, items: list[Any], offset: int) -> None:
            if len(items) % 2:
                anomaly("bad_argument", offset, "odd number of items for SETITEMS")
                items = items[:-1]
            if type(target) is dict:
                for i in range(0, len(items), 2):
                    k = items[i]
                    verdict = _key_verdict(k)
                    if verdict == 1:
                        target[k] = items[i + 1]
                    elif verdict == 0:
                        anomaly("bad_argument", offset, "unhashable dict key")

        def h_dict(p: int) -> int:
            d: dict[Any, Any] = {}
            set_items(d, popmark(p - 1), p - 1)
            push(d)
            return p

        def h_append(p: int) -> int:
            nonlocal maxd
            n = len(stack)
            if n - fence >= 2:
                if n > maxd:
                    maxd = n
                v = spop()
                t = stack[-1]
            else:
                v = pop(p - 1)
                t = top(p - 1)
            if type(t) is list:
                t.append(v)
            return p

        def h_appends(p: int) -> int:
            items = popmark(p - 1)
            t = stack[-1] if len(stack) > fence else underflow(p - 1)
            if type(t) is list:
                t.extend(items)
            return p

        def h_setitem(p: int) -> int:
            v = pop(p - 1)
            k = pop(p - 1)
            set_items(top(p - 1), [k, v], p - 1)
            return p

        def h_setitems(p: int) -> int:
            items = popmark(p - 1)
            t = stack[-1] if len(stack) > fence else underflow(p - 1)
            if type(t) is dict and not len(items) & 1 and set(map(type, items[::2])) <= _SCALAR_KEYS:
                it = iter(items)
                t.update(zip(it, it, strict=False))
            else:
                set_items(t, items, p - 1)
            return p

        def h_additems(p: int) -> int:
            items = popmark(p - 1)
            t = top(p - 1)
            if type(t) is set:
                t.update(safe_items(items, p - 1, "set item"))
            return p

        def h_frozenset(p: int) -> int:
            push(frozenset(safe_items(popmark(p - 1), p - 1, "frozenset item")))
            return p

        def h_binput(p: int) -> int:
            if p >= end:
                trunc(p - 1, "BINPUT")
            memo[data[p]] = stack[-1] if len(stack) > fence else underflow(p - 1)
            return p + 1

        def h_long_binput(p: int) -> int:
            if p + 4 > end:
                trunc(p - 1, "LONG_BINPUT")
            memo[_U4(data, p)[0]] = stack[-1] if len(stack) > fence else underflow(p - 1)
            return p + 4

        def h_memoize(p: int) -> int:
            memo[len(memo)] = stack[-1] if len(stack) > fence else underflow(p - 1)
            return p

        def h_binget(p: int) -> int:
            if p >= end:
                trunc(p - 1, "BINGET")
            try:
                push(memo[data[p]])
            except KeyError:
                anomaly("memo_missing", p - 1, f"BINGET {data[p]}")
                push(UNKNOWN)
            return p + 1

        def h_long_binget(p: int) -> int:
            if p + 4 > end:
                trunc(p - 1, "LONG_BINGET")
            k = _U4(data, p)[0]
            try:
                push(memo[k])
            except KeyError:
                anomaly("memo_missing", p - 1, f"LONG_BINGET {k}")
                push(UNKNOWN)
            return p + 4

        def h_stack_global(p: int) -> int:
            name = pop(p - 1)
            module = pop(p - 1)
            if type(module) is str and type(name) is str:
                push(imported(module, name, "STACK_GLOBAL", p - 1))
            else:
                anomaly("unresolved_global", p - 1, f"STACK_GLOBAL of {summarize(module)}, {summarize(name)}")
                m = module if type(module) is str else "?"
                n = name if type(name) is str else "?"
                imports.append(ImportRecord(m, n, "STACK_GLOBAL", p - 1))
                push(Global(m, n))
            return p

        def h_reduce(p: int) -> int:
            nonlocal maxd
            n = len(stack)
            if n - fence >= 2:
                if n > maxd:
                    maxd = n
                args = spop()
                fn = spop()
            else:
                args = pop(p - 1)
                fn = pop(p - 1)
            push(call(fn, args, "REDUCE", p - 1))
            return p

        def h_newobj(p: int) -> int:
            nonlocal maxd
            n = len(stack)
            if n - fence >= 2:
                if n > maxd:
                    maxd = n
                args = spop()
                cls = spop()
            else:
                args = pop(p - 1)
                cls = pop(p - 1)
            push(call(cls, args, "NEWOBJ", p - 1))
            return p

        def h_newobj_ex(p: int) -> int:
            kwargs = pop(p - 1)
            args = pop(p - 1)
            cls = pop(p - 1)
            if type(kwargs) is dict and kwargs and type(args) is tuple:
                args = (*args, kwargs)
            push(call(cls, args, "NEWOBJ_EX", p - 1))
            return p

        def h_obj(p: int) -> int:
            items = popmark(p - 1)
            if not items:
                push(call(underflow(p - 1), (), "OBJ", p - 1))
                return p
            cls = items[0]
            push(call(cls, tuple(items[1:]), "OBJ", p - 1))
            return p

        def h_build(p: int) -> int:
            nonlocal maxd
            n = len(stack)
            if n - fence >= 2:
                if n > maxd:
                    maxd = n
                state = spop()
                inst = stack[-1]
            else:
                state = pop(p - 1)
                inst = top(p - 1)
            calls.append(
                LazyCallRecord(
                    inst.callable if type(inst) is Obj else class_of(inst), "BUILD", p - 1, "", state
                )
            )
            if type(inst) is Global:
                # BUILD on a module or class sets its attributes (setattr): later imports see the new values.
                for part in state if type(state) is tuple else (state,):
                    if type(part) is dict:
                        for k, v in part.items():
                            if type(k) is str:
                                overrides[f"{inst.qual}.{k}"] = v
            elif isinstance(inst, Obj):
                if inst.kind == "partial" and type(state) is tuple and len(state) == 4:
                    fn, fargs = state[0], state[1]
                    inst.extra = (fn, tuple(fargs) if type(fargs) in (tuple, list) else ())
                inst.state = state
                if inst.callable in JOBLIB_WRAPPERS:
                    return joblib_read(inst, p)
            return p

        def h_binpersid(p: int) -> int:
            pid = pop(p - 1)
            persistent_ids.append(pid)
            push(Obj("<persistent_load>", pid, "persid"))
            return p

        def h_proto(p: int) -> int:
            nonlocal proto, first_proto
            if p >= end:
                trunc(p - 1, "PROTO")
            v = data[p]
            if v > ops.HIGHEST_PROTOCOL:
                anomaly("bad_argument", p - 1, f"unsupported pickle protocol: {v}")
            else:
                proto = v
            if first_proto < 0:
                first_proto = v
            return p + 1

        def h_frame(p: int) -> int:
            nonlocal frame_end
            if p + 8 > end:
                trunc(p - 1, "FRAME")
            q = p + 8 + _U8(data, p)[0]
            if q > end:
                trunc(p - 1, f"FRAME of {q - p - 8} bytes, {end - p - 8} left")
            frame_end = q
            return p + 8

        def h_stop(p: int) -> int:
            raise _Halt(None, p - 1, pos=p)

        def h_next_buffer(p: int) -> int:
            push(Obj("<out-of-band buffer>"))
            return p

        def h_readonly_buffer(p: int) -> int:
            top(p - 1)
            return p

        # ---- simulation of opcodes decoded by h_generic: s(arg, offset) --------------------------------

        def s_push(arg: Any, off: int) -> None:
            push(UNKNOWN if arg is _BAD else arg)

        def s_push_str(arg: Any, off: int) -> None:
            if arg is _BAD:
                push(UNKNOWN)
            else:
                push(arg)
                note_str(arg)

        def s_string(arg: Any, off: int) -> None:
            # STRING/BINSTRING/SHORT_BINSTRING: bytes decoded with the loader's encoding (ASCII by default);
            # kept as text here (latin-1) so names and payloads stay readable.
            if arg is _BAD:
                push(UNKNOWN)
            else:
                s = arg.decode("latin-1")
                push(s)
                note_str(s)

        def s_bytearray(arg: Any, off: int) -> None:
            if arg is _BAD:
                push(UNKNOWN)
            else:
                push(bytearray(arg))
                note_str(arg)

        def s_put(arg: Any, off: int) -> None:
            v = top(off)
            if arg is not _BAD:
                memo[arg] = v

        def s_get(arg: Any, off: int) -> None:
            if arg is _BAD:
                push(UNKNOWN)
                return
            try:
                push(memo[arg])
            except (KeyError, TypeError):
                anomaly("memo_missing", off, f"GET {arg}")
                push(UNKNOWN)

        def s_global(arg: Any, off: int) -> None:
            if arg is _BAD:
                anomaly("unresolved_global", off, "GLOBAL with undecodable name")
                imports.append(ImportRecord("?", "?", "GLOBAL", off))
                push(Global("?", "?"))
                return
            push(imported(arg[0], arg[1], "GLOBAL", off))

        def s_inst(arg: Any, off: int) -> None:
            items = popmark(off)
            if arg is _BAD:
                anomaly("unresolved_global", off, "INST with undecodable name")
                g = Global("?", "?")
                imports.append(ImportRecord("?", "?", "INST", off))
            else:
                g = imported(arg[0], arg[1], "INST", off)
            push(call(g, tuple(items), "INST", off))

        def s_persid(arg: Any, off: int) -> None:
            persistent_ids.append(arg)
            push(Obj("<persistent_load>", arg, "persid"))

        def s_ext(arg: Any, off: int) -> None:
            if arg is _BAD or arg <= 0:
                anomaly("bad_argument", off, f"EXT code {arg!r} <= 0")
                push(UNKNOWN)
                return
            key = copyreg._inverted_registry.get(arg)
            if key is None:
                anomaly("unresolved_global", off, f"extension code {arg} not registered")
                push(UNKNOWN)
            else:
                push(imported(key[0], key[1], ops.OPCODE_NAME[data[off]] or "EXT", off))

        handlers: list[Any] = [h_unknown] * 256
        for c in ops.VALID_OPCODES:
            handlers[c] = h_generic
        fast = {
            "NONE": h_none,
            "NEWTRUE": h_true,
            "NEWFALSE": h_false,
            "BININT1": h_binint1,
            "BININT2": h_binint2,
            "BININT": h_binint,
            "BINFLOAT": h_binfloat,
            "LONG1": h_long1,
            "SHORT_BINUNICODE": h_short_binunicode,
            "BINUNICODE": h_binunicode,
            "SHORT_BINBYTES": h_short_binbytes,
            "BINBYTES": h_binbytes,
            "BINBYTES8": h_bytes8,
            "BYTEARRAY8": h_bytes8,
            "EMPTY_TUPLE": h_empty_tuple,
            "EMPTY_LIST": h_empty_list,
            "EMPTY_DICT": h_empty_dict,
            "EMPTY_SET": h_empty_set,
            "MARK": h_mark,
            "POP": h_pop,
            "POP_MARK": h_pop_mark,
            "DUP": h_dup,
            "TUPLE": h_tuple,
            "TUPLE1": h_tuple1,
            "TUPLE2": h_tuple2,
            "TUPLE3": h_tuple3,
            "LIST": h_list,
            "DICT": h_dict,
            "APPEND": h_append,
            "APPENDS": h_appends,
            "SETITEM": h_setitem,
            "SETITEMS": h_setitems,
            "ADDITEMS": h_additems,
            "FROZENSET": h_frozenset,
            "BINPUT": h_binput,
            "LONG_BINPUT": h_long_binput,
            "MEMOIZE": h_memoize,
            "BINGET": h_binget,
            "LONG_BINGET": h_long_binget,
            "STACK_GLOBAL": h_stack_global,
            "REDUCE": h_reduce,
            "NEWOBJ": h_newobj,
            "NEWOBJ_EX": h_newobj_ex,
            "OBJ": h_obj,
            "BUILD": h_build,
            "BINPERSID": h_binpersid,
            "PROTO": h_proto,
            "FRAME": h_frame,
            "STOP": h_stop,
            "NEXT_BUFFER": h_next_buffer,
            "READONLY_BUFFER": h_readonly_buffer,
        }
        for name, h in fast.items():
            handlers[_C[name]] = h
        SIMULATE: list[Any] = [None] * 256  # noqa: N806 - a table, read by h_generic
        slow = {
            "INT": s_push,
            "LONG": s_push,
            "LONG4": s_push,
            "FLOAT": s_push,
            "STRING": s_string,
            "BINSTRING": s_string,
            "SHORT_BINSTRING": s_string,
            "BINBYTES8": s_push_str,
            "BYTEARRAY8": s_bytearray,
            "UNICODE": s_push_str,
            "BINUNICODE8": s_push_str,
            "PUT": s_put,
            "GET": s_get,
            "GLOBAL": s_global,
            "INST": s_inst,
            "PERSID": s_persid,
            "EXT1": s_ext,
            "EXT2": s_ext,
            "EXT4": s_ext,
        }
        for name, s in slow.items():
            SIMULATE[_C[name]] = s
        missing = [
            ops.OPCODE_NAME[c] for c in ops.VALID_OPCODES if handlers[c] is h_generic and SIMULATE[c] is None
        ]
        assert not missing, missing

        # ---- the loop ---------------------------------------------------------------------------------

        def run(
            data_: bytes,
            start_: int,
            end_: int,
            location_: str,
            limits_: Limits,
            nested_depth_: int,
            deadline_: float,
            budget_: list[int],
        ) -> StreamRun:
            nonlocal data, start, end, location, limits, nested_depth, deadline, md, max_lits, max_chars
            nonlocal anomalies, imports, calls, strings, persistent_ids
            nonlocal overrides, extra_streams, fence, maxd, max_marks, proto, first_proto, frame_end
            nonlocal jump_at, jump_to, nested_count, joblib_arrays, skipped, budget, big_seen
            data, start, end, location, limits = data_, start_, end_, location_, limits_
            budget, big_seen = budget_, False
            nested_depth, deadline = nested_depth_, deadline_
            md = limits.max_int_digits
            max_lits, max_chars = limits.max_string_literals, limits.max_string_chars
            # stack, marks, memo, overrides and seq are emptied after each run and reused (fewer allocations)
            anomalies = []
            imports = []
            calls = []
            strings = []
            persistent_ids = []
            overrides = {}
            extra_streams = []
            fence = maxd = max_marks = proto = frame_end = nested_count = joblib_arrays = skipped = 0
            first_proto = jump_at = jump_to = -1
            try:
                return run_loop()
            finally:
                # drop references to the stream's data and values: the engine waits idle in the pool
                data = b""
                stack.clear()
                memo.clear()
                marks.clear()
                overrides.clear()
                seq.clear()

        def run_loop() -> StreamRun:
            nonlocal fence, maxd, max_marks, jump_at, jump_to
            max_ops = limits.max_opcodes
            max_stack = limits.max_stack_depth
            seq_append = seq.append
            calls_append = calls.append
            pos = start
            halt: _Halt | None = None
            stop_value: Any = UNKNOWN
            n_data = len(data)
            while halt is None:
                lim = jump_at if jump_at >= 0 else end
                try:
                    if lim == n_data:
                        # Fast path: no bound check per opcode; reading past the data raises IndexError.
                        while True:
                            n = len(seq)
                            if n >= max_ops:
                                raise _Halt("limit_opcodes", pos, f"max_opcodes={max_ops}")
                            if time.monotonic() > deadline:
                                raise _Halt("limit_time", pos, "max_seconds reached")
                            if len(stack) > max_stack:
                                raise _Halt(
                                    "limit_stack", pos, f"stack deeper than max_stack_depth={max_stack}"
                                )
                            if len(stack) > maxd:
                                maxd = len(stack)
                            for _ in range(min(CHECK_EVERY, max_ops - n)):
                                code = data[pos]
                                seq_append(code)
                                # The commonest opcodes run inline (no handler call), the rest via the table.
                                # Inline code reads before it moves `pos`: an argument past the end raises
                                # IndexError/struct.error with `pos` on the opcode, and its handler reports it.
                                if code >= 0x60:
                                    if code == 0x68:  # BINGET
                                        try:
                                            push(memo[data[pos + 1]])
                                        except KeyError:
                                            anomaly("memo_missing", pos, f"BINGET {data[pos + 1]}")
                                            push(UNKNOWN)
                                        pos += 2
                                    elif code == 0x94:  # MEMOIZE
                                        memo[len(memo)] = stack[-1] if len(stack) > fence else underflow(pos)
                                        pos += 1
                                    elif code == 0x72:  # LONG_BINPUT
                                        memo[_U4(data, pos + 1)[0]] = (
                                            stack[-1] if len(stack) > fence else underflow(pos)
                                        )
                                        pos += 5
                                    elif code == 0x71:  # BINPUT
                                        memo[data[pos + 1]] = (
                                            stack[-1] if len(stack) > fence else underflow(pos)
                                        )
                                        pos += 2
                                    elif code == 0x74 and marks:  # TUPLE
                                        n = len(stack)
                                        if n > maxd:
                                            maxd = n
                                        if len(marks) > max_marks:
                                            max_marks = len(marks)
                                        k = marks.pop()
                                        fence = marks[-1] if marks else 0
                                        t = tuple(stack[k:])
                                        del stack[k:]
                                        push(t)
                                        pos += 1
                                    elif code == 0x85 and len(stack) > fence:  # TUPLE1
                                        stack[-1] = (stack[-1],)
                                        pos += 1
                                    elif code == 0x8C:  # SHORT_BINUNICODE
                                        q = pos + 2 + data[pos + 1]
                                        raw = data[pos + 2 : q]
                                        if q > n_data or not raw.isascii():
                                            pos = handlers[code](pos + 1)  # truncated or non-ASCII
                                            continue
                                        text = raw.decode("ascii")
                                        push(text)
                                        if len(strings) < max_lits:
                                            strings.append(text[:max_chars])
                                        pos = q
                                    elif code == 0x87 and len(stack) - fence >= 3:  # TUPLE3
                                        n = len(stack)
                                        if n > maxd:
                                            maxd = n
                                        c3 = spop()
                                        b2 = spop()
                                        stack[-1] = (stack[-1], b2, c3)
                                        pos += 1
                                    elif code == 0x86 and len(stack) - fence >= 2:  # TUPLE2
                                        n = len(stack)
                                        if n > maxd:
                                            maxd = n
                                        b2 = spop()
                                        stack[-1] = (stack[-1], b2)
                                        pos += 1
                                    elif code == 0x89:  # NEWFALSE
                                        push(False)
                                        pos += 1
                                    elif code == 0x7D:  # EMPTY_DICT
                                        push({})
                                        pos += 1
                                    elif code == 0x6A:  # LONG_BINGET
                                        key = _U4(data, pos + 1)[0]
                                        try:
                                            push(memo[key])
                                        except KeyError:
                                            anomaly("memo_missing", pos, f"LONG_BINGET {key}")
                                            push(UNKNOWN)
                                        pos += 5
                                    elif code == 0x88:  # NEWTRUE
                                        push(True)
                                        pos += 1
                                    elif code == 0x75 and marks:  # SETITEMS
                                        n = len(stack)
                                        if n > maxd:
                                            maxd = n
                                        if len(marks) > max_marks:
                                            max_marks = len(marks)
                                        k = marks.pop()
                                        fence = marks[-1] if marks else 0
                                        items = stack[k:]
                                        del stack[k:]
                                        t = stack[-1] if len(stack) > fence else underflow(pos)
                                        if (
                                            type(t) is dict
                                            and not len(items) & 1
                                            and set(map(type, items[::2])) <= _SCALAR_KEYS
                                        ):
                                            it = iter(items)
                                            t.update(zip(it, it, strict=False))
                                        else:
                                            set_items(t, items, pos)
                                        pos += 1
                                    else:
                                        pos = handlers[code](pos + 1)
                                elif code == 0x4B:  # BININT1
                                    push(data[pos + 1])
                                    pos += 2
                                elif code == 0x28:  # MARK
                                    fence = len(stack)
                                    marks.append(fence)
                                    pos += 1
                                elif code == 0x52 and len(stack) - fence >= 2:  # REDUCE
                                    n = len(stack)
                                    if n > maxd:
                                        maxd = n
                                    args = spop()
                                    fn = spop()
                                    if type(fn) is Global and fn.qual not in _SPECIAL:
                                        qual = fn.qual
                                        calls_append(LazyCallRecord(qual, "REDUCE", pos, "", args))
                                        push(Obj(qual, args))
                                    else:
                                        push(call(fn, args, "REDUCE", pos))
                                    pos += 1
                                elif code == 0x58:  # BINUNICODE
                                    q = pos + 5 + _U4(data, pos + 1)[0]
                                    if q > n_data or q - pos > BIG_LITERAL:
                                        pos = handlers[code](pos + 1)  # truncated or big
                                        continue
                                    raw = data[pos + 5 : q]
                                    if not raw.isascii():
                                        pos = handlers[code](pos + 1)  # non-ASCII
                                        continue
                                    text = raw.decode("ascii")
                                    push(text)
                                    if len(strings) < max_lits:
                                        strings.append(text[:max_chars])
                                    pos = q
                                elif code == 0x29:  # EMPTY_TUPLE
                                    push(())
                                    pos += 1
                                elif code == 0x4E:  # NONE
                                    push(None)
                                    pos += 1
                                elif code == 0x51 and len(stack) > fence:  # BINPERSID
                                    pid = stack[-1]
                                    persistent_ids.append(pid)
                                    stack[-1] = Obj("<persistent_load>", pid, "persid")
                                    pos += 1
                                elif code == 0x47:  # BINFLOAT
                                    push(_F8(data, pos + 1)[0])
                                    pos += 9
                                elif code == 0x4A:  # BININT
                                    push(_I4(data, pos + 1)[0])
                                    pos += 5
                                elif code == 0x5D:  # EMPTY_LIST
                                    push([])
                                    pos += 1
                                elif code == 0x2E:  # STOP
                                    break
                                else:
                                    pos = handlers[code](pos + 1)
                            else:
                                continue  # the chunk ran out: check the limits, read on
                            break  # STOP
                        halt = _STOPPED
                        stop_value = pop(pos)
                        pos += 1
                        break
                    else:
                        while pos < lim:
                            n = len(seq)
                            if not n & (CHECK_EVERY - 1):
                                if n >= max_ops:
                                    raise _Halt("limit_opcodes", pos, f"max_opcodes={max_ops}")
                                if time.monotonic() > deadline:
                                    raise _Halt("limit_time", pos, "max_seconds reached")
                                if len(stack) > max_stack:
                                    raise _Halt(
                                        "limit_stack", pos, f"stack deeper than max_stack_depth={max_stack}"
                                    )
                            elif n >= max_ops:
                                raise _Halt("limit_opcodes", pos, f"max_opcodes={max_ops}")
                            code = data[pos]
                            seq_append(code)
                            pos = handlers[code](pos + 1)
                except _Halt as h:
                    halt = h
                    if h.kind is None:
                        stop_value = pop(h.offset)
                    elif h.kind == "unknown_opcode":
                        del seq[-1:]
                    pos = h.pos
                    break
                except _Reloop as r:
                    pos = r.pos
                    continue
                except (IndexError, struct.error):
                    if pos < n_data:
                        # An inline opcode ran past the data: let its handler report the truncation properly.
                        try:
                            handlers[data[pos]](pos + 1)
                            halt = _Halt("truncated", pos, f"{ops.OPCODE_NAME[data[pos]]} argument truncated")
                        except _Halt as h:
                            halt = h
                        except (IndexError, struct.error):
                            halt = _Halt("truncated", pos, f"{ops.OPCODE_NAME[data[pos]]} argument truncated")
                        break
                if jump_at >= 0 and pos == jump_at:
                    pos, jump_at, jump_to = jump_to, -1, -1
                    continue
                break

            if halt is None:
                complete = False
                anomaly("no_stop", pos, "stream ends without STOP")
            elif halt.kind is None:
                complete = True
            else:
                complete = False
                anomaly(halt.kind, halt.offset, halt.detail)
            if len(stack) > maxd:
                maxd = len(stack)
            if halt is not None and halt.kind == "limit_stack":
                # Too deep to simulate: read the rest as plain opcodes (imports of GLOBAL/INST, strings, counts).

                def on_token(off: int, code: int, arg: Any) -> None:
                    seq_append(code)
                    if code in _TEXT_IMPORT_CODES and type(arg) is tuple:
                        module, name = find_class(*arg)
                        imports.append(ImportRecord(module, name, names_[code], off))
                    elif code in _STRING_CODES and type(arg) in (str, bytes):
                        note_str(arg)

                rest = ops.tokenize(
                    data,
                    pos,
                    end,
                    location=location,
                    deadline=deadline,
                    limits=dataclasses.replace(limits, max_opcodes=max(max_ops - len(seq), 0)),
                    on_token=on_token,  # streamed: millions of leftover opcodes are never held as tuples
                )
                anomalies.extend(rest.anomalies[: MAX_ANOMALIES_PER_STREAM - len(anomalies)])
                complete, pos = rest.complete, rest.end

            opcode_counts, n_strings, puts, gets, top_proto = _tally(seq, first_proto < 0)
            protocol = first_proto if first_proto >= 0 else top_proto
            nesting = max(
                max_marks,
                len(marks),
                _nesting(stop_value) if complete and type(stop_value) in _CONTAINERS else 0,
            )
            # Positional arguments (checked against the field order at import): half the cost of keywords.
            stream = Stream(
                location,
                start,
                pos,
                protocol,
                first_proto >= 0,
                complete,
                len(seq),
                opcode_counts,
                bytes(seq),
                imports,
                calls,
                strings,
                n_strings,
                anomalies,
                maxd,
                nesting,
                puts,
                gets,
                nested_depth,
                skipped,
            )
            if big_seen and calls:
                _drop_big_references(calls)
            file_end = max(pos, frame_end) if complete else pos
            return StreamRun(stream, stop_value, persistent_ids, extra_streams, file_end, joblib_arrays)

        self.run = run


class _BadArg:
    """Marker for an argument the loader rejects but whose extent is known (reading goes on)."""

    __slots__ = ()


_BAD = _BadArg()
