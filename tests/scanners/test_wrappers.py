"""Each installed third-party scanner wrapper gives the normalised verdict on a benign and a malicious file."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from safepickle_bench.scanners import ScanResult, build_scanner

# inert: posix.system("echo hi"), written as opcodes, never loaded by the tests
MALICIOUS_PICKLE = b"\x80\x02cposix\nsystem\nq\x00X\x07\x00\x00\x00echo hiq\x01\x85q\x02Rq\x03."


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, Path]:
    """Write a benign torch checkpoint, a benign dict pickle, a malicious pickle, and broken files."""
    import torch

    d = tmp_path_factory.mktemp("scanner_samples")
    torch.save({"w": torch.zeros(3)}, d / "benign.pt")
    (d / "benign.pkl").write_bytes(pickle.dumps({"a": 1, "b": [1, 2]}, protocol=2))
    (d / "malicious.pkl").write_bytes(MALICIOUS_PICKLE)
    (d / "malicious_raw.bin").write_bytes(MALICIOUS_PICKLE)
    (d / "empty.pkl").write_bytes(b"")
    return {p.stem: p for p in d.iterdir()}


def _check(result: ScanResult) -> None:
    """Assert the invariants every normalised result holds."""
    assert result.verdict in ("malicious", "benign", "error")
    assert 0.0 <= result.score <= 1.0
    assert result.seconds > 0
    assert (result.error is not None) == (result.verdict == "error")


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("picklescan", "in-process"),
        ("picklescan", "cli"),
        ("modelscan", "in-process"),
        ("modelscan", "cli"),
        ("fickling", "in-process"),
        ("pickleguard", "in-process"),
        ("modelaudit", "cli"),
        ("weights_only", "subprocess"),
    ],
)
def test_wrapper_flags_malicious_and_passes_benign(samples, name, mode):
    scanner = build_scanner(name, mode=mode, timeout=120)
    ok, why = scanner.available()
    if not ok:
        pytest.skip(f"{name} not installed here: {why}")
    try:
        mal = scanner.scan(samples["malicious"])
        ben = scanner.scan(samples["benign"])
        torch_ckpt = scanner.scan(samples["benign"].with_suffix(".pt"))
    finally:
        scanner.close()
    for r in (mal, ben, torch_ckpt):
        _check(r)
    assert mal.verdict == "malicious" and mal.score >= 0.75, mal
    assert any("system" in f for f in mal.findings), mal.findings
    assert torch_ckpt.verdict == "benign", torch_ckpt
    if name == "weights_only":  # a plain pickle is not a torch file: torch cannot load it at all
        assert ben.verdict == "error" and "magic number" in (ben.error or "")
    else:
        assert ben.verdict == "benign", ben


def test_modelscan_skips_raw_pickle_named_bin_and_says_so(samples):
    scanner = build_scanner("modelscan", timeout=60)
    try:
        result = scanner.scan(samples["malicious_raw"])
    finally:
        scanner.close()
    assert result.verdict == "benign" and result.skipped
    assert any(f.startswith("skipped") for f in result.findings)


def test_empty_file_is_an_error_for_picklescan_not_a_crash(samples):
    scanner = build_scanner("picklescan", timeout=60)
    try:
        result = scanner.scan(samples["empty"])
        after = scanner.scan(samples["malicious"])  # the worker survives and goes on
    finally:
        scanner.close()
    assert result.verdict == "error" and "OSError" in (result.error or "")
    assert after.verdict == "malicious"


def test_fickling_rates_torch_checkpoint_below_malicious_threshold(samples):
    scanner = build_scanner("fickling", timeout=60)
    try:
        result = scanner.scan(samples["benign"].with_suffix(".pt"))
    finally:
        scanner.close()
    assert result.verdict == "benign" and result.score == pytest.approx(3 / 5)


def test_missing_file_is_an_error(tmp_path):
    result = build_scanner("picklescan").scan(tmp_path / "nope.pkl")
    assert result.verdict == "error" and "not a readable file" in (result.error or "")


def test_pickleguard_flags_an_unlisted_callable_given_a_shell_command(tmp_path):
    # inert: a made-up module's callable handed "echo hi", written as opcodes, never loaded by the test
    path = tmp_path / "gadget.pkl"
    path.write_bytes(b"\x80\x02cfoo.bar\nrun_cmd\nq\x00X\x07\x00\x00\x00echo hiq\x01\x85q\x02Rq\x03.")
    scanner = build_scanner("pickleguard", timeout=60)
    if not scanner.available()[0]:
        pytest.skip("pickleguard not installed here")
    try:
        result = scanner.scan(path)
    finally:
        scanner.close()
    assert result.verdict == "malicious" and 0.6 <= result.score < 0.85, result
    assert any("run_cmd" in f for f in result.findings), result.findings
