"""`apply_attack` rewrites a stand-alone malicious pickle given as bytes, reading it from opcodes only, and
refuses files it cannot read as a payload expression."""

from __future__ import annotations

import io
import random

import pytest

from safepickle_bench.attacks import ATTACKS, AttackNotApplicable, apply_attack
from safepickle_bench.attacks.target import expr_from_stream, payload_from_stream
from safepickle_bench.craft.payloads import PAYLOAD_FAMILIES, build_payload, render


@pytest.mark.parametrize("family", PAYLOAD_FAMILIES)
def test_payload_streams_read_back_to_the_same_expression(family: str) -> None:
    """Reading a payload's stream back gives an expression that renders to the very same opcodes (protocols 0-5)."""
    for protocol in (0, 2, 3, 4, 5):
        for variant in (3, 4):
            payload = build_payload(family, "/tmp/m", protocol=protocol, variant=variant, rng=random.Random(family))
            expr, read_protocol = expr_from_stream(payload.stream())
            assert read_protocol == protocol
            assert render(expr, protocol, stack_global=payload.stack_global) == payload.body
            assert payload_from_stream(payload.stream()).protocol == protocol


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_apply_attack_returns_changed_bytes_for_each_attack(attack: str) -> None:
    """Every attack turns a stand-alone payload pickle into different bytes."""
    data = build_payload("subprocess", "/tmp/m", protocol=2, variant=1).stream()
    ratio = ATTACKS[attack].ratios[-1]
    out = apply_attack(data, attack, ratio, random.Random(0))
    assert isinstance(out, bytes) and out
    assert (out != data) == (attack != "none")


def test_apply_attack_refuses_a_model_file() -> None:
    """A torch zip is not a stand-alone payload stream: a clear AttackNotApplicable, never a crash."""
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)
    with pytest.raises(AttackNotApplicable):
        apply_attack(buf.getvalue(), "padding", 10, random.Random(0))
    with pytest.raises(AttackNotApplicable):
        apply_attack(b"\x80\x04\x95garbage", "memo_split", None, random.Random(0))


def test_unknown_attack_is_a_clear_error() -> None:
    """An unknown attack name raises ValueError naming the known ones."""
    data = build_payload("os_system", "/tmp/m").stream()
    with pytest.raises(ValueError, match="padding"):
        apply_attack(data, "no_such_attack", None, random.Random(0))
