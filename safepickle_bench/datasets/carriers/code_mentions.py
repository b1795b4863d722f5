"""Real-looking model files whose strings merely mention code: docstrings, configs, vocabularies, usage notes.

The strings come from `craft.payload_args.generate_benign_mentions` (code words, shell syntax, loopback URLs,
temp paths) and the bytes values from `craft.obfuscation.generate_benign_blobs` (high-entropy weights,
compressed text, digests): the same surface as payload arguments and obfuscated blobs, in data only.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from safepickle_bench.craft.obfuscation import BENIGN_BLOB_KINDS, generate_benign_blobs
from safepickle_bench.craft.payload_args import generate_benign_mentions
from safepickle_bench.datasets.carriers import CarrierFile, Producer, seed_everything
from safepickle_bench.datasets.carriers.torch_format import TORCH_FORMATS, save_torch


def _mentions(rng: np.random.Generator, n: int) -> list[str]:
    """Return `n` benign strings that mention code (seeded by the rng)."""
    return [m.text for m in generate_benign_mentions(int(rng.integers(2**62)), n)]


def _blobs(rng: np.random.Generator, n: int) -> list[bytes]:
    """Return `n` benign high-entropy byte strings (seeded by the rng)."""
    return [b.data for b in generate_benign_blobs(int(rng.integers(2**62)), n)]


def _config(rng: np.random.Generator) -> dict[str, Any]:
    """Return a config dict whose values and descriptions mention code."""
    texts = _mentions(rng, int(rng.integers(4, 12)))
    config: dict[str, Any] = {}
    for i, text in enumerate(texts):
        key, sep, value = text.partition(": ")
        if sep and key.isidentifier():
            config[key] = value
        else:
            config[("description", "usage", "notes", "example", "log_line", "run_id")[i % 6] + f"_{i}"] = text
    config["hidden_size"] = int(2 ** rng.integers(5, 10))
    config["num_layers"] = int(rng.integers(1, 13))
    return config


def make_torch_with_config(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A torch checkpoint: a small model's state_dict plus a config and model card that mention code."""
    import torch
    from torch import nn

    seed_everything(int(rng.integers(2**31)))
    width = int(rng.choice([8, 16, 32]))
    model = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, int(rng.integers(2, 10))))
    mentions = _mentions(rng, 3)
    ckpt: dict[str, Any] = {
        "state_dict": model.state_dict(),
        "config": _config(rng),
        "model_card": {"summary": mentions[0], "how_to_use": mentions[1], "limitations": mentions[2]},
        "epoch": int(rng.integers(1, 50)),
    }
    if rng.random() < 0.5:
        ckpt["extra_state"] = {"rng_state": torch.from_numpy(np.frombuffer(_blobs(rng, 1)[0], dtype=np.uint8).copy())}
    fmt = TORCH_FORMATS[int(rng.integers(len(TORCH_FORMATS)))]
    name = ("pytorch_model.bin", "checkpoint.pt", "model.pt")[int(rng.integers(3))]
    return [CarrierFile(name, "torch_with_config", save_torch(ckpt, out_dir / name, fmt, rng), "torch")]


def make_tokenizer_vocab(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A pickled tokenizer: vocabulary and merges with code words, special tokens, a serialized piece table."""
    words: list[str] = []
    for text in _mentions(rng, int(rng.integers(20, 60))):
        words += text.split()
    vocab = {w: i for i, w in enumerate(dict.fromkeys(["<pad>", "<unk>", "<s>", "</s>", *words]))}
    tokens = list(vocab)
    merges = [(tokens[int(a)], tokens[int(b)]) for a, b in rng.integers(4, len(tokens), size=(int(rng.integers(5, 40)), 2))]
    tok: dict[str, Any] = {
        "vocab": vocab,
        "merges": merges,
        "special_tokens": {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"},
        "do_lower_case": bool(rng.random() < 0.5),
        "piece_table": _blobs(rng, len(BENIGN_BLOB_KINDS))[BENIGN_BLOB_KINDS.index("tokenizer_table")],
    }
    name = ("tokenizer.pkl", "vocab.pkl", "spm_vocab.pickle")[int(rng.integers(3))]
    (out_dir / name).write_bytes(pickle.dumps(tok, protocol=int(rng.integers(2, 6))))
    return [CarrierFile(name, "tokenizer_vocab", "pickle", "pickle")]


def make_sklearn_documented(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A fitted sklearn text pipeline carrying docstring-like metadata that mentions code."""
    import joblib
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    docs = _mentions(rng, int(rng.integers(12, 30)))
    labels = [i % 2 for i in range(len(docs))]
    pipe = Pipeline([("tfidf", TfidfVectorizer(max_features=int(rng.integers(20, 200)))),
                     ("clf", LogisticRegression(max_iter=200, random_state=int(rng.integers(100))))])
    pipe.fit(docs, labels)
    pipe.metadata_ = {"description": docs[0], "training_command": docs[1], "owner": "ml-team"}
    if rng.random() < 0.5:
        name = "pipeline.pkl"
        (out_dir / name).write_bytes(pickle.dumps(pipe, protocol=int(rng.integers(2, 6))))
        return [CarrierFile(name, "sklearn_documented", "pickle", "pickle")]
    name = "model.joblib"
    joblib.dump(pipe, out_dir / name)
    return [CarrierFile(name, "sklearn_documented", "joblib", "joblib")]


def make_config_with_blobs(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A JSON-like config pickled with its high-entropy bytes (weights, compressed text, digests) inline."""
    config = _config(rng)
    config["artifacts"] = {f"blob_{i}": blob for i, blob in enumerate(_blobs(rng, int(rng.integers(1, 6))))}
    name = ("config.pkl", "artifacts.pkl", "bundle.pickle")[int(rng.integers(3))]
    (out_dir / name).write_bytes(pickle.dumps(config, protocol=int(rng.integers(0, 6))))
    return [CarrierFile(name, "config_with_blobs", "pickle", "pickle")]


PRODUCERS = [
    Producer("mentions.torch_config", make_torch_with_config, weight=1.0),
    Producer("mentions.tokenizer", make_tokenizer_vocab, weight=0.8),
    Producer("mentions.sklearn", make_sklearn_documented, weight=0.6),
    Producer("mentions.config_blobs", make_config_with_blobs, weight=0.8),
]
