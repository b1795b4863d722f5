"""Small real benign carriers (pickle protocols 0-5, torch zip and legacy, joblib raw and compressed, .npy, .npz)
for injecting generalisation payloads when no dataset carriers are given.

Each is written by the library that writes such files in the wild (pickle, torch.save, joblib.dump,
numpy.save/savez), from seeded data.
"""

from __future__ import annotations

import io
import pickle
import random
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

CARRIER_KINDS: tuple[str, ...] = (
    "pickle_p0", "pickle_p1", "pickle_p2", "pickle_p3", "pickle_p4", "pickle_p5", "torch_zip", "torch_legacy",
    "joblib", "joblib_zlib", "joblib_gzip", "joblib_lz4", "npy", "npz",
)


@dataclass(frozen=True)
class Carrier:
    """A benign file's bytes, its kind and the file name it would have."""

    kind: str
    file_name: str
    data: bytes
    protocol: int
    """Protocol of the pickle stream a payload is injected into (the payload is rendered at it)."""


def _config(rng: random.Random) -> dict:
    """Return a model-config-like dict with nested lists and dicts (places for a nested payload)."""
    return {"model_type": rng.choice(("mlp", "cnn", "tiny")), "hidden": [rng.randint(4, 64) for _ in range(3)],
            "optimizer": {"name": "adam", "lr": round(rng.random() / 100, 5)}, "labels": ["neg", "pos"]}


def _torch(seed: int, legacy: bool) -> bytes:
    """Return a small torch state_dict saved by torch.save."""
    import torch

    flat = torch.randn(15, generator=torch.Generator().manual_seed(seed))
    # one storage shared by both tensors: the legacy format orders storages by memory address
    state = {"fc.weight": flat[:12].view(3, 4), "fc.bias": flat[12:], "meta": {"epochs": seed % 7, "tags": ["a", "b"]}}
    buf = io.BytesIO()
    torch.save(state, buf, _use_new_zipfile_serialization=not legacy)
    return _stable_storage_keys(buf.getvalue()) if legacy else buf.getvalue()


_LEGACY_KEY = re.compile(rb"X(.)\x00\x00\x00(\d{4,40})")


def _stable_storage_keys(data: bytes) -> bytes:
    """Return a legacy torch file whose storage keys (memory addresses) are replaced by fixed-length counters.

    The keys are BINUNICODE strings of protocol-2 pickles without frames, so their length may change.
    """
    keys: dict[bytes, bytes] = {}

    def stable(match: re.Match[bytes]) -> bytes:
        key = match.group(2)
        if match.group(1)[0] != len(key):
            return match.group(0)
        keys.setdefault(key, str(len(keys)).zfill(14).encode())
        return b"X\x0e\x00\x00\x00" + keys[key]

    return _LEGACY_KEY.sub(stable, data)


def _joblib(seed: int, compress: tuple[str, int] | int) -> bytes:
    """Return numpy arrays and a config saved by joblib.dump."""
    import joblib
    import numpy as np

    rs = np.random.RandomState(seed)
    obj = {"coef": rs.rand(4, 3), "intercept": rs.rand(3), "config": _config(random.Random(seed))}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.joblib"
        joblib.dump(obj, path, compress=compress)
        return path.read_bytes()


def _npy(seed: int) -> bytes:
    """Return an object-array .npy written by numpy.save."""
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.array([_config(random.Random(seed)), "vocab", None], dtype=object), allow_pickle=True)
    return buf.getvalue()


def _npz(seed: int) -> bytes:
    """Return an .npz with a float array and an object array, written by numpy.savez."""
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, weights=np.random.RandomState(seed).rand(3, 2),
             vocab=np.array(["a", {"id": seed}], dtype=object))
    return buf.getvalue()


def make_carrier(kind: str, seed: int) -> Carrier:
    """Return one benign carrier of a kind (see `CARRIER_KINDS`)."""
    if kind.startswith("pickle_p"):
        protocol = int(kind[-1])
        return Carrier(kind, "model.pkl", pickle.dumps(_config(random.Random(seed)), protocol=protocol), protocol)
    if kind == "torch_zip":  # torch.save pickles at protocol 2
        return Carrier(kind, "pytorch_model.bin", _torch(seed, legacy=False), 2)
    if kind == "torch_legacy":
        return Carrier(kind, "model.pt", _torch(seed, legacy=True), 2)
    if kind.startswith("joblib"):  # joblib and numpy pickle at the default protocol
        compress: tuple[str, int] | int = (kind.split("_", 1)[1], 3) if "_" in kind else 0
        return Carrier(kind, "model.joblib", _joblib(seed, compress), pickle.DEFAULT_PROTOCOL)
    if kind == "npy":
        return Carrier(kind, "vocab.npy", _npy(seed), pickle.DEFAULT_PROTOCOL)
    if kind == "npz":
        return Carrier(kind, "arrays.npz", _npz(seed), pickle.DEFAULT_PROTOCOL)
    raise ValueError(f"unknown carrier kind {kind!r}; known: {CARRIER_KINDS}")
