"""Benign-opcode padding: dilute the payload with `ratio` times its own opcode count of harmless opcodes.

The padding is a benign value built and discarded (POP) right before and/or after the payload, inside the same
stream: a list of floats, a dict of config-like strings, or a state-dict-shaped `collections.OrderedDict` of
layer names to float lists (the structure of a real model's state_dict, without tensor storages).
"""

from __future__ import annotations

import random
import struct

from safepickle_bench.attacks.target import AttackedPayload, attacked, count_opcodes
from safepickle_bench.craft.payloads import Payload, render

STYLES: tuple[str, ...] = ("floats", "strings", "state_dict")
PLACEMENTS: tuple[str, ...] = ("before", "after", "around")
_LAYER_PARTS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                "intermediate.dense", "output.dense", "output.LayerNorm")
_WORDS = ("model_type", "bert", "hidden_act", "gelu", "torch_dtype", "float32", "architectures", "tokenizer",
          "vocab", "label", "POSITIVE", "NEGATIVE", "pad_token", "[PAD]", "layer_norm_eps", "transformers")


def _float(x: float, protocol: int) -> bytes:
    """Return one float push (BINFLOAT, or FLOAT text for protocol 0)."""
    return b"G" + struct.pack(">d", x) if protocol >= 1 else b"F%r\n" % x


def _open(kind: str, protocol: int) -> bytes:
    """Return the opcodes opening an empty list/dict plus MARK (2 opcodes; protocol 0: MARK only)."""
    if protocol == 0:
        return b"("
    return (b"]" if kind == "list" else b"}") + b"("


def _close(kind: str, protocol: int) -> bytes:
    """Return the opcode closing what `_open` started."""
    if protocol == 0:
        return b"l" if kind == "list" else b"d"
    return b"e" if kind == "list" else b"u"


def padding_body(n_opcodes: int, style: str, protocol: int, rng: random.Random) -> bytes:
    """Return opcodes that build benign values and POP them: `n_opcodes` opcodes (+-1, at least 4) in all."""
    if style not in STYLES:
        raise ValueError(f"unknown padding style {style!r}; known: {STYLES}")
    n = max(4, int(n_opcodes))
    out = bytearray()
    if style == "floats":
        out += _open("list", protocol)
        budget = n - count_opcodes(bytes(out)) - 2  # close + POP
        for _ in range(max(0, budget)):
            out += _float(round(rng.gauss(0.0, 0.05), 6), protocol)
        out += _close("list", protocol) + b"0"
    elif style == "strings":
        out += _open("dict", protocol)
        budget = n - count_opcodes(bytes(out)) - 2
        for i in range(max(0, budget) // 2):
            out += render(f"{rng.choice(_WORDS)}_{i}", protocol) + render(rng.choice(_WORDS), protocol)
        out += _close("dict", protocol) + b"0"
    else:  # state_dict: OrderedDict() then SETITEMS of layer name -> list of floats, like a real model's keys
        out += render(_ordered_dict(), protocol)
        used = count_opcodes(bytes(out))
        layer = 0
        while True:
            budget = n - used - 1  # final POP
            width = min(rng.randint(16, 64), budget - 6)
            if width < 1:
                break
            name = f"encoder.layer.{layer // len(_LAYER_PARTS)}.{_LAYER_PARTS[layer % len(_LAYER_PARTS)]}.weight"
            chunk = (b"" if protocol == 0 else b"(") + render(name, protocol) + _open("list", protocol)
            chunk += b"".join(_float(round(rng.gauss(0.0, 0.02), 6), protocol) for _ in range(width))
            chunk += _close("list", protocol) + (b"s" if protocol == 0 else b"u")
            out += chunk
            used += count_opcodes(chunk)
            layer += 1
        out += b"0"
    remainder = n - count_opcodes(bytes(out))
    out += b"N0" * max(0, remainder // 2)  # discarded Nones make up the last few opcodes
    return bytes(out)


def _ordered_dict() -> object:
    """Return the node `collections.OrderedDict()`."""
    from safepickle_bench.craft.payloads import Call, Glob

    return Call(Glob("collections", "OrderedDict"), ())


def pad(payload: Payload, ratio: float, rng: random.Random, *, style: str | None = None,
        placement: str | None = None) -> AttackedPayload:
    """Return the payload padded with ratio x its opcode count of benign opcodes (before, after or around it)."""
    if ratio <= 0:
        raise ValueError("padding ratio must be > 0")
    style = style or rng.choice(STYLES)
    placement = placement or rng.choice(PLACEMENTS)
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}; known: {PLACEMENTS}")
    seed = rng.getrandbits(64)

    def renderer(protocol: int) -> bytes:
        body = payload.at_protocol(protocol).body
        total = int(round(ratio * count_opcodes(body)))
        local = random.Random(seed)
        if placement == "before":
            return padding_body(total, style, protocol, local) + body
        if placement == "after":
            return body + padding_body(total, style, protocol, local)
        half = total // 2
        return padding_body(half, style, protocol, local) + body + padding_body(total - half, style, protocol, local)

    return attacked(payload, renderer, description=f"{payload.description} + {ratio:g}x {style} padding {placement}",
                    imports=(*payload.imports, *(("collections.OrderedDict",) if style == "state_dict" else ())))
