"""One named handler per pickle opcode, registered by opcode byte in `DISPATCH`.

`load_<opcode name>(m, p)` simulates the opcode on the machine `m`, where `p` is the offset right after the
opcode byte, and returns the offset of the next opcode (as `_pickle.c` names `load_binint`...). An argument
running past the end of the stream raises `Halt("truncated")`; anything the real loader rejects but reads
past is an anomaly, and reading goes on.
"""

from __future__ import annotations

import copyreg
import struct
from collections.abc import Callable
from typing import Any

from safepickle_bench.analysis import opcodes as ops
from safepickle_bench.analysis.callables import JOBLIB_WRAPPERS, SPECIAL_CALLABLES
from safepickle_bench.analysis.calls import call
from safepickle_bench.analysis.decoders import dtype_layout
from safepickle_bench.analysis.machine import Halt, Machine, Reloop, truncated
from safepickle_bench.analysis.result import ImportRecord
from safepickle_bench.analysis.values import (
    BAD,
    BIG_LITERAL,
    SCALAR_KEYS,
    UNKNOWN,
    Global,
    LazyCallRecord,
    Obj,
    class_of,
    key_verdict,
    summarize,
)

Handler = Callable[[Machine, int], int]

_U2 = struct.Struct("<H").unpack_from
_I4 = struct.Struct("<i").unpack_from
_U4 = struct.Struct("<I").unpack_from
_U8 = struct.Struct("<Q").unpack_from
_F8 = struct.Struct(">d").unpack_from
_NAME = ops.OPCODE_NAME
_BYTEARRAY8 = ops.NAME_TO_CODE["BYTEARRAY8"]


def _read_arg(m: Machine, p: int) -> tuple[Any, int]:
    """Decode the argument of the opcode before `p` with the shared readers; (BAD, next) when it is rejected."""
    data = m.data
    code = data[p - 1]
    try:
        arg, q = ops.ARG_READER[code](data, p, m.end, m.max_int_digits)  # type: ignore[misc]
        ops.check_special(code, arg, q, m.end)
    except ops.ArgError as e:
        if e.next_pos is None:
            raise Halt(e.kind, p - 1, f"{_NAME[code]}: {e.detail}") from None
        m.anomaly(e.kind, p - 1, f"{_NAME[code]}: {e.detail}")
        arg, q = BAD, e.next_pos
    if q - p > BIG_LITERAL:
        m.big_seen = True
    return arg, q


def _push_literal(m: Machine, p: int) -> int:
    """Push the literal argument of the opcode before `p` (UNKNOWN when rejected)."""
    arg, q = _read_arg(m, p)
    m.push(UNKNOWN if arg is BAD else arg)
    return q


def _decode_text(m: Machine, raw: bytes, p: int, name: str) -> str:
    """Decode a UTF-8 argument as the loader does (surrogates allowed); bad bytes are an anomaly, read as latin-1."""
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as e:
        m.anomaly("bad_argument", p - 1, f"{name}: {e}")
        return raw.decode("latin-1")


# ---- opcodes without argument that push a constant ------------------------------------------------------


def load_none(m: Machine, p: int) -> int:
    """NONE: push None."""
    m.push(None)
    return p


def load_newtrue(m: Machine, p: int) -> int:
    """NEWTRUE: push True."""
    m.push(True)
    return p


def load_newfalse(m: Machine, p: int) -> int:
    """NEWFALSE: push False."""
    m.push(False)
    return p


def load_empty_tuple(m: Machine, p: int) -> int:
    """EMPTY_TUPLE: push ()."""
    m.push(())
    return p


def load_empty_list(m: Machine, p: int) -> int:
    """EMPTY_LIST: push []."""
    m.push([])
    return p


def load_empty_dict(m: Machine, p: int) -> int:
    """EMPTY_DICT: push {}."""
    m.push({})
    return p


def load_empty_set(m: Machine, p: int) -> int:
    """EMPTY_SET: push set()."""
    m.push(set())
    return p


# ---- numbers --------------------------------------------------------------------------------------------


def load_binint1(m: Machine, p: int) -> int:
    """BININT1: push a 1-byte unsigned int."""
    if p >= m.end:
        raise truncated(p - 1, "BININT1")
    m.push(m.data[p])
    return p + 1


