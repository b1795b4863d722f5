"""What every generalisation family shares: the drawing context, the built payload, name drawing, assembly."""

from __future__ import annotations

import base64
import importlib.util
import random
import sys
import zlib
from dataclasses import dataclass, field

from safepickle_bench.craft.families.routes import Reached, Route
from safepickle_bench.craft.gadget_names import GadgetKind, GadgetName, ReexportPath, generate_names
from safepickle_bench.craft.gadget_package import GadgetSpec
from safepickle_bench.craft.payloads import Call, Glob, Node, Payload, Tup, globals_of, render


@dataclass
class FamilyContext:
    """The seeded material of one sample: rng, temp dir for inert markers, name namespace, a unique tag."""

    rng: random.Random
    temp_dir: str
    namespace: str | None
    tag: str
    """Seeds the name generator for this sample (distinct tags give distinct names)."""


@dataclass
class FamilyPayload:
    """A built sample payload plus what the oracle's sandbox needs to make it act."""

    family: str
    payload: Payload
    route: Route
    events: frozenset[str]
    """Dangerous-event labels the oracle may record first (see `sandbox.audit`)."""
    gadget: str = ""
    """Dotted name of the generated gadget or re-export path reached ("" for stdlib sinks)."""
    gadgets: list[GadgetSpec] = field(default_factory=list)
    """Generated gadgets the sample needs in its throwaway package."""
    reexports: list[ReexportPath] = field(default_factory=list)
    """Re-export host modules the sample needs in its throwaway package."""
    shape: str = ""
    """Family-specific shape: action, behaviour, encoding chain, sink."""

    @property
    def needs_package(self) -> bool:
        """Return True when loading needs the generated package on sys.path."""
        return bool(self.gadgets or self.reexports)

    @property
    def packages(self) -> set[str]:
        """Return the top-level package names the sample's package defines."""
        return {g.name.package for g in self.gadgets} | {r.package for r in self.reexports}


def package_is_free(package: str) -> bool:
    """Return True when no importable module of that name exists here (a generated one must never shadow it)."""
    return package not in sys.modules and importlib.util.find_spec(package) is None


def draw_name(ctx: FamilyContext, kinds: tuple[GadgetKind, ...]) -> GadgetName:
    """Return one generated name of the context's namespace, of one of `kinds`, in a package free here."""
    for attempt in range(20):
        for name in generate_names(f"{ctx.tag}|{attempt}", 4, namespace=ctx.namespace, kinds=kinds):
            if package_is_free(name.package):
                return name
    raise RuntimeError("no generated name with a free package name was found")


def arg_node(value: object) -> Node:
    """Return a payload-tree node for an inert argument (tuples become tuple literals)."""
    if isinstance(value, tuple):
        return Tup(tuple(arg_node(v) for v in value))
    return value  # type: ignore[return-value]


NEST_ENCODINGS: tuple[str, ...] = ("raw", "base64", "hex", "zlib")


def nest(fp: FamilyPayload, protocol: int, encoding: str) -> FamilyPayload:
    """Return `fp` wrapped as `pickle.loads(<encoded inner stream>)`: the loader unpickles the inner payload."""
    inner = fp.payload.stream()
    if encoding == "raw":
        data: Node = inner
    elif encoding == "base64":
        data = Call(Glob("base64", "b64decode"), (base64.b64encode(inner).decode(),))
    elif encoding == "hex":
        data = Call(Glob("binascii", "unhexlify"), (inner.hex(),))
    elif encoding == "zlib":
        data = Call(Glob("zlib", "decompress"), (zlib.compress(inner),))
    else:
        raise ValueError(f"unknown nesting encoding {encoding!r}; known: {NEST_ENCODINGS}")
    loads = Glob("_pickle" if len(inner) % 2 else "pickle", "loads")
    reached = Reached(Call(loads, (data,)), fp.route)
    payload = assemble(fp.family, reached, protocol, fp.payload.variant,
                       f"{loads.qualname}({encoding} inner: {fp.payload.description})", (loads.qualname,), fp.events)
    return FamilyPayload(fp.family, payload, fp.route, fp.events, fp.gadget, fp.gadgets, fp.reexports,
                         f"{fp.shape}:nested-{encoding}")


def assemble(family: str, reached: Reached, protocol: int, variant: int, description: str,
             callables: tuple[str, ...], events: frozenset[str]) -> Payload:
    """Render a reached expression as a Payload at `protocol`."""
    body = render(reached.expr, protocol, stack_global=reached.stack_global, memo=reached.memo)
    return Payload(
        family=family, callables=callables, body=body, protocol=protocol, variant=variant,
        events=tuple(sorted(events)), description=description, imports=tuple(globals_of(reached.expr, protocol)),
        expr=reached.expr, stack_global=reached.stack_global, memo=reached.memo,
    )
