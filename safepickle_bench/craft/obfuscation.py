"""Obfuscated code blobs with plausible random headers, and benign high-entropy blobs of the same shapes.

A `BlobFormat` is a generated container format of an imaginary code-obfuscation runtime: a random magic
prefix, version bytes, optional flags and checksum, a nonce, a length field, the ciphertext and optional
trailing padding, optionally armored as base64/base85/hex text. The ciphertext is an inert snippet (from the
payload-argument grammar), compiled and marshalled or kept as source, encrypted with a SHA-256 counter-mode
keystream whose key is derived from the format's secret (held by the loader, not the blob) and the nonce.
`BlobFormat.decoder_source` writes the matching stdlib-only decoder, so the oracle's throwaway loader gadget
can decrypt and reach `exec`.

`generate_benign_blobs` makes high-entropy benign bytes (weights, quantized tensors, compressed text and
JSON, digests, RNG states, tokenizer tables, framed checkpoints with generated headers), so neither entropy
nor a header is a shortcut.
"""

from __future__ import annotations

import array
import base64
import gzip
import hashlib
import inspect
import json
import marshal
import math
import random
import struct
import zlib
from dataclasses import dataclass

from safepickle_bench.craft.payload_args import ArgKind, make_payload_arg

KNOWN_MAGICS: tuple[bytes, ...] = (
    b"\x80", b"PK", b"\x1f\x8b", b"BZh", b"\x89PNG", b"\xfd7zXZ", b"7z\xbc\xaf", b"MZ", b"\x7fELF", b"%PDF",
    b"\x93NUMPY", b"GGUF", b"\x04\x22\x4d\x18", b"\x28\xb5\x2f\xfd", b"{", b"[", b"<",
)
"""Magic prefixes of real formats that a generated magic must not start with (nor be a prefix of)."""

ARMORS: tuple[str, ...] = ("", "base64", "base85", "hex")

_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = b"abcdefghijklmnopqrstuvwxyz0123456789"