def load_binint2(m: Machine, p: int) -> int:
    """BININT2: push a 2-byte unsigned int."""
    if p + 2 > m.end:
        raise truncated(p - 1, "BININT2")
    m.push(_U2(m.data, p)[0])
    return p + 2


def load_binint(m: Machine, p: int) -> int:
    """BININT: push a 4-byte signed int."""
    if p + 4 > m.end:
        raise truncated(p - 1, "BININT")
    m.push(_I4(m.data, p)[0])
    return p + 4


def load_binfloat(m: Machine, p: int) -> int:
    """BINFLOAT: push an 8-byte big-endian float."""
    if p + 8 > m.end:
        raise truncated(p - 1, "BINFLOAT")
    m.push(_F8(m.data, p)[0])
    return p + 8


def load_long1(m: Machine, p: int) -> int:
    """LONG1: push a little-endian signed int of up to 255 bytes."""
    end = m.end
    if p >= end:
        raise truncated(p - 1, "LONG1")
    data = m.data
    q = p + 1 + data[p]
    if q > end:
        raise truncated(p - 1, "LONG1")
    m.push(int.from_bytes(data[p + 1 : q], "little", signed=True))
    return q


load_int = load_long = load_long4 = load_float = _push_literal
"""INT, LONG, LONG4, FLOAT: push the decoded number."""


# ---- strings and bytes ----------------------------------------------------------------------------------


def load_short_binunicode(m: Machine, p: int) -> int:
    """SHORT_BINUNICODE: push a UTF-8 string of up to 255 bytes."""
    end = m.end
    if p >= end:
        raise truncated(p - 1, "SHORT_BINUNICODE")
    data = m.data
    q = p + 1 + data[p]
    if q > end:
        raise truncated(p - 1, "SHORT_BINUNICODE")
    raw = data[p + 1 : q]
    text = raw.decode("ascii") if raw.isascii() else _decode_text(m, raw, p, "SHORT_BINUNICODE")
    m.push(text)
    if len(m.strings) < m.max_lits:
        m.strings.append(text[: m.max_chars])
    return q


def load_binunicode(m: Machine, p: int) -> int:
    """BINUNICODE: push a UTF-8 string with a 4-byte length."""
    end = m.end
    if p + 4 > end:
        raise truncated(p - 1, "BINUNICODE")
    data = m.data
    q = p + 4 + _U4(data, p)[0]
    if q - p > BIG_LITERAL:
        m.big_seen = True
    if q > end:
        raise truncated(p - 1, "BINUNICODE")
    raw = data[p + 4 : q]
    text = raw.decode("ascii") if raw.isascii() else _decode_text(m, raw, p, "BINUNICODE")
    m.push(text)
    if len(m.strings) < m.max_lits:
        m.strings.append(text[: m.max_chars])
    return q


def load_unicode(m: Machine, p: int) -> int:
    """UNICODE: push a raw-unicode-escaped text line."""
    arg, q = _read_arg(m, p)
    if arg is BAD:
        m.push(UNKNOWN)
    else:
        m.push(arg)
        m.note_str(arg)
    return q


load_binunicode8 = load_unicode
"""BINUNICODE8: push a UTF-8 string with an 8-byte length."""


def load_string(m: Machine, p: int) -> int:
    """STRING, BINSTRING, SHORT_BINSTRING: push the bytes, kept as latin-1 text so names stay readable."""
    arg, q = _read_arg(m, p)
    if arg is BAD:
        m.push(UNKNOWN)
    else:
        s = arg.decode("latin-1")
        m.push(s)
        m.note_str(s)
    return q


load_binstring = load_short_binstring = load_string


def load_short_binbytes(m: Machine, p: int) -> int:
    """SHORT_BINBYTES: push bytes of up to 255 bytes."""
    end = m.end
    if p >= end:
        raise truncated(p - 1, "SHORT_BINBYTES")
    data = m.data
    q = p + 1 + data[p]
    if q > end:
        raise truncated(p - 1, "SHORT_BINBYTES")
    b = data[p + 1 : q]
    m.push(b)
    m.note_str(b)
    return q


