"""The `ngrams` group: hashed opcode bigram and trigram frequencies of the top-level streams."""

from __future__ import annotations

import numpy as np

from safepickle_bench.analysis.result import Analysis

NAME = "ngrams"

BUCKETS = 128
"""Buckets per n (a power of two); the group has 2 * BUCKETS columns."""
_SHIFT = np.uint64(64 - int(BUCKETS).bit_length() + 1)
# Fibonacci hashing with a fixed odd 64-bit constant: stable across processes and Python versions
# (unlike the salted built-in hash()).
_MULT = np.uint64(0x9E3779B97F4A7C15)
_TRI_SALT = np.uint64(0xC2B2AE3D27D4EB4F)

BIGRAM_COLUMNS: tuple[str, ...] = tuple(f"{NAME}__bi_{i:03d}" for i in range(BUCKETS))
TRIGRAM_COLUMNS: tuple[str, ...] = tuple(f"{NAME}__tri_{i:03d}" for i in range(BUCKETS))
COLUMNS: tuple[str, ...] = (*BIGRAM_COLUMNS, *TRIGRAM_COLUMNS)
DESCRIPTIONS: dict[str, str] = {
    **{c: f"share of opcode bigrams hashing to bucket {i} (see ngrams.bucket_of)" for i, c in enumerate(BIGRAM_COLUMNS)},
    **{c: f"share of opcode trigrams hashing to bucket {i} (see ngrams.bucket_of)" for i, c in enumerate(TRIGRAM_COLUMNS)},
}


def _hash(keys: np.ndarray) -> np.ndarray:
    """Return the bucket of each uint64 n-gram key."""
    with np.errstate(over="ignore"):
        return ((keys * _MULT) >> _SHIFT).astype(np.intp)


def bucket_of(codes: bytes) -> int:
    """Return the bucket of one opcode bigram or trigram given as its opcode bytes (for reading plots)."""
    if len(codes) not in (2, 3):
        raise ValueError("an n-gram is 2 or 3 opcode bytes")
    key = np.array([int.from_bytes(codes, "big")], dtype=np.uint64)
    if len(codes) == 3:
        key = key ^ _TRI_SALT
    return int(_hash(key)[0])


def compute(analysis: Analysis) -> np.ndarray:
    """Return bigram shares (summing to 1 when any) then trigram shares, n-grams never spanning streams."""
    bi = np.zeros(BUCKETS, dtype=np.float64)
    tri = np.zeros(BUCKETS, dtype=np.float64)
    for stream in analysis.streams:
        if stream.nested_depth or len(stream.opcode_seq) < 2:
            continue
        seq = np.frombuffer(stream.opcode_seq, dtype=np.uint8).astype(np.uint64)
        bkeys = (seq[:-1] << np.uint64(8)) | seq[1:]
        bi += np.bincount(_hash(bkeys), minlength=BUCKETS)
        if len(seq) >= 3:
            tkeys = ((bkeys[:-1] << np.uint64(8)) | seq[2:]) ^ _TRI_SALT
            tri += np.bincount(_hash(tkeys), minlength=BUCKETS)
    nb, nt = bi.sum(), tri.sum()
    if nb:
        bi /= nb
    if nt:
        tri /= nt
    return np.concatenate([bi, tri])
