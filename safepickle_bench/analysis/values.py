"""Symbolic values of the pickle machine and how they are summarised, hashed and measured.

Literals are plain Python values (str, bytes, int, float, bool, None, tuple, list, dict, set, frozenset);
everything the loader would build by calling something is a `Global` (an imported object) or an `Obj` (the
result of a call). Nothing here imports or calls what a pickle names.
"""

from __future__ import annotations

from typing import Any

from safepickle_bench.analysis.result import CallRecord

ARG_STR_CHARS = 80
"""Characters of a string literal kept in a call's argument summary."""
ARG_SUMMARY_CHARS = 300
"""Characters of a whole argument summary."""


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


def drop_big_references(calls: list[CallRecord]) -> None:
    """Summarise now the lazy call records that hold big literals, and keep only a bounded copy of their
    arguments, so a finished stream does not keep the literals."""
    for rec in calls:
        if type(rec) is LazyCallRecord and rec.raw is not _UNSET and _holds_big(rec.raw):
            rec.args  # noqa: B018 - computing the summary before the arguments are cut
            rec.raw = bounded(rec.raw)


ARG_KEEP_CHARS = 4096
"""Characters (or bytes) of a string argument kept once its stream ends: what code-likeness tests read."""
_BOUND_ITEMS = 32


class Clipped:
    """A string, bytes or int argument cut to its first ARG_KEEP_CHARS characters, with its real size."""

    __slots__ = ("head", "size")

    def __init__(self, head: Any, size: int) -> None:  # noqa: ANN401
        self.head = head
        """The first characters (str), bytes (bytes), or None for an int (`size` is then its bit length)."""
        self.size = size

    def __repr__(self) -> str:
        return f"<{type(self.head).__name__} of {self.size}>"


def bounded(value: Any, depth: int = 4) -> Any:  # noqa: ANN401
    """Return a copy of a symbolic value whose big literals are `Clipped` and containers hold at most 32 items
    (4 levels deep); calls and imports stay as they are (their own arguments are not copied)."""
    t = type(value)
    if t is str or t is bytes or t is bytearray:
        return value if len(value) <= ARG_KEEP_CHARS else Clipped(value[:ARG_KEEP_CHARS], len(value))
    if t is int:
        return value if value.bit_length() <= 64 else Clipped(None, value.bit_length())
    if t is tuple or t is list or t is set or t is frozenset:
        if depth <= 0:
            return t()
        items = [bounded(x, depth - 1) for x in list(value)[:_BOUND_ITEMS]]
        return tuple(items) if t is not list else items
    if t is dict:
        if depth <= 0:
            return {}
        out = {}
        for k, v in list(value.items())[:_BOUND_ITEMS]:
            if key_verdict(k) == 1 and (type(k) is not str or len(k) <= ARG_KEEP_CHARS):
                out[k] = bounded(v, depth - 1)
        return out
    if t is Obj:  # only what was called is kept: its own arguments may hold the big literal
        return Obj(qual_of(value) if value.kind else value.callable)
    return value


class LazyCallRecord(CallRecord):
    """A `CallRecord` whose `args` summary is computed on first read, not while the stream is simulated.

    Summarising every call's arguments was a quarter of the analyzer's time, and most summaries are never
    read (features use callables and counts). The record keeps the symbolic arguments (`raw`), the value the
    call produced (`result`), the opcode index it ran at (`index`) and, where the engine knows it at the call,
    how the callee was reached (`reach`): `analysis.call_sites` reads them. None of them is part of the JSON:
    the record compares equal to a plain `CallRecord` with the same fields and pickles as one.
    """

    __slots__ = ("raw", "result", "index", "reach")

    def __init__(
        self,
        callable: str,  # noqa: A002 - the dataclass field names, so dataclasses.replace() works
        opcode: str,
        offset: int,
        args: str = "",
        raw: Any = _UNSET,  # noqa: ANN401
        result: Any = None,  # noqa: ANN401
        index: int = -1,
        reach: str = "",
    ) -> None:
        """Record a call; `raw` (the symbolic arguments) is summarised into `args` when first read."""
        self.callable = callable
        self.opcode = opcode
        self.offset = offset
        if raw is _UNSET:
            _ARGS_SLOT.__set__(self, args)
        self.raw = raw
        self.result = result
        self.index = index
        self.reach = reach

    @property  # type: ignore[override]
    def args(self) -> str:
        """Return the short summary of the call's literal arguments (computed once)."""
        try:
            return _ARGS_SLOT.__get__(self)  # type: ignore[no-any-return]
        except AttributeError:
            text = summarize(self.raw)
            _ARGS_SLOT.__set__(self, text)
            return text

    @args.setter
    def args(self, value: str) -> None:
        _ARGS_SLOT.__set__(self, value)

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
        """True while the summary is not computed yet."""
        try:
            _ARGS_SLOT.__get__(self)
        except AttributeError:
            return True
        return False

    def plain(self) -> CallRecord:
        """Return the record as a plain `CallRecord` (summary computed)."""
        return CallRecord(self.callable, self.opcode, self.offset, self.args)

    def __reduce__(self) -> tuple[Any, ...]:
        return CallRecord, (self.callable, self.opcode, self.offset, self.args)


SCALAR_KEYS = frozenset({str, int, bytes, float, bool, type(None), Global, Obj, _Unknown})
_UNHASHABLE = frozenset({list, dict, set, bytearray})


def key_verdict(v: Any, budget: int = 256) -> int:
    """Return 1 if a value hashes safely, 0 if it is unhashable (the loader fails too), -1 if too deep to try."""
    t = type(v)
    if t in SCALAR_KEYS:
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
            elif ty not in SCALAR_KEYS:
                return 0 if ty in _UNHASHABLE else -1
    return 1


def nesting(value: Any, cap: int = 256) -> int:
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
            items = v.values() if t is dict else v
            if len(items) > 32 and _NESTING_TYPES.isdisjoint(map(type, items)):
                continue  # a long run of scalars (array data): checked at C speed, nothing to push
            for x in items:
                if type(x) in (tuple, list, set, frozenset, dict):
                    todo.append((x, d))
    return best


_NESTING_TYPES = frozenset({tuple, list, set, frozenset, dict})


class _TooBig:
    """Returned by a decoder when a decompression would produce more than it may."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<too big>"


TOO_BIG = _TooBig()
BIG_LITERAL = 1 << 16
"""Bytes of a literal past which a call record does not keep a reference to it after its stream ends."""


class _BadArg:
    """Marker for an argument the loader rejects but whose extent is known (reading goes on)."""

    __slots__ = ()


BAD = _BadArg()