def load_binbytes(m: Machine, p: int) -> int:
    """BINBYTES: push bytes with a 4-byte length."""
    end = m.end
    if p + 4 > end:
        raise truncated(p - 1, "BINBYTES")
    data = m.data
    q = p + 4 + _U4(data, p)[0]
    if q - p > BIG_LITERAL:
        m.big_seen = True
    if q > end:
        raise truncated(p - 1, "BINBYTES")
    b = data[p + 4 : q]
    m.push(b)
    m.note_str(b)
    return q


def load_binbytes8(m: Machine, p: int) -> int:
    """BINBYTES8, BYTEARRAY8: push bytes (a bytearray for BYTEARRAY8) with an 8-byte length."""
    data = m.data
    end = m.end
    if p + 8 <= end:
        q = p + 8 + _U8(data, p)[0]
        if q <= end:
            if q - p > BIG_LITERAL:
                m.big_seen = True
            b = data[p + 8 : q]
            m.push(bytearray(b) if data[p - 1] == _BYTEARRAY8 else b)
            if len(m.strings) < m.max_lits:
                m.strings.append(b[: m.max_chars].decode("latin-1"))
            return q
    # a length past the end or too large: the shared reader reports it
    arg, q = _read_arg(m, p)
    if arg is BAD:
        m.push(UNKNOWN)
    else:
        m.push(bytearray(arg) if data[p - 1] == _BYTEARRAY8 else arg)
        m.note_str(arg)
    return q


load_bytearray8 = load_binbytes8


# ---- stack and MARK -------------------------------------------------------------------------------------


def load_mark(m: Machine, p: int) -> int:
    """MARK: remember the stack height."""
    n = len(m.stack)
    m.fence = n
    m.marks.append(n)
    return p


def load_pop(m: Machine, p: int) -> int:
    """POP: drop the top of the stack (or the last MARK, when nothing is above it)."""
    marks = m.marks
    if marks and marks[-1] == len(m.stack):
        marks.pop()
        m.fence = marks[-1] if marks else 0
    else:
        m.pop(p - 1)
    return p


def load_pop_mark(m: Machine, p: int) -> int:
    """POP_MARK: drop everything above the last MARK and the MARK."""
    m.popmark(p - 1)
    return p


def load_dup(m: Machine, p: int) -> int:
    """DUP: push the top of the stack again."""
    m.push(m.top(p - 1))
    return p


def load_stop(m: Machine, p: int) -> int:
    """STOP: the end of the stream (its value is popped by the loop)."""
    raise Halt(None, p - 1, pos=p)


# ---- containers -----------------------------------------------------------------------------------------


def load_tuple(m: Machine, p: int) -> int:
    """TUPLE: replace the items above the last MARK by a tuple of them."""
    marks = m.marks
    if not marks:  # no MARK: popmark records the anomaly
        m.push(tuple(m.popmark(p - 1)))
        return p
    # popmark, inlined: TUPLE is one opcode in twenty of a torch checkpoint
    stack = m.stack
    n = len(stack)
    if n > m.maxd:
        m.maxd = n
    if len(marks) > m.max_marks:
        m.max_marks = len(marks)
    k = marks.pop()
    m.fence = marks[-1] if marks else 0
    t = tuple(stack[k:])
    del stack[k:]
    stack.append(t)
    return p


def load_tuple1(m: Machine, p: int) -> int:
    """TUPLE1: wrap the top of the stack in a 1-tuple."""
    stack = m.stack
    if len(stack) > m.fence:
        stack[-1] = (stack[-1],)
    else:
        m.push((m.underflow(p - 1),))
    return p


def load_tuple2(m: Machine, p: int) -> int:
    """TUPLE2: replace the two top items by a 2-tuple."""
    stack = m.stack
    n = len(stack)
    if n - m.fence >= 2:
        if n > m.maxd:
            m.maxd = n
        b = stack.pop()
        stack[-1] = (stack[-1], b)
    else:
        b = m.pop(p - 1)
        m.push((m.pop(p - 1), b))
    return p


def load_tuple3(m: Machine, p: int) -> int:
    """TUPLE3: replace the three top items by a 3-tuple."""
    stack = m.stack
    n = len(stack)
    if n - m.fence >= 3:
        if n > m.maxd:
            m.maxd = n
        c = stack.pop()
        b = stack.pop()
        stack[-1] = (stack[-1], b, c)
    else:
        c = m.pop(p - 1)
        b = m.pop(p - 1)
        m.push((m.pop(p - 1), b, c))
    return p


