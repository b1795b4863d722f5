"""Renaming through getattr/attrgetter chains: no global of the payload names its dangerous callable.

Each global `module.name` becomes `builtins.getattr(builtins.__import__('module'), 'name')` or
`operator.attrgetter('name')(importlib.import_module('module'))` (dotted modules and names always take the
second form), chosen per global. The file then imports only the resolution helpers.
"""

from __future__ import annotations

import random

from safepickle_bench.attacks.target import AttackedPayload, attacked, map_globals
from safepickle_bench.craft.payloads import Call, Glob, Node, Payload, globals_of

HELPERS: frozenset[str] = frozenset({
    "builtins.getattr", "builtins.__import__", "importlib.import_module", "operator.attrgetter",
})


def rename_global(g: Glob, style: int) -> Node:
    """Return the node that resolves global `g` through getattr (style 0) or attrgetter (style 1)."""
    if g.qualname in HELPERS:
        return g
    if style == 0 and "." not in g.module and "." not in g.name:
        return Call(Glob("builtins", "getattr"), (Call(Glob("builtins", "__import__"), (g.module,)), g.name))
    getter = Call(Glob("operator", "attrgetter"), (g.name,))
    return Call(getter, (Call(Glob("importlib", "import_module"), (g.module,)),))


def getattr_rename(payload: Payload, rng: random.Random) -> AttackedPayload:
    """Return the payload with every global resolved by name at load time instead of imported directly."""
    seed = rng.getrandbits(32)
    styles: dict[str, int] = {}
    local = random.Random(seed)
    for q in globals_of(payload.expr):
        styles[q] = local.randrange(2)
    tree = map_globals(payload.expr, lambda g: rename_global(g, styles.get(g.qualname, 0)))

    def renderer(protocol: int) -> bytes:
        from safepickle_bench.craft.payloads import render

        return render(tree, protocol, stack_global=payload.stack_global)

    out = attacked(payload, renderer, description=f"{payload.description} renamed through getattr/attrgetter",
                   imports=tuple(globals_of(tree)))
    out.expr = tree
    return out
