"""What an attack transforms: a malicious sample (payload, optional benign carrier, injection) and its file.

Attacks work on the payload's expression tree and opcodes, never on a loaded object. A transformed payload is
an `AttackedPayload`: a `Payload` whose body is re-rendered by the attack for whatever protocol the carrier
stream uses (so `inject` can splice it into any carrier), still pushing exactly one value.
"""

from __future__ import annotations

import pickletools
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from safepickle_bench.craft.injection import detect_container, inject, loader_for
from safepickle_bench.craft.payloads import (
    Call,
    Dct,
    Glob,
    Lst,
    Node,
    Payload,
    Tup,
    globals_of,
    render,
    wrap_stream,
)

STANDALONE = "standalone"
"""Injection name of a sample without a carrier: the file is the payload's own stream."""


@dataclass
class AttackedPayload(Payload):
    """A payload whose body an attack built; `renderer(protocol)` re-renders it for another protocol."""

    renderer: Callable[[int], bytes] | None = field(default=None, repr=False, compare=False)

    def at_protocol(self, protocol: int) -> Payload:
        """Return the same attacked payload rendered for another protocol."""
        if protocol == self.protocol or self.renderer is None:
            return self
        return replace(self, protocol=protocol, body=self.renderer(protocol))


def attacked(base: Payload, renderer: Callable[[int], bytes], *, description: str,
             imports: tuple[str, ...] | None = None, callables: tuple[str, ...] | None = None,
             events: tuple[str, ...] | None = None, family: str | None = None) -> AttackedPayload:
    """Return an AttackedPayload derived from `base` whose body is `renderer(base.protocol)`."""
    return AttackedPayload(
        family=family or base.family,
        callables=base.callables if callables is None else callables,
        body=renderer(base.protocol),
        protocol=base.protocol,
        variant=base.variant,
        events=base.events if events is None else events,
        description=description,
        imports=base.imports if imports is None else imports,
        expr=base.expr,
        stack_global=base.stack_global,
        renderer=renderer,
    )


@dataclass
class MaliciousSample:
    """A malicious test sample as its parts: the payload, the benign carrier it goes into, and where."""

    payload: Payload
    carrier: bytes | None = None
    """Bytes of the benign carrier file; None for a stand-alone payload pickle."""
    injection: str = STANDALONE
    name: str = "model.pkl"
    """File name of the sample (its suffix decides nothing; kept for realism)."""
    loader: str = "pickle"
    """Oracle loader of the sample as it is (see `datasets.oracle.LOADERS`)."""

    def build(self, payload: Payload | None = None, injection: str | None = None,
              rng: random.Random | None = None) -> bytes:
        """Return the file bytes with `payload` (default: the sample's own) placed by `injection`."""
        p = payload or self.payload
        how = injection or self.injection
        if self.carrier is None or how == STANDALONE:
            return p.stream()
        return inject(self.carrier, p, how, rng=rng)

    def loader_for(self, injection: str | None = None) -> str:
        """Return the oracle loader of this sample built with `injection` (default: its own)."""
        how = injection or self.injection
        if self.carrier is None or how == STANDALONE:
            return "pickle"
        if how == self.injection:
            return self.loader
        return loader_for(detect_container(self.carrier), how)


@dataclass
class AttackedFile:
    """The result of one attack on one sample: bytes, how to load them, what was done."""

    data: bytes
    loader: str
    attack: str
    ratio: float | None
    description: str
    payload: Payload
    events: tuple[str, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)


class AttackNotApplicable(ValueError):
    """Raised when an attack cannot be applied to a sample (e.g. a second stream in a joblib file)."""


def count_opcodes(body: bytes) -> int:
    """Return the number of opcodes in a payload body (a fragment without PROTO/STOP)."""
    return sum(1 for _ in pickletools.genops(body + b".")) - 1


def stream_opcodes(data: bytes) -> int:
    """Return the number of opcodes of the first pickle stream of `data`, STOP included."""
    return sum(1 for _ in pickletools.genops(data))


def standalone_stream(payload: Payload) -> bytes:
    """Return the payload as a complete stand-alone pickle."""
    return wrap_stream(payload.body, payload.protocol)