def load_list(m: Machine, p: int) -> int:
    """LIST: replace the items above the last MARK by a list of them."""
    m.push(m.popmark(p - 1))
    return p


def _hashable_items(m: Machine, items: list[Any], offset: int, what: str) -> list[Any]:
    """Keep the items that can be hashed without risk (deeply nested tuples overflow C hashing)."""
    kept = []
    for x in items:
        verdict = key_verdict(x)
        if verdict == 1:
            kept.append(x)
        elif verdict == 0:
            m.anomaly("bad_argument", offset, f"unhashable {what}")
    return kept


def _set_items(m: Machine, target: Any, items: list[Any], offset: int) -> None:  # noqa: ANN401
    """Store key/value pairs into a literal dict (unhashable keys are anomalies, as they fail the loader)."""
    if len(items) % 2:
        m.anomaly("bad_argument", offset, "odd number of items for SETITEMS")
        items = items[:-1]
    if type(target) is dict:
        for i in range(0, len(items), 2):
            k = items[i]
            verdict = key_verdict(k)
            if verdict == 1:
                target[k] = items[i + 1]
            elif verdict == 0:
                m.anomaly("bad_argument", offset, "unhashable dict key")


def load_dict(m: Machine, p: int) -> int:
    """DICT: replace the key/value items above the last MARK by a dict of them."""
    d: dict[Any, Any] = {}
    _set_items(m, d, m.popmark(p - 1), p - 1)
    m.push(d)
    return p


def load_append(m: Machine, p: int) -> int:
    """APPEND: append the top of the stack to the list below it."""
    stack = m.stack
    n = len(stack)
    if n - m.fence >= 2:
        if n > m.maxd:
            m.maxd = n
        v = stack.pop()
        t = stack[-1]
    else:
        v = m.pop(p - 1)
        t = m.top(p - 1)
    if type(t) is list:
        t.append(v)
    return p


def load_appends(m: Machine, p: int) -> int:
    """APPENDS: extend the list below the last MARK with the items above it."""
    items = m.popmark(p - 1)
    t = m.stack[-1] if len(m.stack) > m.fence else m.underflow(p - 1)
    if type(t) is list:
        t.extend(items)
    return p


def load_setitem(m: Machine, p: int) -> int:
    """SETITEM: store the top two items as key and value into the dict below them."""
    v = m.pop(p - 1)
    k = m.pop(p - 1)
    _set_items(m, m.top(p - 1), [k, v], p - 1)
    return p


def load_setitems(m: Machine, p: int) -> int:
    """SETITEMS: store the key/value items above the last MARK into the dict below it."""
    items = m.popmark(p - 1)
    t = m.stack[-1] if len(m.stack) > m.fence else m.underflow(p - 1)
    if type(t) is dict and not len(items) & 1 and set(map(type, items[::2])) <= SCALAR_KEYS:
        it = iter(items)
        t.update(zip(it, it, strict=False))
    else:
        _set_items(m, t, items, p - 1)
    return p


def load_additems(m: Machine, p: int) -> int:
    """ADDITEMS: add the items above the last MARK to the set below it."""
    items = m.popmark(p - 1)
    t = m.top(p - 1)
    if type(t) is set:
        t.update(_hashable_items(m, items, p - 1, "set item"))
    return p


def load_frozenset(m: Machine, p: int) -> int:
    """FROZENSET: replace the items above the last MARK by a frozenset of them."""
    m.push(frozenset(_hashable_items(m, m.popmark(p - 1), p - 1, "frozenset item")))
    return p


# ---- memo -----------------------------------------------------------------------------------------------


def load_binput(m: Machine, p: int) -> int:
    """BINPUT: store the top of the stack under a 1-byte key."""
    if p >= m.end:
        raise truncated(p - 1, "BINPUT")
    stack = m.stack
    m.memo[m.data[p]] = stack[-1] if len(stack) > m.fence else m.underflow(p - 1)
    return p + 1


def load_long_binput(m: Machine, p: int) -> int:
    """LONG_BINPUT: store the top of the stack under a 4-byte key."""
    if p + 4 > m.end:
        raise truncated(p - 1, "LONG_BINPUT")
    stack = m.stack
    m.memo[_U4(m.data, p)[0]] = stack[-1] if len(stack) > m.fence else m.underflow(p - 1)
    return p + 4


