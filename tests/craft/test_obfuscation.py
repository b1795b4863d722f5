"""Obfuscated blobs and benign high-entropy blobs: determinism, round trip, headers, sizes, entropy overlap."""

from __future__ import annotations

import importlib.util
import marshal
import math
import random
from collections import Counter

import pytest

from safepickle_bench.craft.obfuscation import (
    BENIGN_BLOB_KINDS,
    KNOWN_MAGICS,
    generate_benign_blobs,
    generate_format,
    generate_obfuscated_blobs,
    make_obfuscated_blob,
)

TEMP = "/tmp/spb-obf-test"


def _entropy(data: bytes) -> float:
    counts = Counter(data)
    return -sum(c / len(data) * math.log2(c / len(data)) for c in counts.values())


def _raw(data: bytes | str) -> bytes:
    return data if isinstance(data, bytes) else data.encode()


@pytest.fixture(scope="module")
def blobs():
    return generate_obfuscated_blobs(0, 80, TEMP, n_formats=10)


@pytest.fixture(scope="module")
def benign():
    return generate_benign_blobs(0, 90)


def test_same_seed_same_blobs_different_seed_different():
    assert generate_obfuscated_blobs(1, 10, TEMP) == generate_obfuscated_blobs(1, 10, TEMP)
    assert generate_obfuscated_blobs(1, 10, TEMP) != generate_obfuscated_blobs(2, 10, TEMP)
    assert generate_benign_blobs(1, 18) == generate_benign_blobs(1, 18)
    assert generate_benign_blobs(1, 18) != generate_benign_blobs(2, 18)


def test_blobs_unseal_to_the_inert_snippet(blobs):
    assert {b.payload for b in blobs} == {"marshal", "source"}
    for b in blobs:
        plain = b.format.unseal(b.data)
        if b.payload == "marshal":
            code = marshal.loads(plain)  # our own bytes, turned into a code object and never run
            assert code.co_code == compile(b.source, code.co_filename, "exec").co_code
        else:
            assert plain.decode() == b.source
        assert _raw(b.data).find(b.source.encode()[:32]) == -1  # the snippet does not show through


def test_headers_are_generated_and_never_a_known_format(blobs):
    formats = {b.format for b in blobs}
    assert len({f.magic for f in formats}) >= 8
    assert "" in {f.armor for f in formats} and len({f.armor for f in formats}) >= 2
    rng = random.Random(3)
    for _ in range(500):
        magic = generate_format(rng).magic
        assert 2 <= len(magic) <= 7
        assert not any(magic.startswith(k) or k.startswith(magic) for k in KNOWN_MAGICS)
    for b in blobs:
        if not b.format.armor:
            assert b.data[: len(b.format.magic)] == b.format.magic


def test_blob_sizes_span_small_to_large(blobs):
    sizes = [len(b.data) for b in blobs]
    assert min(sizes) < 1024 and max(sizes) > 16384


def test_a_wrong_or_truncated_blob_is_a_clear_error(blobs):
    b = next(b for b in blobs if not b.format.armor)
    with pytest.raises(ValueError, match="magic"):
        b.format.unseal(b"\x00" * 64)
    header = len(b.format.magic) + len(b.format.version) + b.format.has_flags + b.format.nonce_size + 8
    with pytest.raises(ValueError, match="truncated"):
        b.format.unseal(b.data[:header + 1])


def test_decoder_source_written_to_a_module_decrypts_like_the_format(tmp_path, blobs):
    for i, b in enumerate(blobs[:12]):
        path = tmp_path / f"decoder_{i}.py"
        path.write_text(b.format.decoder_source("unseal_blob"))
        spec = importlib.util.spec_from_file_location(f"decoder_{i}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # defines one stdlib-only decoding function
        assert module.unseal_blob(b.data) == b.format.unseal(b.data)


def test_payload_kind_is_validated():
    with pytest.raises(ValueError, match="payload"):
        make_obfuscated_blob(random.Random(0), generate_format(random.Random(0)), TEMP, payload="pyc")


def test_entropy_alone_does_not_separate_obfuscated_from_benign(blobs, benign):
    assert {b.kind for b in benign} == set(BENIGN_BLOB_KINDS)
    assert min(len(b.data) for b in benign) < 1024 and max(len(b.data) for b in benign) > 16384
    bad = [_entropy(_raw(b.data)) for b in blobs if len(b.data) >= 1024]
    good = [_entropy(b.data) for b in benign if len(b.data) >= 1024]
    assert min(bad) < 6.5 and max(bad) > 7.8  # armored text vs raw ciphertext
    high_benign = sum(h > 7.5 for h in good) / len(good)
    assert high_benign > 0.25
    low_bad = sum(h < 7.5 for h in bad) / len(bad)
    assert low_bad > 0.1
