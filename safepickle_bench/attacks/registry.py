"""The attack registry: names, the ratios each attack is run at, and `attack_sample` / `apply_attack`."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from safepickle_bench.attacks.carrier_hiding import hide_in_carrier
from safepickle_bench.attacks.gadget_swap import gadget_swap
from safepickle_bench.attacks.getattr_rename import getattr_rename
from safepickle_bench.attacks.memo_split import memo_split
from safepickle_bench.attacks.nesting import nested_pickle, second_stream
from safepickle_bench.attacks.padding import pad
from safepickle_bench.attacks.target import (
    STANDALONE,
    AttackedFile,
    AttackNotApplicable,
    MaliciousSample,
    payload_from_stream,
)
from safepickle_bench.craft.payloads import Payload

PADDING_RATIOS: tuple[int, ...] = (1, 10, 100, 1000)
"""Padding ratios: benign opcodes added per opcode of the payload."""


@dataclass(frozen=True)
class AttackSpec:
    """One attack: its name, what it does, the ratios it runs at (None: no ratio), the function."""

    name: str
    description: str
    ratios: tuple[int | None, ...]
    run: Callable[[MaliciousSample, float | None, random.Random], AttackedFile]


def _file(sample: MaliciousSample, attack: str, ratio: float | None, payload: Payload, rng: random.Random,
          injection: str | None = None) -> AttackedFile:
    """Build the sample with an attacked payload (same carrier) and describe it."""
    how = injection or sample.injection
    data = sample.build(payload, how, rng)
    return AttackedFile(data=data, loader=sample.loader_for(how), attack=attack, ratio=ratio,
                        description=payload.description, payload=payload, events=payload.events,
                        extra={"injection": how})


def _memo_safe(sample: MaliciousSample, attack: str, ratio: float | None, payload: Payload,
               rng: random.Random) -> AttackedFile:
    """Build a memo-using payload where later MEMOIZE opcodes of the carrier cannot shift: before its STOP."""
    if sample.carrier is None or sample.injection in (STANDALONE, "second_stream"):
        return _file(sample, attack, ratio, payload, rng)
    try:
        return _file(sample, attack, ratio, payload, rng, "append")
    except ValueError:  # e.g. an npz without object arrays: the payload gets its own member
        return _file(sample, attack, ratio, payload, rng)


def _none(sample: MaliciousSample, ratio: float | None, rng: random.Random) -> AttackedFile:
    return _file(sample, "none", None, sample.payload, rng)


def _padding(sample: MaliciousSample, ratio: float | None, rng: random.Random) -> AttackedFile:
    if ratio is None:
        raise ValueError("padding needs a ratio")
    return _file(sample, "padding", ratio, pad(sample.payload, float(ratio), rng), rng)


def _carrier_hiding(sample: MaliciousSample, ratio: float | None, rng: random.Random) -> AttackedFile:
    data, where = hide_in_carrier(sample.payload, rng)
    return AttackedFile(data=data, loader="torch", attack="carrier_hiding", ratio=None,
                        description=f"{sample.payload.description} in a tiny BERT state_dict ({where})",
                        payload=sample.payload, events=sample.payload.events, extra={"injection": where})


def _memo_split(sample: MaliciousSample, ratio: float | None, rng: random.Random) -> AttackedFile:
    return _memo_safe(sample, "memo_split", None, memo_split(sample.payload, rng), rng)


def _getattr_rename(sample: MaliciousSample, ratio: float | None, rng: random.Random) -> AttackedFile:
    return _file(sample, "getattr_rename", None, getattr_rename(sample.payload, rng), rng)


def _nested(encoding: str) -> Callable[[MaliciousSample, float | None, random.Random], AttackedFile]:
    def run(sample: MaliciousSample, ratio: float | None, rng: random.Random) -> AttackedFile:
        return _file(sample, f"nested_{encoding}", None, nested_pickle(sample.payload, rng, encoding), rng)

    return run


def _second_stream(sample: MaliciousSample, ratio: float | None, rng: random.Random) -> AttackedFile:
    data, loader, how = second_stream(sample, sample.payload, rng)
    breaks = how.startswith("payload stream prepended")  # torch.load fails after the payload (EOP-like)
    return AttackedFile(data=data, loader=loader, attack="second_stream", ratio=None,
                        description=f"{sample.payload.description} as {how}", payload=sample.payload,
                        events=sample.payload.events, extra={"injection": how, "expects_load_error": breaks})


def _gadget_swap(sample: MaliciousSample, ratio: float | None, rng: random.Random) -> AttackedFile:
    return _file(sample, "gadget_swap", None, gadget_swap(sample.payload, rng), rng)


def _combined(sample: MaliciousSample, ratio: float | None, rng: random.Random) -> AttackedFile:
    renamed = getattr_rename(sample.payload, rng)
    split = memo_split(renamed, rng)
    padded = pad(split, float(ratio or 100), rng)
    return _memo_safe(sample, "combined", ratio, padded, rng)


ATTACKS: dict[str, AttackSpec] = {
    spec.name: spec
    for spec in (
        AttackSpec("none", "the sample rebuilt without any attack (baseline)", (None,), _none),
        AttackSpec("padding", "benign opcodes (floats, strings or a state-dict structure) before and/or after "
                   "the payload, ratio x the payload's opcode count", PADDING_RATIOS, _padding),
        AttackSpec("carrier_hiding", "payload inside a tiny transformers BERT state_dict (torch zip)", (None,),
                   _carrier_hiding),
        AttackSpec("memo_split", "globals imported by STACK_GLOBAL from memoized decoy-dict strings", (None,),
                   _memo_split),
        AttackSpec("getattr_rename", "globals resolved via getattr(__import__(m), n) / attrgetter(n)(import_module(m))",
                   (None,), _getattr_rename),
        AttackSpec("nested_raw", "payload moved into pickle.loads(<embedded stream bytes>)", (None,), _nested("raw")),
        AttackSpec("nested_base64", "payload moved into pickle.loads(base64.b64decode(<stream>))", (None,),
                   _nested("base64")),
        AttackSpec("second_stream", "payload moved into a second pickle stream of the file", (None,),
                   _second_stream),
        AttackSpec("gadget_swap", "deny-listed callable swapped for an advisory gadget (gadgets.yaml)", (None,),
                   _gadget_swap),
        AttackSpec("combined", "getattr rename + memo split + padding (ratio x payload opcodes)", (10, 1000),
                   _combined),
    )
}


def attack_sample(sample: MaliciousSample, attack: str, ratio: float | None, rng: random.Random) -> AttackedFile:
    """Apply one attack to a malicious sample and return the attacked file (check it with the oracle)."""
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; known: {', '.join(ATTACKS)}")
    return ATTACKS[attack].run(sample, ratio, rng)


def apply_attack(data: bytes, attack: str, ratio: float | int | None, rng: random.Random) -> bytes:
    """Return a stand-alone malicious pickle (globals, calls, literals) rewritten by one attack.

    Raises AttackNotApplicable when `data` is not such a stream (a model file with a carrier is attacked
    through `attack_sample`, which knows the payload and the carrier apart).
    """
    sample = MaliciousSample(payload=payload_from_stream(data))
    return attack_sample(sample, attack, ratio, rng).data


__all__ = ["ATTACKS", "PADDING_RATIOS", "AttackNotApplicable", "AttackSpec", "apply_attack", "attack_sample"]