def load_memoize(m: Machine, p: int) -> int:
    """MEMOIZE: store the top of the stack under the next free key."""
    stack = m.stack
    memo = m.memo
    memo[len(memo)] = stack[-1] if len(stack) > m.fence else m.underflow(p - 1)
    return p


def load_put(m: Machine, p: int) -> int:
    """PUT: store the top of the stack under a decimal text key."""
    arg, q = _read_arg(m, p)
    v = m.top(p - 1)
    if arg is not BAD:
        m.memo[arg] = v
    return q


def load_binget(m: Machine, p: int) -> int:
    """BINGET: push the memo value of a 1-byte key."""
    if p >= m.end:
        raise truncated(p - 1, "BINGET")
    key = m.data[p]
    try:
        m.push(m.memo[key])
    except KeyError:
        m.anomaly("memo_missing", p - 1, f"BINGET {key}")
        m.push(UNKNOWN)
    return p + 1


def load_long_binget(m: Machine, p: int) -> int:
    """LONG_BINGET: push the memo value of a 4-byte key."""
    if p + 4 > m.end:
        raise truncated(p - 1, "LONG_BINGET")
    key = _U4(m.data, p)[0]
    try:
        m.push(m.memo[key])
    except KeyError:
        m.anomaly("memo_missing", p - 1, f"LONG_BINGET {key}")
        m.push(UNKNOWN)
    return p + 4


def load_get(m: Machine, p: int) -> int:
    """GET: push the memo value of a decimal text key."""
    arg, q = _read_arg(m, p)
    if arg is BAD:
        m.push(UNKNOWN)
        return q
    try:
        m.push(m.memo[arg])
    except (KeyError, TypeError):
        m.anomaly("memo_missing", p - 1, f"GET {arg}")
        m.push(UNKNOWN)
    return q


# ---- imports --------------------------------------------------------------------------------------------


def load_global(m: Machine, p: int) -> int:
    """GLOBAL: import `module name` given as two text lines."""
    arg, q = _read_arg(m, p)
    if arg is BAD:
        m.anomaly("unresolved_global", p - 1, "GLOBAL with undecodable name")
        m.imports.append(ImportRecord("?", "?", "GLOBAL", p - 1))
        m.push(Global("?", "?"))
    else:
        m.push(m.imported(arg[0], arg[1], "GLOBAL", p - 1))
    return q


def load_stack_global(m: Machine, p: int) -> int:
    """STACK_GLOBAL: import the module and name strings on top of the stack."""
    name = m.pop(p - 1)
    module = m.pop(p - 1)
    if type(module) is str and type(name) is str:
        m.push(m.imported(module, name, "STACK_GLOBAL", p - 1))
    else:
        m.anomaly("unresolved_global", p - 1, f"STACK_GLOBAL of {summarize(module)}, {summarize(name)}")
        mod = module if type(module) is str else "?"
        nm = name if type(name) is str else "?"
        m.imports.append(ImportRecord(mod, nm, "STACK_GLOBAL", p - 1))
        m.push(Global(mod, nm))
    return p


def load_ext1(m: Machine, p: int) -> int:
    """EXT1, EXT2, EXT4: import what the copyreg extension registry names for a code."""
    arg, q = _read_arg(m, p)
    off = p - 1
    if arg is BAD or arg <= 0:
        m.anomaly("bad_argument", off, f"EXT code {arg!r} <= 0")
        m.push(UNKNOWN)
        return q
    key = copyreg._inverted_registry.get(arg)  # type: ignore[attr-defined]
    if key is None:
        m.anomaly("unresolved_global", off, f"extension code {arg} not registered")
        m.push(UNKNOWN)
    else:
        m.push(m.imported(key[0], key[1], _NAME[m.data[off]] or "EXT", off))
    return q


load_ext2 = load_ext4 = load_ext1


# ---- calls ----------------------------------------------------------------------------------------------


