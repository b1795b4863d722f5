"""Calls in a pickle (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ): recorded, and evaluated where they have static
semantics (getattr chains, partial, __import__, decoders, nested loads...; see `callables.Special`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from safepickle_bench.analysis.callables import SPECIAL_CALLABLES, UNPICKLER_CLASSES, Special
from safepickle_bench.analysis.decoders import BYTESIO_CLASSES, as_bytes, decode_call
from safepickle_bench.analysis.machine import Machine
from safepickle_bench.analysis.values import (
    BIG_LITERAL,
    TOO_BIG,
    UNKNOWN,
    Global,
    LazyCallRecord,
    Obj,
    key_verdict,
    qual_of,
)

Evaluator = Callable[[Machine, str, Any, tuple[Any, ...], str, int], Any]
"""(machine, callable name, arguments, arguments as a tuple, opcode name, offset) -> the call's value, or
OPAQUE when the call has no static value (it then builds an opaque `Obj`)."""


class _Opaque:
    """The value of a call that has no static value of its own (None is a value: `loads` of a pickled None)."""

    __slots__ = ()


OPAQUE = _Opaque()


def module_value(name: Any, fromlist: Any = None) -> Any:  # noqa: ANN401
    """Return the module `__import__(name, ..., fromlist)` gives: the top package without a fromlist."""
    if type(name) is not str or not name:
        return UNKNOWN
    if fromlist is None or (type(fromlist) in (tuple, list) and not fromlist):
        return Global(name.split(".")[0], "")
    return Global(name, "")


def call(m: Machine, fn: Any, args: Any, opname: str, offset: int) -> Any:  # noqa: ANN401
    """Record the call `fn(*args)` and return its symbolic value."""
    targs = args if type(args) is tuple else ()
    if type(fn) is Obj and fn.kind == "partial":
        func, pargs = fn.extra  # partial(f, *a)(*b) is the call f(*a, *b): record that one
        return call(m, func, tuple(pargs) + targs, opname, offset)
    qual = qual_of(fn)
    rec = LazyCallRecord(qual, opname, offset, "", args, None, len(m.seq), _reach_of(fn))
    m.calls.append(rec)
    if type(fn) is Obj and fn.kind:
        value = _call_value_of(m, fn, qual, args, targs, opname, offset)
    else:
        special = SPECIAL_CALLABLES.get(qual)
        if special is None:
            value = Obj(qual, args)
        else:
            value = EVALUATORS[special](m, qual, args, targs, opname, offset)
            if value is OPAQUE:
                value = Obj(qual, args)
    rec.result = value
    return value


def _reach_of(fn: Any) -> str:  # noqa: ANN401
    """Return how a callee value was reached when the value itself tells ('' for an imported global)."""
    if type(fn) is Obj:
        if fn.kind == "attr":
            return "instance_attr" if isinstance(fn.extra[0], Obj) else "value_attr"
        return fn.kind or "call_result"
    if type(fn) is Global:
        return ""
    return "unknown"


def _call_value_of(  # noqa: ANN401
    m: Machine, fn: Obj, qual: str, args: Any, targs: tuple[Any, ...], opname: str, offset: int
) -> Any:
    """Return the value of calling a value with call semantics of its own (attrgetter, methodcaller, attr)."""
    kind = fn.kind
    if kind == "attrgetter" and len(targs) == 1:
        vals = []
        for nm in fn.extra:
            v = targs[0]
            for part in nm.split("."):
                v = m.getattr_value(v, part, opname, offset)
            vals.append(v)
        return vals[0] if len(vals) == 1 else tuple(vals)
    if kind == "methodcaller" and len(targs) == 1:
        name, margs = fn.extra
        meth = m.getattr_value(targs[0], name, opname, offset)
        return call(m, meth, margs, opname, offset)
    if kind == "attr":
        base, name = fn.extra
        if name == "load" and isinstance(base, Obj) and base.callable in UNPICKLER_CLASSES:
            raw = as_bytes(base.args[0]) if type(base.args) is tuple and base.args else None
            if raw is not None:
                return m.nested(raw, offset, f"{base.callable}(BytesIO).load")
    return Obj(qual, args)


# ---- one evaluator per Special member --------------------------------------------------------------------


def eval_getattr(m: Machine, qual: str, args: Any, targs: tuple[Any, ...], opname: str, offset: int) -> Any:  # noqa: ANN401
    """getattr(obj, name)."""
    if len(targs) >= 2 and type(targs[1]) is str:
        return m.getattr_value(targs[0], targs[1], opname, offset)
    return OPAQUE


def eval_attrgetter(
    m: Machine, qual: str, args: Any, targs: tuple[Any, ...], opname: str, offset: int
) -> Any:  # noqa: ANN401
    """operator.attrgetter(*names)."""
    if targs and all(type(a) is str for a in targs):
        return Obj(qual, args, "attrgetter", targs)
    return OPAQUE


def eval_methodcaller(
    m: Machine, qual: str, args: Any, targs: tuple[Any, ...], opname: str, offset: int
) -> Any:  # noqa: ANN401
    """operator.methodcaller(name, *args)."""
    if targs and type(targs[0]) is str:
        return Obj(qual, args, "methodcaller", (targs[0], targs[1:]))
    return OPAQUE


def eval_partial(m: Machine, qual: str, args: Any, targs: tuple[Any, ...], opname: str, offset: int) -> Any:  # noqa: ANN401
    """functools.partial(func, *args)."""
    if targs:
        return Obj(qual, args, "partial", (targs[0], targs[1:]))
    return OPAQUE


def eval_import(m: Machine, qual: str, args: Any, targs: tuple[Any, ...], opname: str, offset: int) -> Any:  # noqa: ANN401
    """__import__(name, globals, locals, fromlist)."""
    if targs:
        return module_value(targs[0], targs[3] if len(targs) > 3 else None)
    return OPAQUE


def eval_import_module(
    m: Machine, qual: str, args: Any, targs: tuple[Any, ...], opname: str, offset: int
) -> Any:  # noqa: ANN401
    """importlib.import_module(name)."""
    if targs and type(targs[0]) is str:
        return Global(targs[0], "")
    return OPAQUE


def eval_getitem(m: Machine, qual: str, args: Any, targs: tuple[Any, ...], opname: str, offset: int) -> Any:  # noqa: ANN401
    """getitem(container, key) on sys.modules or a literal container."""
    if len(targs) < 2:
        return OPAQUE
    base, key = targs[0], targs[1]
    if isinstance(base, Global) and base.qual == "sys.modules":
        return module_value(key, True)
    if type(base) is dict:
        return base.get(key, UNKNOWN) if key_verdict(key) == 1 else UNKNOWN
    if type(base) in (tuple, list) and type(key) is int and -len(base) <= key < len(base):
        return base[key]
    return OPAQUE


def eval_sys_modules_get(
    m: Machine, qual: str, args: Any, targs: tuple[Any, ...], opname: str, offset: int
) -> Any:  # noqa: ANN401
    """sys.modules.get(name)."""
    if targs:
        return module_value(targs[0], True)
    return OPAQUE


def eval_decode(m: Machine, qual: str, args: Any, targs: tuple[Any, ...], opname: str, offset: int) -> Any:  # noqa: ANN401
    """A pure decoder, evaluated within the decoding budget of the region."""
    budget = m.budget
    room = budget[0]
    limits = m.limits
    v = decode_call(qual, args, min(limits.max_decompressed_bytes, room)) if room > 0 else TOO_BIG
    if v is TOO_BIG:
        m.anomaly(
            "limit_decompressed",
            offset,
            f"{qual}: output over max_decompressed_bytes or the file's remaining "
            f"decompression budget ({max(room, 0)} bytes)",
        )
        return OPAQUE
    if v is None:
        return OPAQUE
    budget[0] -= len(v)  # type: ignore[arg-type]
    if len(v) > BIG_LITERAL:  # type: ignore[arg-type]
        m.big_seen = True
    decoded = m.decoded
    if decoded is None:
        decoded = m.decoded = {}
    before = decoded.get(id(targs[0])) if targs else None
    decoded[id(v)] = (v, 1 + (before[1] if before is not None and before[0] is targs[0] else 0))
    return v


def eval_loads(m: Machine, qual: str, args: Any, targs: tuple[Any, ...], opname: str, offset: int) -> Any:  # noqa: ANN401
    """pickle.loads(data) and the like."""
    raw = as_bytes(targs[0]) if targs else None
    return OPAQUE if raw is None else m.nested(raw, offset, qual)


def eval_load_file(m: Machine, qual: str, args: Any, targs: tuple[Any, ...], opname: str, offset: int) -> Any:  # noqa: ANN401
    """pickle.load(file) and the like, on a BytesIO of bytes."""
    if targs:
        a0 = targs[0]
        if isinstance(a0, Obj) and a0.callable in BYTESIO_CLASSES:
            raw = as_bytes(a0)
            if raw is not None:
                return m.nested(raw, offset, f"{qual}(BytesIO)")
    return OPAQUE


def eval_map(m: Machine, qual: str, args: Any, targs: tuple[Any, ...], opname: str, offset: int) -> Any:  # noqa: ANN401
    """map(func, iterable): func is called as well (recorded); the result stays opaque."""
    if len(targs) >= 2:
        fq = qual_of(targs[0])
        if fq != "?":
            m.calls.append(LazyCallRecord(fq, opname, offset, "", targs[1:], None, len(m.seq), "map"))
    return OPAQUE


def eval_unpickler_load(
    m: Machine, qual: str, args: Any, targs: tuple[Any, ...], opname: str, offset: int
) -> Any:  # noqa: ANN401
    """Unpickler.load(unpickler) with the unpickler built on a BytesIO of bytes."""
    if targs:
        a0 = targs[0]
        if isinstance(a0, Obj) and a0.callable in UNPICKLER_CLASSES and type(a0.args) is tuple and a0.args:
            raw = as_bytes(a0.args[0])
            if raw is not None:
                return m.nested(raw, offset, qual)
    return OPAQUE


def eval_reconstructor(
    m: Machine, qual: str, args: Any, targs: tuple[Any, ...], opname: str, offset: int
) -> Any:  # noqa: ANN401
    """copyreg._reconstructor(cls, ...): an instance of cls."""
    if targs:
        return Obj(qual_of(targs[0]), args)
    return OPAQUE


EVALUATORS: dict[Special, Evaluator] = {
    Special.GETATTR: eval_getattr,
    Special.ATTRGETTER: eval_attrgetter,
    Special.METHODCALLER: eval_methodcaller,
    Special.PARTIAL: eval_partial,
    Special.IMPORT: eval_import,
    Special.IMPORT_MODULE: eval_import_module,
    Special.GETITEM: eval_getitem,
    Special.SYS_MODULES_GET: eval_sys_modules_get,
    Special.DECODE: eval_decode,
    Special.LOADS: eval_loads,
    Special.LOAD_FILE: eval_load_file,
    Special.MAP: eval_map,
    Special.UNPICKLER_LOAD: eval_unpickler_load,
    Special.RECONSTRUCTOR: eval_reconstructor,
}
"""Each special callable's semantics."""
if set(EVALUATORS) != set(Special):  # pragma: no cover - a member without semantics is a programming error
    raise ImportError(f"no evaluator for {set(Special) - set(EVALUATORS)}")
