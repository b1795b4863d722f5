"""Injection into real carrier files: the normal loader still loads the file and reaches the payload's event."""

from __future__ import annotations

import io
import pickle
import random
from pathlib import Path

import pytest

from safepickle_bench.craft.injection import INJECTIONS, detect_container, inject, loader_for
from safepickle_bench.craft.payloads import build_payload, probe_payload
from safepickle_bench.datasets import oracle

FAMILIES_CYCLE = ("os_system", "subprocess", "attrgetter_chain", "nested_pickle", "gadget", "builtins_eval")


def _carriers(d: Path) -> dict[str, bytes]:
    """Make small benign carriers with the real libraries."""
    import joblib
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    out: dict[str, bytes] = {}
    sd = {"w": torch.randn(4, 3), "b": torch.zeros(4), "meta": {"epoch": 3, "names": ["a", "b"]}}
    buf = io.BytesIO()
    torch.save(sd, buf)
    out["sd.pt"] = buf.getvalue()
    buf = io.BytesIO()
    torch.save(sd, buf, _use_new_zipfile_serialization=False)
    out["sd_legacy.pt"] = buf.getvalue()
    x = np.random.RandomState(0).rand(30, 3)
    obj = {"model": LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int)), "arr": np.arange(5.0),
           "objarr": np.array([1, "x"], dtype=object), "list": [1, 2]}
    for compress in ("none", "zlib", "gzip", "bz2", "xz", "lzma", "lz4"):
        path = d / f"m_{compress}.joblib"
        joblib.dump(obj, path, compress=0 if compress == "none" else (compress, 3))
        out[path.name] = path.read_bytes()
    for protocol in range(6):
        out[f"p{protocol}.pkl"] = pickle.dumps({"a": [1, 2, {"x": "y"}], "t": (1, 2), "arr": np.arange(3)},
                                               protocol=protocol)
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}, "s", None], dtype=object))
    out["o.npy"] = buf.getvalue()
    path = d / "z.npz"
    np.savez(path, a=np.arange(3), o=np.array([1, "x"], dtype=object))
    out["z.npz"] = path.read_bytes()
    return out


@pytest.fixture(scope="module")
def injected(tmp_path_factory):
    """Every applicable (carrier, injection) with a real payload and with the harmless probe, oracle-checked."""
    d = tmp_path_factory.mktemp("inject")
    carriers = _carriers(d)
    rows, items = [], []
    k = 0
    for name, data in carriers.items():
        container = detect_container(data)
        for how in INJECTIONS:
            family = FAMILIES_CYCLE[k % len(FAMILIES_CYCLE)]
            payload = build_payload(family, str(d / "markers"), variant=k)
            try:
                bad = inject(data, payload, how, rng=random.Random(k))
            except ValueError:
                continue
            good = inject(data, probe_payload(), how, rng=random.Random(k))
            k += 1
            for kind, content, p in (("mal", bad, payload), ("probe", good, None)):
                path = d / f"{kind}-{how}-{name}"
                path.write_bytes(content)
                items.append((path, loader_for(container, how)))
                rows.append((name, container, how, kind, p, content))
    return rows, oracle.confirm(items)


def test_detect_container_recognises_every_carrier(tmp_path):
    kinds = {name: detect_container(data) for name, data in _carriers(tmp_path).items()}
    assert kinds["sd.pt"] == "torch_zip" and kinds["sd_legacy.pt"] == "torch_legacy"
    assert kinds["m_none.joblib"] == "joblib" and kinds["m_lz4.joblib"] == "joblib_lz4"
    assert {kinds[f"m_{c}.joblib"] for c in ("zlib", "gzip", "bz2", "xz", "lzma")} == {
        "joblib_zlib", "joblib_gzip", "joblib_bz2", "joblib_xz", "joblib_lzma"}
    assert all(kinds[f"p{i}.pkl"] == "pickle" for i in range(6))
    assert kinds["o.npy"] == "npy" and kinds["z.npz"] == "npz"


def test_every_injection_into_every_carrier_reaches_the_payload_event(injected):
    rows, results = injected
    covered = set()
    for (name, container, how, kind, payload, _), r in zip(rows, results, strict=True):
        if kind == "mal":
            assert r.event in payload.events, (name, how, payload.family, r.event, r.error)
            covered.add((container, how))
    containers = {c for c, _ in covered}
    assert {"pickle", "torch_zip", "torch_legacy", "joblib", "joblib_zlib", "joblib_gzip", "joblib_bz2",
            "joblib_xz", "joblib_lzma", "joblib_lz4", "npy", "npz"} <= containers
    assert {h for _, h in covered} == set(INJECTIONS)


def test_injected_files_still_load_completely_with_a_harmless_probe(injected):
    rows, results = injected
    for (name, _, how, kind, _, _), r in zip(rows, results, strict=True):
        if kind == "probe":
            assert r.loaded and r.event == "" and r.error is None, (name, how, r.error)


def test_analyzer_reports_the_injected_callables(injected):
    analyzer = pytest.importorskip("safepickle_bench.analysis.analyzer")
    rows, _ = injected
    for name, _, how, kind, payload, content in rows:
        if kind != "mal":
            continue
        analysis = analyzer.analyze_bytes(content, name)
        seen = {i.qualname for i in analysis.all_imports()} | {c.callable for s in analysis.streams for c in s.calls}
        assert set(payload.callables) <= seen, (name, how, payload.family, payload.callables, sorted(seen))


def test_injection_is_deterministic(tmp_path):
    carriers = _carriers(tmp_path)
    payload = build_payload("os_system", str(tmp_path))
    for name in ("sd.pt", "m_gzip.joblib", "p4.pkl", "z.npz"):
        a = inject(carriers[name], payload, "nested", rng=random.Random(3))
        b = inject(carriers[name], payload, "nested", rng=random.Random(3))
        assert a == b


def test_impossible_combinations_raise_value_error(tmp_path):
    carriers = _carriers(tmp_path)
    payload = build_payload("os_system", str(tmp_path))
    for name, how in (("sd.pt", "second_stream"), ("m_zlib.joblib", "second_stream"), ("p2.pkl", "zip_entry"),
                      ("p2.pkl", "between_arrays"), ("o.npy", "second_stream"), ("sd_legacy.pt", "zip_entry")):
        with pytest.raises(ValueError):
            inject(carriers[name], payload, how)
    with pytest.raises(ValueError, match="unknown injection"):
        inject(carriers["p2.pkl"], payload, "sideways")
    with pytest.raises(ValueError):
        inject(b"not a model file at all", payload, "prepend")