def load_reduce(m: Machine, p: int) -> int:
    """REDUCE: call the callable below the top with the argument tuple on top."""
    stack = m.stack
    n = len(stack)
    if n - m.fence >= 2:
        if n > m.maxd:
            m.maxd = n
        args = stack.pop()
        fn = stack.pop()
    else:
        args = m.pop(p - 1)
        fn = m.pop(p - 1)
    if type(fn) is Global and fn.qual not in SPECIAL_CALLABLES:  # the common case, without call()'s checks
        qual = fn.qual
        o = Obj(qual, args)
        m.calls.append(LazyCallRecord(qual, "REDUCE", p - 1, "", args, o, len(m.seq)))
        stack.append(o)
    else:
        stack.append(call(m, fn, args, "REDUCE", p - 1))
    return p


def load_newobj(m: Machine, p: int) -> int:
    """NEWOBJ: `cls.__new__(cls, *args)`, recorded as a call of the class."""
    stack = m.stack
    n = len(stack)
    if n - m.fence >= 2:
        if n > m.maxd:
            m.maxd = n
        args = stack.pop()
        cls = stack.pop()
    else:
        args = m.pop(p - 1)
        cls = m.pop(p - 1)
    m.push(call(m, cls, args, "NEWOBJ", p - 1))
    return p


def load_newobj_ex(m: Machine, p: int) -> int:
    """NEWOBJ_EX: `cls.__new__(cls, *args, **kwargs)` (kwargs kept as a last argument)."""
    kwargs = m.pop(p - 1)
    args = m.pop(p - 1)
    cls = m.pop(p - 1)
    if type(kwargs) is dict and kwargs and type(args) is tuple:
        args = (*args, kwargs)
    m.push(call(m, cls, args, "NEWOBJ_EX", p - 1))
    return p


def load_obj(m: Machine, p: int) -> int:
    """OBJ: call the class right after the last MARK with the items after it."""
    items = m.popmark(p - 1)
    if not items:
        m.push(call(m, m.underflow(p - 1), (), "OBJ", p - 1))
        return p
    m.push(call(m, items[0], tuple(items[1:]), "OBJ", p - 1))
    return p


def load_inst(m: Machine, p: int) -> int:
    """INST: import `module name` (text lines) and call it with the items above the last MARK."""
    arg, q = _read_arg(m, p)
    off = p - 1
    items = m.popmark(off)
    if arg is BAD:
        m.anomaly("unresolved_global", off, "INST with undecodable name")
        g: Any = Global("?", "?")
        m.imports.append(ImportRecord("?", "?", "INST", off))
    else:
        g = m.imported(arg[0], arg[1], "INST", off)
    m.push(call(m, g, tuple(items), "INST", off))
    return q


def load_build(m: Machine, p: int) -> int:
    """BUILD: set the state of the object below the top (setattr on a module or class)."""
    stack = m.stack
    n = len(stack)
    if n - m.fence >= 2:
        if n > m.maxd:
            m.maxd = n
        state = stack.pop()
        inst = stack[-1]
    else:
        state = m.pop(p - 1)
        inst = m.top(p - 1)
    m.calls.append(
        LazyCallRecord(
            inst.callable if type(inst) is Obj else class_of(inst), "BUILD", p - 1, "", state, inst, len(m.seq)
        )
    )
    if type(inst) is Global:
        # BUILD on a module or class sets its attributes (setattr): later imports see the new values.
        for part in state if type(state) is tuple else (state,):
            if type(part) is dict:
                for k, v in part.items():
                    if type(k) is str:
                        m.overrides[f"{inst.qual}.{k}"] = v
    elif isinstance(inst, Obj):
        if inst.kind == "partial" and type(state) is tuple and len(state) == 4:
            fn, fargs = state[0], state[1]
            inst.extra = (fn, tuple(fargs) if type(fargs) in (tuple, list) else ())
        inst.state = state
        if inst.callable in JOBLIB_WRAPPERS:
            return _read_joblib_array(m, inst, p)
    return p