def map_globals(node: Node, fn: Callable[[Glob], Node]) -> Node:
    """Return a copy of an expression tree with every global `g` replaced by `fn(g)`."""
    if isinstance(node, Glob):
        return fn(node)
    if isinstance(node, Call):
        return Call(map_globals(node.func, fn), tuple(map_globals(a, fn) for a in node.args))
    if isinstance(node, Tup):
        return Tup(tuple(map_globals(a, fn) for a in node.items))
    if isinstance(node, Lst):
        return Lst(tuple(map_globals(a, fn) for a in node.items))
    if isinstance(node, Dct):
        return Dct(tuple((map_globals(k, fn), map_globals(v, fn)) for k, v in node.items))
    return node


_STRING_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE",
               "BINUNICODE8"}
_BYTES_OPS = {"BINBYTES", "SHORT_BINBYTES", "BINBYTES8"}
_INT_OPS = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"}


def expr_from_stream(data: bytes) -> tuple[Node, int]:
    """Return the expression tree and protocol of a plain pickle stream made of globals, calls and literals.

    Reads opcodes only (no unpickler). Raises AttackNotApplicable for anything else (floats, objects,
    persistent ids, BUILD...): such a stream is not a stand-alone payload this module can rewrite.
    """
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[int, Any] = {}
    protocol = 0
    try:
        ops = list(pickletools.genops(data))
    except Exception as exc:  # a stream pickletools cannot read is not ours to rewrite
        raise AttackNotApplicable(f"not a readable pickle stream: {exc}") from exc

    def since_mark() -> list[Any]:
        m = marks.pop()
        items = stack[m:]
        del stack[m:]
        return items

    for op, arg, _pos in ops:
        name = op.name
        protocol = max(protocol, op.proto)
        if name == "PROTO":
            protocol = max(protocol, int(arg))
        elif name in ("FRAME", "STOP"):
            continue
        elif name == "MARK":
            marks.append(len(stack))
        elif name == "NONE":
            stack.append(None)
        elif name in ("NEWTRUE", "NEWFALSE"):
            stack.append(name == "NEWTRUE")
        elif name in _INT_OPS:
            stack.append(arg)
        elif name in _STRING_OPS:
            stack.append(arg if isinstance(arg, str) else arg.decode("latin-1"))
        elif name in _BYTES_OPS:
            stack.append(bytes(arg))
        elif name == "GLOBAL":
            module, _, qual = arg.partition(" ")
            stack.append(Glob(module, qual))
        elif name == "STACK_GLOBAL":
            qual, module = stack.pop(), stack.pop()
            stack.append(Glob(str(module), str(qual)))
        elif name == "REDUCE":
            args, func = stack.pop(), stack.pop()
            stack.append(Call(func, tuple(args.items) if isinstance(args, Tup) else (args,)))
        elif name == "EMPTY_TUPLE":
            stack.append(Tup())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = stack[-n:]
            del stack[-n:]
            stack.append(Tup(tuple(items)))
        elif name == "TUPLE":
            stack.append(Tup(tuple(since_mark())))
        elif name == "EMPTY_LIST":
            stack.append(Lst())
        elif name == "LIST":
            stack.append(Lst(tuple(since_mark())))
        elif name in ("APPEND", "APPENDS"):
            items = [stack.pop()] if name == "APPEND" else since_mark()
            stack[-1] = Lst((*stack[-1].items, *items))
        elif name == "EMPTY_DICT":
            stack.append(Dct())
        elif name == "DICT":
            items = since_mark()
            stack.append(Dct(tuple(zip(items[::2], items[1::2], strict=True))))
        elif name in ("SETITEM", "SETITEMS"):
            items = stack[-2:] if name == "SETITEM" else since_mark()
            if name == "SETITEM":
                del stack[-2:]
            stack[-1] = Dct((*stack[-1].items, *zip(items[::2], items[1::2], strict=True)))
        elif name == "POP":
            stack.pop()
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo[int(arg)])
        else:
            raise AttackNotApplicable(f"opcode {name} is outside what a stand-alone payload uses")
    if len(stack) != 1:
        raise AttackNotApplicable(f"the stream leaves {len(stack)} values, expected one")
    return stack[0], protocol


def payload_from_stream(data: bytes) -> Payload:
    """Return a stand-alone malicious pickle (globals, calls, literals) as a Payload an attack can rewrite."""
    expr, protocol = expr_from_stream(data)
    protocol = min(max(protocol, 2), 5) if data[:1] == b"\x80" else protocol
    return Payload(family="unknown", callables=tuple(globals_of(expr)), body=render(expr, protocol),
                   protocol=protocol, description="payload read from a stream", imports=tuple(globals_of(expr)),
                   expr=expr)
