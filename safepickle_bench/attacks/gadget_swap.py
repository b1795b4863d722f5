"""Gadget swap: the deny-listed callable is replaced by a gadget from gadgets.yaml (advisory gadgets)."""

from __future__ import annotations

import random

from safepickle_bench.craft.payloads import Payload, build_payload, load_gadgets

MARKER_DIR = "/tmp/safepickle-out/markers"
"""Marker directory of generated payloads (the dataset builder's fixed one)."""


def gadget_swap(payload: Payload, rng: random.Random, index: int | None = None) -> Payload:
    """Return a payload with the same inert action run through a gadget (default: a random one)."""
    gadgets = load_gadgets()
    k = rng.randrange(len(gadgets)) if index is None else index % len(gadgets)
    swapped = build_payload("gadget", MARKER_DIR, protocol=payload.protocol, variant=k,
                            rng=random.Random(rng.getrandbits(64)))
    swapped.description = f"{payload.family} swapped for {swapped.description}"
    return swapped
