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
    """Return the bucket of each uint64 n-gram key (array arithmetic wraps modulo 2**64 without a warning)."""
    return ((keys * _MULT) >> _SHIFT).astype(np.intp)


def bucket_of(codes: bytes) -> int:
    """Return the bucket of one opcode bigram or trigram given as its opcode bytes (for reading plots)."""
    if len(codes) not in (2, 3):
        raise ValueError("an n-gram is 2 or 3 opcode bytes")
    key = np.array([int.from_bytes(codes, "big")], dtype=np.uint64)
    if len(codes) == 3:
        key = key ^ _TRI_SALT
    return int(_hash(key)[0])


def _bigram_table() -> bytes:
    """Return the bucket of every bigram key `(first << 8) | second` (65,536 keys, one byte each)."""
    keys = np.arange(1 << 16, dtype=np.uint64)
    return _hash(keys).astype(np.uint8).tobytes()


_BIGRAM_BUCKET = _bigram_table()
_PY_MULT = int(_MULT)
_PY_SHIFT = int(_SHIFT)
_PY_TRI_SALT = int(_TRI_SALT)
_MASK64 = (1 << 64) - 1
_NUMPY_MIN_OPCODES = 48
"""Below this many opcodes in a stream, a Python loop counts its n-grams faster than numpy's fixed costs."""


def _count_small(seq: bytes, bi: dict[int, int], tri: dict[int, int]) -> None:
    """Add the bigram and trigram bucket counts of one short opcode sequence to `bi` and `tri`."""
    table = _BIGRAM_BUCKET
    mult, shift, salt, mask = _PY_MULT, _PY_SHIFT, _PY_TRI_SALT, _MASK64
    bi_get = bi.get
    tri_get = tri.get
    a = seq[0]
    b = seq[1]
    k = table[(a << 8) | b]
    bi[k] = bi_get(k, 0) + 1
    for c in seq[2:]:
        k = table[(b << 8) | c]
        bi[k] = bi_get(k, 0) + 1
        k = ((((a << 16) | (b << 8) | c) ^ salt) * mult & mask) >> shift
        tri[k] = tri_get(k, 0) + 1
        a = b
        b = c


def compute(analysis: Analysis) -> np.ndarray:
    """Return bigram shares (summing to 1 when any) then trigram shares, n-grams never spanning streams."""
    out = np.zeros(2 * BUCKETS, dtype=np.float64)
    bi_small: dict[int, int] = {}
    tri_small: dict[int, int] = {}
    long_seqs = []
    for stream in analysis.streams:
        seq = stream.opcode_seq
        if stream.nested_depth or len(seq) < 2:
            continue
        if len(seq) < _NUMPY_MIN_OPCODES:
            _count_small(seq, bi_small, tri_small)
        else:
            long_seqs.append(seq)
    if not long_seqs:  # short streams only: set the few non-zero buckets (integer division, as numpy's)
        nb = sum(bi_small.values())
        for i, c in bi_small.items():
            out[i] = c / nb
        nt = sum(tri_small.values())
        for i, c in tri_small.items():
            out[BUCKETS + i] = c / nt
        return out
    bi = out[:BUCKETS]
    tri = out[BUCKETS:]
    for raw in long_seqs:
        seq = np.frombuffer(raw, dtype=np.uint8).astype(np.uint64)
        bkeys = (seq[:-1] << np.uint64(8)) | seq[1:]
        bi += np.bincount(_hash(bkeys), minlength=BUCKETS)
        tkeys = ((bkeys[:-1] << np.uint64(8)) | seq[2:]) ^ _TRI_SALT
        tri += np.bincount(_hash(tkeys), minlength=BUCKETS)
    for i, c in bi_small.items():  # integer counts: adding them as floats is exact, in any order
        bi[i] += c
    for i, c in tri_small.items():
        tri[i] += c
    nb, nt = bi.sum(), tri.sum()
    if nb:
        bi /= nb
    if nt:
        tri /= nt
    return out
