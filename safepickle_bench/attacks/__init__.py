"""Adaptive attacks on the detector: generators that rewrite a malicious sample so that it still runs its payload
(checked by the label oracle) while looking different to a scanner. One module per attack family; the registry
names them and `attack_sample` / `apply_attack` apply them."""

from safepickle_bench.attacks.registry import ATTACKS, PADDING_RATIOS, AttackSpec, apply_attack, attack_sample
from safepickle_bench.attacks.target import AttackedFile, AttackNotApplicable, MaliciousSample

__all__ = [
    "ATTACKS",
    "PADDING_RATIOS",
    "AttackNotApplicable",
    "AttackSpec",
    "AttackedFile",
    "MaliciousSample",
    "apply_attack",
    "attack_sample",
]
