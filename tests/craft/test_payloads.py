"""Payload families: opcode-level shape, determinism, and every family/gadget confirmed by the label oracle."""

from __future__ import annotations

import io
import pickle
import pickletools
import random

import pytest

from safepickle_bench.craft.payloads import PAYLOAD_FAMILIES, build_payload, load_gadgets, probe_payload
from safepickle_bench.datasets import oracle

FORBIDDEN_IN_BODY = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET", "BINGET", "LONG_BINGET", "PROTO", "FRAME",
                     "STOP"}
VARIANTS_PER_FAMILY = 6


def _body_opcodes(body: bytes) -> list[str]:
    """Return the opcode names of a payload body (walked statically, never executed)."""
    return [op.name for op, _, _ in pickletools.genops(io.BytesIO(body + b"."))][:-1]


@pytest.mark.parametrize("family", PAYLOAD_FAMILIES)
@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_payload_body_has_no_memo_proto_frame_or_stop(family, protocol, tmp_path):
    for variant in range(3):
        p = build_payload(family, str(tmp_path), protocol=protocol, variant=variant)
        names = _body_opcodes(p.body)
        assert not FORBIDDEN_IN_BODY & set(names), (family, variant, names)
        assert p.stream(protocol).endswith(p.body + b".")
        assert p.callables
        for c in p.callables:  # imported as is, or (method gadgets) its class is imported and getattr'd
            assert c in p.imports or c.rpartition(".")[0] in p.imports, (family, c, p.imports)


def test_payload_body_pushes_exactly_one_value(tmp_path):
    # a body followed by POP and a known value must leave only that value: checked with the probe payload,
    # which has the same construction and no side effect (loaded here on purpose: it is our own inert probe)
    for protocol in range(6):
        probe = probe_payload(protocol)
        assert pickle.loads(b"\x80\x02" + probe.body + b"0" + b"K\x07.") == 7
        assert pickle.loads(probe.stream(protocol)) == "SAFEPICKLE-probe"


def test_build_payload_is_deterministic(tmp_path):
    for family in PAYLOAD_FAMILIES:
        for variant in range(4):
            a = build_payload(family, str(tmp_path), protocol=4, variant=variant)
            b = build_payload(family, str(tmp_path), protocol=4, variant=variant)
            assert a.body == b.body
            c = build_payload(family, str(tmp_path), variant=variant, rng=random.Random(5))
            d = build_payload(family, str(tmp_path), variant=variant, rng=random.Random(5))
            assert c.body == d.body


def _decoded_strings(node) -> list[str]:
    """Return every string of a payload expression, with base64/hex/zlib layers decoded (static only)."""
    import base64
    import binascii
    import zlib

    from safepickle_bench.craft.payloads import Call, Dct, Glob, Lst, Tup

    def value(n):
        if isinstance(n, Call) and isinstance(n.func, Glob) and len(n.args) == 1:
            inner = value(n.args[0])
            decoders = {"base64.b64decode": base64.b64decode, "binascii.unhexlify": binascii.unhexlify,
                        "zlib.decompress": zlib.decompress}
            if n.func.qualname in decoders and isinstance(inner, (str, bytes)):
                return decoders[n.func.qualname](inner)
        return n

    out: list[str] = []

    def walk(n):
        v = value(n)
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, bytes):
            out.append(v.decode("latin-1"))
        elif isinstance(v, Call):
            walk(v.func)
            for a in v.args:
                walk(a)
        elif isinstance(v, (Tup, Lst)):
            for a in v.items:
                walk(a)
        elif isinstance(v, Dct):
            for k, x in v.items:
                walk(k)
                walk(x)

    walk(node)
    return out


def test_payload_strings_are_inert(tmp_path):
    for family in PAYLOAD_FAMILIES:
        for variant in range(12):
            p = build_payload(family, str(tmp_path), variant=variant)
            text = "\n".join(_decoded_strings(p.expr))
            assert "SAFEPICKLE" in text or "127.0.0.1" in text, (family, variant, text[:200])
            for host in ("http://", "/dev/tcp/", "('"):
                for chunk in text.split(host)[1:]:
                    if chunk[:1].isdigit():
                        assert chunk.startswith("127.0.0.1"), (family, variant, chunk[:40])
            for s in _decoded_strings(p.expr):
                if s.isprintable() and "SAFEPICKLE" in s and ("|" in s or "&" in s) and not s.startswith(
                        ("echo ", "import", "__import__")):
                    pytest.fail(f"shell-looking string not behind echo: {s!r}")


def test_unknown_family_raises(tmp_path):
    with pytest.raises(ValueError, match="unknown payload family"):
        build_payload("nope", str(tmp_path))


@pytest.fixture(scope="module")
def confirmed_families(tmp_path_factory):
    """Oracle results for every family at several variants and protocols (one batched oracle call)."""
    d = tmp_path_factory.mktemp("families")
    items, built = [], []
    for family in PAYLOAD_FAMILIES:
        if family == "gadget":
            continue
        for variant in range(VARIANTS_PER_FAMILY):
            protocol = (0, 2, 4)[variant % 3]
            p = build_payload(family, str(d / "markers"), protocol=protocol, variant=variant)
            path = d / f"{family}-{variant}.pkl"
            path.write_bytes(p.stream())
            items.append((path, "pickle"))
            built.append(p)
    return built, oracle.confirm(items)


def test_every_payload_family_reaches_its_event(confirmed_families, tmp_path):
    built, results = confirmed_families
    for p, r in zip(built, results, strict=True):
        assert r.event in p.events, (p.family, p.variant, p.description, r.event, r.error)
        assert r.label == 1
    assert {p.family for p in built} == set(PAYLOAD_FAMILIES) - {"gadget"}
    assert not (tmp_path.parent / "markers").exists()  # blocked: no marker file was ever written


def test_every_gadget_in_gadgets_yaml_reaches_its_event(tmp_path):
    gadgets = load_gadgets()
    assert len(gadgets) >= 15
    items, built = [], []
    for variant in range(len(gadgets)):
        p = build_payload("gadget", str(tmp_path / "markers"), protocol=2 + 2 * (variant % 2), variant=variant)
        path = tmp_path / f"gadget-{variant}.pkl"
        path.write_bytes(p.stream())
        items.append((path, "pickle"))
        built.append(p)
    for g, p, r in zip(gadgets, built, oracle.confirm(items), strict=True):
        assert g.name in p.callables
        assert r.event == g.event, (g.name, r.event, r.error)
        assert g.reference


def test_benign_controls_load_without_event(tmp_path):
    import joblib
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    torch.save(torch.nn.Linear(3, 2).state_dict(), tmp_path / "sd.pt")
    x = np.random.RandomState(0).rand(20, 3)
    joblib.dump(LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int)), tmp_path / "model.joblib")
    (tmp_path / "plain.pkl").write_bytes(pickle.dumps({"a": [1, 2.5, "x"], "b": (None, True)}, protocol=4))
    results = oracle.confirm([(tmp_path / "sd.pt", "torch"), (tmp_path / "model.joblib", "joblib"),
                              (tmp_path / "plain.pkl", "pickle")])
    for r in results:
        assert r.event == "" and r.loaded and r.error is None, r
        assert r.label == 0
