"""What each call of a stream does, beyond its name: how the callee was reached, the argument values the engine
saw (bounded), whether the call's result stays in the object graph, and whether it ran before any data object.

`call_sites(stream)` reads the records the engine left on a stream (`LazyCallRecord` slots and the stream's
`context`); nothing here is part of the `analyze --json` output. Bounded: arguments are copies with strings and
bytes cut to `ARG_KEEP_CHARS`, and the reachability walk visits at most `MAX_WALK` values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from safepickle_bench.analysis import opcodes as ops
from safepickle_bench.analysis.callables import SPECIAL_CALLABLES
from safepickle_bench.analysis.result import CallRecord, Stream
from safepickle_bench.analysis.values import UNKNOWN, Global, LazyCallRecord, Obj, bounded

MAX_WALK = 200_000
"""Values visited when deciding which call results stay in the object graph; past it, `kept` is None."""
MAX_SITES = 10_000
"""Call sites described per stream (a stream of a million calls is described by its first ones)."""

_C = ops.NAME_TO_CODE
DATA_OPCODES: tuple[int, ...] = tuple(
    _C[n] for n in ("EMPTY_DICT", "EMPTY_LIST", "EMPTY_SET", "DICT", "LIST", "FROZENSET")
)
"""Opcodes that build a data container (tuples are left out: they are how arguments are passed)."""
_IMPORT_REACH = {
    "GLOBAL": "global",
    "STACK_GLOBAL": "stack_global",
    "INST": "inst",
    "EXT1": "ext",
    "EXT2": "ext",
    "EXT4": "ext",
}
_CONTAINERS = (tuple, list, set, frozenset, dict)


class CallContext:
    """Per-stream state `call_sites` needs: the value at STOP and the values decoding calls produced."""

    __slots__ = ("stop_value", "decoded", "kept")

    def __init__(self, stop_value: Any, decoded: dict[int, tuple[Any, int]] | None) -> None:  # noqa: ANN401
        self.stop_value = stop_value
        """The stream's value at STOP (UNKNOWN when the stream did not reach it)."""
        self.decoded = decoded
        self.kept: list[bool | None] | None = None
        """Per call record, whether its result stays in the object graph (computed once)."""

    def resolve(self, calls: list[CallRecord]) -> list[bool | None]:
        """Decide, once, which calls' results are reachable from the value at STOP or used by another call."""
        if self.kept is None:
            self.kept = _reachable_results(self.stop_value, calls)
        return self.kept

    def release(self, calls: list[CallRecord]) -> None:
        """Resolve now and drop the references to the object graph (a stream that read big literals)."""
        self.resolve(calls)
        self.stop_value = UNKNOWN
        for rec in calls:
            if type(rec) is LazyCallRecord:
                rec.result = None


def _reachable_results(stop_value: Any, calls: list[CallRecord]) -> list[bool | None]:  # noqa: ANN401
    """Return, per call record, whether its result is reachable from `stop_value` or from any call's arguments
    (None for all when the walk exceeds MAX_WALK or the stream did not reach STOP)."""
    roots: list[Any] = [] if stop_value is UNKNOWN else [stop_value]
    for rec in calls:
        if type(rec) is LazyCallRecord:  # arguments (a BUILD's state) are used by their call
            roots.append(rec.raw)
    seen: set[int] = set()
    todo = roots
    steps = 0
    while todo:
        v = todo.pop()
        t = type(v)
        if t is Obj:
            if id(v) in seen:
                continue
            seen.add(id(v))
            todo.append(v.args)
            if v.state is not None:
                todo.append(v.state)
            if type(v.extra) is tuple:
                todo.append(v.extra)
        elif t in _CONTAINERS:
            if id(v) in seen:
                continue
            seen.add(id(v))
            if t is dict:
                todo.extend(v.keys())
                todo.extend(v.values())
            else:
                todo.extend(v)
        elif t is Global or t is bytes or t is bytearray or t is str:
            seen.add(id(v))
        steps += 1
        if steps > MAX_WALK:
            return [None] * len(calls)
    complete = stop_value is not UNKNOWN
    out: list[bool | None] = []
    for rec in calls:
        result = rec.result if type(rec) is LazyCallRecord else None
        if result is None or (type(result) not in (Obj, Global, bytes, bytearray, str) and
                              type(result) not in _CONTAINERS):
            out.append(None)
        elif id(result) in seen:
            out.append(True)
        else:
            out.append(False if complete else None)
    return out


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~10x, and a file can hold 10^4 sites
class CallSite:
    """One call the loader would make, described by what it does (never changed once built)."""

    callable: str
    """`module.qualname` of the callee (for BUILD, the class whose state is set); `?` parts when unknown."""
    module: str
    """The module part of the callee as imported (GLOBAL/STACK_GLOBAL/INST line), '' when not imported by name."""
    opcode: str
    """REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ or BUILD."""
    reach: str
    """How the callee was reached: global, stack_global, inst, ext, getattr (an attribute of a module or class),
    memo (an imported callable used again from the memo), instance_attr (a method of a rebuilt instance),
    value_attr, partial, attrgetter, methodcaller, map, call_result, unknown."""
    args: tuple[Any, ...]
    """The arguments as the engine saw them, bounded (`values.bounded`); for BUILD, the state as one item."""
    kept: bool | None
    """Whether the result stays in the object graph (reachable from STOP, or used by another call); None when
    unknown (stream without STOP, walk budget hit, a plain record)."""
    before_data: bool
    """True when the call ran before any data container (dict, list, set) was built in its stream."""
    decode_layers: int
    """Most decoding calls (base64, hex, zlib...) chained behind one of the arguments."""
    special: bool
    """True for callables the engine evaluates (getattr, partial, decoders, loads...)."""
    offset: int
    location: str