def _unseal_blob(
    blob: bytes | str,
    magic: bytes,
    version_size: int,
    has_flags: bool,
    nonce_size: int,
    byteorder: str,
    has_crc: bool,
    secret: bytes,
    armor: str,
) -> bytes:
    """Return the plaintext of a sealed blob (written standalone: its source is copied into loader gadgets)."""
    import base64 as _b64
    import hashlib as _hl
    import zlib as _zl

    if isinstance(blob, str):
        blob = {"base64": _b64.b64decode, "base85": _b64.b85decode, "hex": bytes.fromhex}[armor](blob)
    if blob[: len(magic)] != magic:
        raise ValueError("not a sealed blob: bad magic")
    pos = len(magic) + version_size + (1 if has_flags else 0)
    nonce = blob[pos : pos + nonce_size]
    pos += nonce_size
    size = int.from_bytes(blob[pos : pos + 4], byteorder)
    pos += 4
    crc = int.from_bytes(blob[pos : pos + 4], byteorder) if has_crc else None
    pos += 4 if has_crc else 0
    body = blob[pos : pos + size]
    if len(body) != size:
        raise ValueError("truncated sealed blob")
    key = _hl.sha256(secret + nonce).digest()
    stream = b"".join(_hl.sha256(key + i.to_bytes(8, "little")).digest() for i in range((size + 31) // 32))
    plain = bytes(a ^ b for a, b in zip(body, stream, strict=False))
    if crc is not None and _zl.crc32(plain) != crc:
        raise ValueError("sealed blob checksum mismatch")
    return plain


@dataclass(frozen=True)
class BlobFormat:
    """A generated obfuscation-runtime container format (header layout, key material, armor)."""

    magic: bytes
    version: bytes
    has_flags: bool
    nonce_size: int
    byteorder: str
    has_crc: bool
    secret: bytes
    armor: str
    max_padding: int

    def _params(self) -> tuple[bytes, int, bool, int, str, bool, bytes, str]:
        """Return the positional parameters of `_unseal_blob` after the blob."""
        return (self.magic, len(self.version), self.has_flags, self.nonce_size, self.byteorder, self.has_crc,
                self.secret, self.armor)

    def seal(self, plaintext: bytes, rng: random.Random) -> bytes | str:
        """Return `plaintext` encrypted and framed in this format (armored text when the format says so)."""
        nonce = rng.randbytes(self.nonce_size)
        key = hashlib.sha256(self.secret + nonce).digest()
        n = len(plaintext)
        stream = b"".join(hashlib.sha256(key + i.to_bytes(8, "little")).digest() for i in range((n + 31) // 32))
        body = bytes(a ^ b for a, b in zip(plaintext, stream, strict=False))
        header = self.magic + self.version
        if self.has_flags:
            header += bytes([rng.randrange(256)])
        header += nonce + n.to_bytes(4, self.byteorder)
        if self.has_crc:
            header += zlib.crc32(plaintext).to_bytes(4, self.byteorder)
        blob = header + body + rng.randbytes(rng.randint(0, self.max_padding))
        if self.armor == "base64":
            return base64.b64encode(blob).decode()
        if self.armor == "base85":
            return base64.b85encode(blob).decode()
        if self.armor == "hex":
            return blob.hex()
        return blob

    def unseal(self, blob: bytes | str) -> bytes:
        """Return the plaintext of a blob sealed in this format (ValueError when it is not one)."""
        return _unseal_blob(blob, *self._params())

    def decoder_source(self, func_name: str) -> str:
        """Return stdlib-only Python source defining `func_name(blob) -> plaintext bytes` for this format."""
        impl = inspect.getsource(_unseal_blob).replace("def _unseal_blob(", f"def _{func_name}_impl(", 1)
        args = ", ".join(repr(p) for p in self._params())
        return f"{impl}\n\ndef {func_name}(blob):\n    return _{func_name}_impl(blob, {args})\n"


def _magic(rng: random.Random) -> bytes:
    """Return a generated magic prefix that no known format starts with."""
    while True:
        style = rng.randrange(5)
        n = rng.randint(2, 6)
        if style == 0:
            magic = bytes(rng.choice(_LETTERS) for _ in range(n))
        elif style == 1:
            magic = bytes(rng.choice(_LETTERS) for _ in range(n - 1)) + bytes([rng.randrange(4)])
        elif style == 2:
            magic = b"\x7f" + bytes(rng.choice(_LOWER) for _ in range(n - 1))
        elif style == 3:
            magic = rng.randbytes(n)
        else:
            magic = bytes(rng.choice(_LOWER) for _ in range(n)) + b"\x00"
        if not any(magic.startswith(k) or k.startswith(magic) for k in KNOWN_MAGICS):
            return magic


def generate_format(rng: random.Random) -> BlobFormat:
    """Return a random container format of an imaginary obfuscation runtime."""
    return BlobFormat(
        magic=_magic(rng),
        version=bytes(rng.randint(0, 9) for _ in range(rng.choice((1, 2, 2, 3)))),
        has_flags=rng.random() < 0.5,
        nonce_size=rng.choice((8, 12, 16, 16, 24)),
        byteorder=rng.choice(("little", "big")),
        has_crc=rng.random() < 0.5,
        secret=rng.randbytes(rng.choice((16, 32))),
        armor=rng.choice(ARMORS) if rng.random() < 0.4 else "",
        max_padding=rng.choice((0, 0, 16, 64, 256)),
    )


@dataclass(frozen=True)
class ObfuscatedBlob:
    """A sealed inert snippet: the blob, its format, and what it decrypts to."""

    format: BlobFormat
    data: bytes | str
    source: str
    """The inert Python snippet inside."""
    payload: str
    """"marshal" (the plaintext is `marshal.dumps(compile(source))`) or "source" (UTF-8 source text)."""


def _inflate(rng: random.Random, source: str, target_size: int) -> str:
    """Return `source` preceded by dead constants so its compiled form is about `target_size` bytes."""
    lines = []
    size = len(source)
    while size < target_size:
        name = f"_{rng.choice('abcdefghkmnpqrstuvwxz')}{rng.getrandbits(20):x}"
        chunk = rng.randbytes(min(512, max(8, target_size - size)))
        lines.append(f"{name} = {chunk!r}")
        size += len(chunk) + 16
    return "\n".join([*lines, source]) if lines else source


def make_obfuscated_blob(
    rng: random.Random, fmt: BlobFormat, temp_dir: str, *, payload: str | None = None, target_size: int | None = None
) -> ObfuscatedBlob:
    """Return one blob of `fmt` sealing an inert Python snippet of the payload-argument grammar."""
    payload = payload or rng.choice(("marshal", "marshal", "source"))
    if payload not in ("marshal", "source"):
        raise ValueError(f"payload must be 'marshal' or 'source', not {payload!r}")
    snippet = make_payload_arg(rng, temp_dir, kind=ArgKind.PYTHON).text
    target = target_size if target_size is not None else int(math.exp(rng.uniform(math.log(128), math.log(65536))))
    source = _inflate(rng, snippet, target)
    filename = rng.choice(("<frozen>", "<string>", "", "<obf>", f"{rng.getrandbits(32):08x}"))
    plain = marshal.dumps(compile(source, filename, "exec")) if payload == "marshal" else source.encode()
    return ObfuscatedBlob(fmt, fmt.seal(plain, rng), source, payload)


def generate_obfuscated_blobs(seed: int | str, n: int, temp_dir: str, *, n_formats: int = 8) -> list[ObfuscatedBlob]:
    """Return `n` sealed inert snippets over `n_formats` generated formats, of sizes from ~128 B to ~64 KB."""
    rng = random.Random(f"obfuscated-blobs|{seed}")
    formats = [generate_format(rng) for _ in range(max(1, n_formats))]
    return [make_obfuscated_blob(rng, rng.choice(formats), temp_dir) for _ in range(n)]


# --------------------------------------------------------------------------- benign high-entropy bytes


BENIGN_BLOB_KINDS: tuple[str, ...] = (
    "float32_weights", "float16_weights", "int8_quantized", "zlib_text", "gzip_json", "digests", "rng_state",
    "tokenizer_table", "framed_checkpoint",
)
"""The kinds `generate_benign_blobs` produces."""


@dataclass(frozen=True)
class BenignBlob:
    """A benign high-entropy byte string and what it imitates."""

    kind: str
    data: bytes


_WORDPIECES = ("the", "##ing", "model", "token", "##s", "layer", "exec", "system", "shell", "eval", "os", "an",
               "##ed", "data", "run", "import", "of", "to", "and", "curl", "weight", "##er", "self", "in")


def _benign_bytes(rng: random.Random, kind: str, size: int) -> bytes:
    """Return about `size` benign bytes of a kind."""
    if kind == "float32_weights":
        scale = rng.choice((0.02, 0.1, 1.0))
        return array.array("f", (rng.gauss(0.0, scale) for _ in range(size // 4))).tobytes()
    if kind == "float16_weights":
        return struct.pack(f"<{size // 2}e", *(rng.gauss(0.0, 0.05) for _ in range(size // 2)))
    if kind == "int8_quantized":
        return bytes(max(0, min(255, int(rng.gauss(128, 40)))) for _ in range(size))
    if kind == "zlib_text":
        text = " ".join(rng.choice(_WORDPIECES) for _ in range(size // 2))
        return zlib.compress(text.encode(), rng.randint(1, 9))
    if kind == "gzip_json":
        cfg = {f"{rng.choice(_WORDPIECES).strip('#')}_{i}": rng.random() for i in range(max(1, size // 24))}
        return gzip.compress(json.dumps(cfg).encode(), mtime=0)
    if kind == "digests":
        return b"".join(hashlib.sha256(rng.randbytes(16)).digest() for _ in range(max(1, size // 32)))
    if kind == "rng_state":
        return struct.pack("<I", 624) + rng.randbytes(size)
    if kind == "tokenizer_table":
        out = bytearray()
        while len(out) < size:
            piece = (rng.choice(_WORDPIECES) + rng.choice(("", "", "s", "##"))).encode()
            out += bytes([len(piece)]) + piece + struct.pack("<f", -rng.random() * 20)
        return bytes(out)
    if kind == "framed_checkpoint":  # a generated header in front of compressed weights
        header_rng = random.Random(rng.getrandbits(64))
        magic = _magic(header_rng)
        weights = _benign_bytes(rng, "float32_weights", size)
        body = zlib.compress(weights) if rng.random() < 0.5 else weights
        order = rng.choice(("little", "big"))
        return magic + bytes([rng.randint(0, 9)]) + len(body).to_bytes(4, order) + body
    raise ValueError(f"unknown benign blob kind {kind!r}")


def generate_benign_blobs(seed: int | str, n: int) -> list[BenignBlob]:
    """Return `n` benign high-entropy blobs cycling through `BENIGN_BLOB_KINDS`, sizes ~128 B to ~64 KB."""
    rng = random.Random(f"benign-blobs|{seed}")
    out = []
    for i in range(n):
        kind = BENIGN_BLOB_KINDS[i % len(BENIGN_BLOB_KINDS)]
        size = int(math.exp(rng.uniform(math.log(128), math.log(65536))))
        out.append(BenignBlob(kind, _benign_bytes(rng, kind, size)))
    return out
