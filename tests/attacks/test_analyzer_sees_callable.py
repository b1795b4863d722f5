"""The static analyzer still finds the payload's dangerous callable in every attacked file (imports or calls,
resolved through getattr chains, memo aliases and nested pickles), and the dangerous-category features fire."""

from __future__ import annotations

import random

import pytest

from safepickle_bench.analysis import analyze_bytes
from safepickle_bench.attacks import ATTACKS, MaliciousSample, attack_sample
from safepickle_bench.craft.payloads import build_payload
from safepickle_bench.features import dangerous_findings

FAMILIES = ("os_system", "subprocess", "builtins_exec", "webbrowser_open", "urllib_download", "file_write")


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_analyzer_finds_the_payload_callable_after_each_attack(attack: str) -> None:
    """For each family, the attacked file's analysis names the payload's callable and a dangerous finding."""
    for i, family in enumerate(FAMILIES):
        payload = build_payload(family, "/tmp/safepickle-out/markers", protocol=(2, 4)[i % 2], variant=i,
                                rng=random.Random(i))
        for ratio in ATTACKS[attack].ratios:
            af = attack_sample(MaliciousSample(payload), attack, ratio, random.Random(i))
            analysis = analyze_bytes(af.data, f"{attack}.pkl")
            names = {c.callable for c in analysis.all_calls()} | {r.qualname for r in analysis.all_imports()}
            assert set(af.payload.callables) & names, (family, ratio, af.payload.callables, sorted(names)[:20])
            assert dangerous_findings(analysis), (family, ratio)