def first_data_index(stream: Stream) -> int:
    """Return the opcode index of the first data-container opcode of a stream (its opcode count if none)."""
    seq = stream.opcode_seq
    found = [i for i in (seq.find(bytes((c,))) for c in DATA_OPCODES) if i >= 0]
    return min(found) if found else len(seq)


def _decode_layers(value: Any, decoded: dict[int, tuple[Any, int]], depth: int = 3) -> int:  # noqa: ANN401
    """Return the most decoding layers behind any leaf of an argument value (bounded depth)."""
    hit = decoded.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    if depth > 0 and type(value) in (tuple, list):
        return max((_decode_layers(x, decoded, depth - 1) for x in value[:32]), default=0)
    return 0


def call_sites(stream: Stream, relevant: Callable[[str], bool] | None = None) -> list[CallSite]:
    """Return the call sites of one stream, in order (at most MAX_SITES); plain records give minimal sites.

    With `relevant`, a site whose callable it rejects keeps only its name, opcode, reach and order (no argument
    copy, `kept` None), and the object graph is not walked when it rejects every callable."""
    calls = stream.calls[:MAX_SITES]
    if not calls:
        return []
    ctx = stream.context if isinstance(stream.context, CallContext) else None
    wanted = [True] * len(calls) if relevant is None else [relevant(rec.callable) for rec in calls]
    if ctx is not None and (ctx.kept is not None or any(wanted)):
        kept = ctx.resolve(stream.calls)[:MAX_SITES]
    else:
        kept = [None] * len(calls)
    decoded = ctx.decoded if ctx is not None else None
    imported: dict[str, list[tuple[str, str]]] = {}
    for imp in stream.imports:
        q = f"{imp.module}.{imp.name}" if imp.name else imp.module
        imported.setdefault(q, []).append((imp.module, imp.opcode))
    used: dict[str, int] = {}
    data_at = first_data_index(stream)
    sites: list[CallSite] = []
    for rec, k, want in zip(calls, kept, wanted, strict=False):
        qual = rec.callable
        lazy = type(rec) is LazyCallRecord and want
        raw = rec.raw if lazy else ()
        module = ""
        if rec.opcode == "BUILD":
            reach = "build"
            args: tuple[Any, ...] = (bounded(raw),) if lazy else ()
        else:
            reach = rec.reach if type(rec) is LazyCallRecord else ""
            args = bounded(raw) if type(raw) is tuple else ((bounded(raw),) if lazy else ())
            if not reach:
                seen = imported.get(qual)
                n = used.get(qual, 0)
                used[qual] = n + 1
                if seen:
                    module = seen[min(n, len(seen) - 1)][0]
                    how = seen[min(n, len(seen) - 1)][1]
                    reach = "memo" if n >= len(seen) else _IMPORT_REACH.get(how, "getattr")
                else:
                    reach = "unknown"
        layers = 0
        if decoded and lazy:
            layers = _decode_layers(raw, decoded)
        index = rec.index if type(rec) is LazyCallRecord else -1
        sites.append(
            CallSite(
                qual,
                module,
                rec.opcode,
                reach,
                args,
                k,
                0 <= index < data_at,
                layers,
                qual in SPECIAL_CALLABLES,
                rec.offset,
                stream.location,
            )
        )
    return sites
