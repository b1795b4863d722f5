"""Opcode routes: the ways a pickle reaches a generated gadget (GLOBAL, STACK_GLOBAL, memo aliases, INST, OBJ,
NEWOBJ + BUILD, getattr on a rebuilt instance, dotted names).

A route turns a gadget and its argument into an expression tree of `craft.payloads`; which routes apply
depends on the gadget's kind and trigger (a class acting in `__init__` is reached by a call, one acting in
`__new__` by NEWOBJ, one acting in `__setstate__` by BUILD) and on the protocol (STACK_GLOBAL needs 4+).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from safepickle_bench.craft.gadget_names import GadgetKind
from safepickle_bench.craft.gadget_package import GadgetSpec, Trigger
from safepickle_bench.craft.payloads import Build, Call, Glob, Inst, NewObj, Node, Obj, attr


class Route(StrEnum):
    """How the loader reaches the callable."""

    GLOBAL = "global"
    """GLOBAL opcode, then REDUCE."""
    STACK_GLOBAL = "stack_global"
    """STACK_GLOBAL (protocol 4+), then REDUCE."""
    MEMO = "memo"
    """The global's strings (protocol 4+) or the global itself stored in the memo, popped and fetched back."""
    INST = "inst"
    """INST: `module.name(*args)` in one opcode."""
    OBJ = "obj"
    """OBJ: `cls(*args)` (INST at protocol 0)."""
    NEWOBJ = "newobj"
    """NEWOBJ: `cls.__new__(cls, *args)` (`copyreg.__newobj__` below protocol 2)."""
    BUILD = "build"
    """An empty instance (NEWOBJ, or INST at protocols 0-1) whose state is restored by BUILD."""
    GETATTR_INSTANCE = "getattr_instance"
    """`getattr(Cls(), 'method')(arg)` on an instance rebuilt by REDUCE or NEWOBJ."""
    DOTTED = "dotted"
    """`Cls.method` as one dotted name: STACK_GLOBAL at protocol 4+, getattr of the class below."""
    GLOBAL_DOTTED = "global_dotted"
    """A dotted name in a GLOBAL opcode of a protocol-4 stream (the loader resolves it there)."""
    INST_DOTTED = "inst_dotted"
    """A dotted name in an INST opcode of a protocol-4 stream."""
    GETATTR_CHAIN = "getattr_chain"
    """`getattr(module.alias, name)`: the module attribute imported, the callable fetched from it."""


MEMO_ROUTES: frozenset[Route] = frozenset({Route.MEMO})
"""Routes whose body uses memo slots from 0 (stand-alone or second-stream files only)."""


@dataclass(frozen=True)
class Reached:
    """An expression reaching a callable, the route taken and the render options it needs."""

    expr: Node
    route: Route
    stack_global: bool = True
    memo: bool = False


def gadget_routes(spec: GadgetSpec, protocol: int) -> tuple[Route, ...]:
    """Return the routes that make `spec`'s wrapper act at `protocol`."""
    kind, trigger = spec.name.kind, spec.trigger
    if kind == GadgetKind.METHOD:
        return (Route.GETATTR_INSTANCE, Route.DOTTED, Route.MEMO)
    if trigger == Trigger.NEW:
        return (Route.NEWOBJ,)
    if trigger == Trigger.SETSTATE:
        return (Route.BUILD,)
    calls = (Route.GLOBAL, Route.MEMO, Route.INST, Route.OBJ)
    return calls + (Route.STACK_GLOBAL,) if protocol >= 4 else calls


def reach_gadget(spec: GadgetSpec, arg: Node, route: Route, protocol: int, rng: random.Random) -> Reached:
    """Return the expression that makes `spec`'s wrapper act on `arg` by `route` (one of `gadget_routes`)."""
    if route not in gadget_routes(spec, protocol):
        raise ValueError(f"route {route} does not reach a {spec.name.kind} gadget triggered by {spec.trigger}")
    name = spec.name
    if name.kind == GadgetKind.METHOD:
        cls_name, method = name.attr_path.split(".", 1)
        cls = Glob(name.module_path, cls_name)
        if route == Route.GETATTR_INSTANCE:
            instance: Node = NewObj(cls, ()) if protocol >= 2 and rng.random() < 0.5 else Call(cls, ())
            return Reached(Call(attr(instance, method), (arg,)), route)
        dotted = Call(Glob(name.module_path, name.attr_path), (arg,))  # unbound: the argument becomes `self`
        return Reached(dotted, route, memo=route == Route.MEMO)
    target = Glob(name.module_path, name.attr_path)
    if route == Route.NEWOBJ:
        return Reached(NewObj(target, (arg,)), route)
    if route == Route.BUILD:
        empty: Node = NewObj(target, ()) if protocol >= 2 else Inst(target, ())
        return Reached(Build(empty, arg), route)
    if route == Route.INST:
        return Reached(Inst(target, (arg,)), route)
    if route == Route.OBJ:
        return Reached(Obj(target, (arg,)), route)
    return Reached(Call(target, (arg,)), route, stack_global=route != Route.GLOBAL, memo=route == Route.MEMO)


def reexport_routes(protocol: int) -> tuple[Route, ...]:
    """Return the routes reaching `host.alias.name` at `protocol` (dotted names resolve at 4+ only)."""
    if protocol >= 4:
        return (Route.STACK_GLOBAL, Route.GLOBAL_DOTTED, Route.INST_DOTTED, Route.MEMO, Route.GETATTR_CHAIN)
    return (Route.GETATTR_CHAIN, Route.DOTTED)


def reach_reexport(host_module: str, alias: str, name: str, args: tuple[Node, ...], route: Route,
                   protocol: int) -> Reached:
    """Return the expression calling `host_module.alias.name(*args)` by `route` (one of `reexport_routes`)."""
    if route not in reexport_routes(protocol):
        raise ValueError(f"route {route} does not reach a re-export at protocol {protocol}")
    dotted = Glob(host_module, f"{alias}.{name}")
    if route == Route.GETATTR_CHAIN:
        return Reached(Call(attr(Glob(host_module, alias), name), args), route)
    if route == Route.INST_DOTTED:
        return Reached(Inst(dotted, args), route)
    if route == Route.GLOBAL_DOTTED:
        return Reached(Call(dotted, args), route, stack_global=False)
    # STACK_GLOBAL and MEMO at 4+; DOTTED below 4 renders as getattr of the module attribute
    return Reached(Call(dotted, args), route, memo=route == Route.MEMO)
