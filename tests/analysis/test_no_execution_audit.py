"""Analysing hostile files never executes them: no import, process, network or code event fires."""

from __future__ import annotations

import io
import sys
import zipfile

import pytest

from safepickle_bench.analysis import analyze_bytes, analyze_path


def test_audit_fixture_catches_a_dangerous_event(no_dangerous_events):
    import os

    with pytest.raises(RuntimeError, match="dangerous audit event"):
        os.system("echo never-runs")  # blocked by the hook before the shell starts
    assert [e for e, _ in no_dangerous_events] == ["os.system"]
    no_dangerous_events.clear()  # the hook works; do not fail this test for the event it was fed


def test_whole_wild_corpus_raises_no_dangerous_event(wild_corpus, no_dangerous_events):
    paths = sorted(p for p in wild_corpus.glob("*/*") if p.is_file())
    analyses = [analyze_path(p) for p in paths]
    assert len(analyses) > 100
    assert sum(len(a.all_imports()) for a in analyses) > len(analyses)  # the imports were read, not run
    assert not [a.path for a in analyses if a.error]


def test_generated_container_evasions_raise_no_dangerous_event(
    hostile_container_samples, no_dangerous_events
):
    analyses = [analyze_bytes(s.data, s.name) for s in hostile_container_samples]
    assert all(any(c.callable == "posix.system" for c in a.all_calls()) for a in analyses)


def _torch_like_zip(data_pkl: bytes) -> bytes:
    """Return a deflated zip with PyTorch's layout around `data_pkl`."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/data/0", bytes(64))
        zf.writestr("archive/version", b"3\n")
    return out.getvalue()


def _payload_samples() -> list[tuple[str, bytes]]:
    """Every generated payload family, at every protocol, raw and inside a torch-like zip."""
    payloads = pytest.importorskip("safepickle_bench.craft.payloads")

    samples: list[tuple[str, bytes]] = []
    for family in payloads.PAYLOAD_FAMILIES:
        for protocol in range(6):
            for variant in range(2):
                try:
                    payload = payloads.build_payload(
                        family, "/tmp/safepickle-marker", protocol=protocol, variant=variant
                    )
                except (ValueError, NotImplementedError):
                    continue  # a family that has no form at this protocol
                stream = payload.stream()
                samples.append((f"{family}-p{protocol}-v{variant}.pkl", stream))
                samples.append(
                    (
                        f"{family}-p{protocol}-v{variant}.pt",
                        _torch_like_zip(stream),
                    )
                )
    return samples


def test_generated_payload_families_raise_no_dangerous_event(no_dangerous_events):
    samples = _payload_samples()
    assert samples
    analyses = [analyze_bytes(data, name) for name, data in samples]
    assert all(a.all_imports() for a in analyses), [a.path for a in analyses if not a.all_imports()]
    assert "safepickle_bench.craft.payloads" in sys.modules
