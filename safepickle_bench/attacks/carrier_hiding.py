"""Carrier hiding: the payload goes into a real model file, the torch zip state_dict of a tiny transformers
model (BERT architecture, random weights), so that thousands of benign opcodes and tensor records surround it."""

from __future__ import annotations

import io
import random
from functools import lru_cache

from safepickle_bench.craft.injection import inject
from safepickle_bench.craft.payloads import Payload

PLACES: tuple[str, ...] = ("nested", "zip_entry", "prepend", "append")


@lru_cache(maxsize=4)
def tiny_transformer_state_dict(seed: int = 0) -> bytes:
    """Return `torch.save(model.state_dict())` bytes of a tiny randomly initialised BERT (no download)."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    model = BertModel(config)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


def hide_in_carrier(payload: Payload, rng: random.Random, place: str | None = None) -> tuple[bytes, str]:
    """Return (torch zip bytes of the tiny transformer with the payload injected, where it went)."""
    where = place or rng.choice(PLACES)
    carrier = tiny_transformer_state_dict(0)
    return inject(carrier, payload, where, rng=random.Random(rng.getrandbits(32))), where
