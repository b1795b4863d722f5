"""Every attack keeps the payload running under the file's real loader (label oracle), and leaves the carrier
loadable: with a harmless probe instead of the payload, each attacked file loads completely with no event."""

from __future__ import annotations

import io
import pickle
import random
from pathlib import Path

import pytest

from safepickle_bench.attacks import ATTACKS, AttackNotApplicable, MaliciousSample, attack_sample
from safepickle_bench.craft.payloads import build_payload, probe_payload
from safepickle_bench.datasets.oracle import confirm

FAMILIES = ("os_system", "subprocess", "builtins_exec", "import_getattr_chain", "socket_reverse_shell_shape",
            "file_write", "nested_pickle", "attrgetter_chain")


def _carriers() -> dict[str, tuple[bytes | None, str, str]]:
    """Return small real carriers: name -> (bytes, injection, loader)."""
    import torch

    state = {"weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "bias": torch.zeros(2)}
    zip_buf, legacy_buf = io.BytesIO(), io.BytesIO()
    torch.save(state, zip_buf)
    torch.save(state, legacy_buf, _use_new_zipfile_serialization=False)
    config = {"epochs": 3, "layers": [{"name": f"l{i}", "units": 8 * i} for i in range(4)], "tags": ("a", "b")}
    return {
        "standalone": (None, "standalone", "pickle"),
        "pickle_p4_memoize": (pickle.dumps(config, protocol=4), "prepend", "pickle"),
        "torch_zip": (zip_buf.getvalue(), "zip_entry", "torch"),
        "torch_legacy": (legacy_buf.getvalue(), "append", "torch"),
    }


def _cases() -> list[tuple[str, float | None]]:
    return [(name, ratio) for name, spec in ATTACKS.items() for ratio in spec.ratios]


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, object, object, bool]]:
    """Build every attack on every carrier (real payload and probe) and run the oracle once on all of them."""
    tmp = tmp_path_factory.mktemp("attacked")
    rng = random.Random(7)
    items, meta = [], []
    k = 0
    for cname, (carrier, injection, loader) in _carriers().items():
        for attack, ratio in _cases():
            for probe in (False, True):
                if probe and (attack == "gadget_swap" or carrier is None):
                    continue  # the swap brings its own real gadget; a stand-alone file is all payload
                family = FAMILIES[k % len(FAMILIES)]
                k += 1
                protocol = rng.choice([0, 2, 3, 4, 5]) if carrier is None else 2
                payload = (probe_payload(protocol) if probe else
                           build_payload(family, "/tmp/safepickle-out/markers", protocol=protocol,
                                         variant=rng.randrange(100), rng=rng))
                sample = MaliciousSample(payload, carrier, injection, "x", loader)
                try:
                    af = attack_sample(sample, attack, ratio, random.Random(k))
                except AttackNotApplicable:
                    continue
                path = Path(tmp) / f"{k}.bin"
                path.write_bytes(af.data)
                items.append((path, af.loader))
                meta.append((cname, attack, ratio, af, probe))
    results = confirm(items)
    return [(c, a, r, af, probe, res) for (c, a, r, af, probe), res in zip(meta, results, strict=True)]


def test_every_attack_keeps_the_payload_reaching_its_event(confirmed: list) -> None:
    """Each attacked file with a real payload reaches a dangerous event when its loader loads it."""
    real = [row for row in confirmed if not row[4]]
    assert {a for _, a, *_ in real} == set(ATTACKS)
    missed = [(c, a, r, af.payload.family, res.error) for c, a, r, af, _, res in real if not res.event]
    assert not missed, missed


def test_every_attack_leaves_the_carrier_loadable(confirmed: list) -> None:
    """With a harmless probe payload, each attacked file loads completely and reaches no event (except the
    torch-zip second stream, a polyglot whose loader by design fails after running the prepended stream)."""
    probes = [row for row in confirmed if row[4]]
    assert len(probes) > 30
    broken = [(c, a, r, res.event, (res.error or "")[:120]) for c, a, r, af, _, res in probes
              if res.event or (not res.loaded and not af.extra.get("expects_load_error"))]
    assert not broken, broken


def test_second_stream_is_not_applicable_to_single_stream_loaders() -> None:
    """A joblib file's loader reads one stream: the second-stream attack refuses instead of faking a loader."""
    import joblib
    import numpy as np

    buf = io.BytesIO()
    joblib.dump({"w": np.ones(3)}, buf)
    payload = build_payload("os_system", "/tmp/safepickle-out/markers", protocol=2, variant=0)
    sample = MaliciousSample(payload, buf.getvalue(), "prepend", "m.joblib", "joblib")
    with pytest.raises(AttackNotApplicable):
        attack_sample(sample, "second_stream", None, random.Random(0))