def _read_joblib_array(m: Machine, wrapper: Obj, p: int) -> int:
    """Return where opcodes go on after the loader reads the wrapper's array data (skipped, or read as a
    stream of pickled objects)."""
    state = wrapper.state
    if type(state) is not dict:
        m.anomaly("bad_argument", p - 1, "joblib NumpyArrayWrapper state is not a dict")
        return p
    pending = m.jump_at >= 0
    fpos = m.jump_to if pending else max(p, m.frame_end)
    layout = dtype_layout(state.get("dtype"))
    shape = state.get("shape")
    if layout is None or type(shape) is not tuple or not all(type(x) is int and x >= 0 for x in shape):
        m.anomaly("bad_argument", p - 1, "joblib array wrapper with unknown dtype or shape")
        return p
    itemsize, hasobject = layout
    m.joblib_arrays += 1
    data, end = m.data, m.end
    if hasobject:
        loc = f"{m.location}>objarray{m.joblib_arrays}"
        sub = m.simulate(
            data,
            fpos,
            loc,
            m.limits,
            end=end,
            nested_depth=m.nested_depth,
            deadline=m.deadline,
            decode_budget=m.budget,
        )
        m.extra_streams.append(sub.stream)
        m.extra_streams.extend(sub.extra_streams)
        if not sub.stream.complete:
            raise Halt("truncated", fpos, "joblib object array stream incomplete", pos=sub.file_end)
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
                raise Halt("truncated", npos, "joblib array padding byte missing")
            npos += 1 + data[npos]
        if count > end:  # the product may be a huge int: never print it
            raise Halt("truncated", fpos, "joblib array data longer than the whole region", pos=end)
        npos += count * itemsize
        if npos > end:
            raise Halt("truncated", fpos, f"joblib array data of {npos - fpos} bytes past the end", pos=end)
        m.skipped += npos - fpos
    m.stack[-1] = Obj("numpy.ndarray", (), "", None)
    if p < m.frame_end:
        m.jump_at, m.jump_to = m.frame_end, npos
        raise Reloop(p)
    return npos


# ---- persistent ids, out-of-band buffers, framing, protocol ---------------------------------------------


def load_binpersid(m: Machine, p: int) -> int:
    """BINPERSID: the persistent id on top of the stack becomes what persistent_load returns."""
    pid = m.pop(p - 1)
    m.persistent_ids.append(pid)
    m.push(Obj("<persistent_load>", pid, "persid"))
    return p


def load_persid(m: Machine, p: int) -> int:
    """PERSID: a text persistent id becomes what persistent_load returns."""
    arg, q = _read_arg(m, p)
    m.persistent_ids.append(arg)
    m.push(Obj("<persistent_load>", arg, "persid"))
    return q


def load_next_buffer(m: Machine, p: int) -> int:
    """NEXT_BUFFER: push an out-of-band buffer (unknown statically)."""
    m.push(Obj("<out-of-band buffer>"))
    return p


def load_readonly_buffer(m: Machine, p: int) -> int:
    """READONLY_BUFFER: the top of the stack stays (read-only view of it)."""
    m.top(p - 1)
    return p


def load_proto(m: Machine, p: int) -> int:
    """PROTO: the protocol version (an unsupported one is an anomaly, as the loader rejects it)."""
    if p >= m.end:
        raise truncated(p - 1, "PROTO")
    v = m.data[p]
    if v > ops.HIGHEST_PROTOCOL:
        m.anomaly("bad_argument", p - 1, f"unsupported pickle protocol: {v}")
    else:
        m.proto = v
    if m.first_proto < 0:
        m.first_proto = v
    return p + 1


def load_frame(m: Machine, p: int) -> int:
    """FRAME: the length of the next frame (it must fit in the stream)."""
    end = m.end
    if p + 8 > end:
        raise truncated(p - 1, "FRAME")
    q = p + 8 + _U8(m.data, p)[0]
    if q > end:
        raise truncated(p - 1, f"FRAME of {q - p - 8} bytes, {end - p - 8} left")
    m.frame_end = q
    return p + 8


def load_unknown(m: Machine, p: int) -> int:
    """A byte that is no opcode: reading stops."""
    raise Halt("unknown_opcode", p - 1, f"byte 0x{m.data[p - 1]:02x}")


def _dispatch_table() -> list[Handler]:
    """Return opcode byte -> handler, every opcode of the pickletools table named `load_<name>`."""
    table: list[Handler] = [load_unknown] * 256
    found = globals()
    missing = []
    for name, code in ops.NAME_TO_CODE.items():
        handler = found.get(f"load_{name.lower()}")
        if handler is None:
            missing.append(name)
        else:
            table[code] = handler
    if missing:  # pragma: no cover - an opcode without a handler is a programming error
        raise ImportError(f"no handler for opcodes {missing}")
    return table


DISPATCH: list[Handler] = _dispatch_table()
"""Opcode byte -> its handler (`load_unknown` for bytes that are no opcode)."""
