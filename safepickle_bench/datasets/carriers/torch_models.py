"""PyTorch carriers: transformers state_dicts (many tiny architectures), shards, whole modules, Lightning ckpts."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from safepickle_bench.datasets.carriers import FIXED_WORKDIR, CarrierFile, Producer, seed_everything
from safepickle_bench.datasets.carriers.torch_format import save_torch

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


# ---------------------------------------------------------------- transformers architectures (tiny configs)
def _dims(rng: np.random.Generator) -> dict[str, int]:
    heads = int(rng.choice([2, 4]))
    hidden = heads * int(rng.choice([4, 8, 12, 16]))
    return {
        "hidden": hidden,
        "heads": heads,
        "kv_heads": heads // 2 if rng.random() < 0.5 else heads,
        "layers": int(rng.integers(1, 4)),
        "ffn": hidden * int(rng.choice([2, 3, 4])) + int(rng.integers(0, 8)),
        "vocab": int(rng.integers(64, 1024)),
        "positions": int(rng.choice([32, 64, 128])),
    }


def _config_kwargs(arch: str, d: dict[str, int]) -> dict[str, Any]:
    h, n, L, f, v, p = d["hidden"], d["heads"], d["layers"], d["ffn"], d["vocab"], d["positions"]
    bert_like = dict(
        hidden_size=h, num_hidden_layers=L, num_attention_heads=n, intermediate_size=f, vocab_size=v,
        max_position_embeddings=p,
    )
    decoder_like = dict(
        hidden_size=h, intermediate_size=f, num_hidden_layers=L, num_attention_heads=n,
        num_key_value_heads=d["kv_heads"], vocab_size=v, max_position_embeddings=p,
    )
    seq2seq = dict(
        d_model=h, encoder_layers=L, decoder_layers=L, encoder_attention_heads=n, decoder_attention_heads=n,
        encoder_ffn_dim=f, decoder_ffn_dim=f, vocab_size=v,
    )
    table: dict[str, dict[str, Any]] = {
        "bert": bert_like,
        "roberta": {**bert_like, "max_position_embeddings": p + 2},
        "electra": {**bert_like, "embedding_size": max(8, h // 2)},
        "albert": {**bert_like, "embedding_size": max(8, h // 2)},
        "deberta-v2": bert_like,
        "distilbert": dict(dim=h, n_layers=L, n_heads=n, hidden_dim=f, vocab_size=v, max_position_embeddings=p),
        "gpt2": dict(n_embd=h, n_layer=L, n_head=n, vocab_size=v, n_positions=p),
        "gpt_neox": {k: val for k, val in decoder_like.items() if k != "num_key_value_heads"},
        "llama": decoder_like,
        "mistral": decoder_like,
        "qwen2": decoder_like,
        "opt": dict(
            hidden_size=h, ffn_dim=f, num_hidden_layers=L, num_attention_heads=n, word_embed_proj_dim=h,
            vocab_size=v, max_position_embeddings=p,
        ),
        "t5": dict(d_model=h, d_ff=f, num_layers=L, num_heads=n, d_kv=h // n, vocab_size=v),
        "bart": {**seq2seq, "max_position_embeddings": p},
        "whisper": {
            **seq2seq, "num_mel_bins": 16, "max_source_positions": 32, "max_target_positions": p,
            "pad_token_id": 1, "bos_token_id": 2, "eos_token_id": 3, "decoder_start_token_id": 2,
        },
        "vit": dict(
            hidden_size=h, num_hidden_layers=L, num_attention_heads=n, intermediate_size=f, image_size=32,
            patch_size=8,
        ),
        "swin": dict(image_size=32, patch_size=4, embed_dim=8 * n, depths=[1] * 2, num_heads=[n, n], window_size=4),
    }
    return table[arch]


ARCHITECTURES = (
    "bert", "roberta", "electra", "albert", "deberta-v2", "distilbert", "gpt2", "gpt_neox", "llama", "mistral",
    "qwen2", "opt", "t5", "bart", "whisper", "vit", "swin",
)
_HEADS = ("AutoModel", "AutoModelForSequenceClassification", "AutoModelForCausalLM", "AutoModelForMaskedLM")


def build_hf_model(rng: np.random.Generator) -> tuple[str, nn.Module]:
    """Build a randomly sized, randomly initialised tiny transformers model; return (architecture, model)."""
    import transformers

    arch = str(rng.choice(ARCHITECTURES))
    config = transformers.AutoConfig.for_model(arch, **_config_kwargs(arch, _dims(rng)))
    for head in [str(rng.choice(_HEADS)), "AutoModel"]:
        try:
            model = getattr(transformers, head).from_config(config)
            break
        except ValueError:  # this architecture has no such head
            continue
    return arch, model.eval()


def _dtype_name(rng: np.random.Generator) -> str:
    return str(rng.choice(["fp32", "fp16", "bf16"], p=[0.6, 0.25, 0.15]))


def _torch_format(rng: np.random.Generator) -> str:
    return str(rng.choice(["zip", "zip_archive", "legacy"], p=[0.55, 0.3, 0.15]))


def _protocol(rng: np.random.Generator) -> int:
    return int(rng.choice([2, 3, 4, 5], p=[0.85, 0.05, 0.05, 0.05]))


def _state_dict(model: nn.Module, dtype: str) -> OrderedDict:
    return OrderedDict((k, v.detach().to(DTYPES[dtype]).clone()) for k, v in model.state_dict().items())


def make_hf_state_dict(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """`torch.save(model.state_dict())` of a tiny transformers model, as save_pretrained(pt) wrote it."""
    seed_everything(int(rng.integers(2**31)))
    _, model = build_hf_model(rng)
    name = str(rng.choice(["pytorch_model.bin", "model.pt", "model.pth"], p=[0.8, 0.1, 0.1]))
    container = save_torch(_state_dict(model, _dtype_name(rng)), out_dir / name, _torch_format(rng), rng, _protocol(rng))
    return [CarrierFile(name, "state_dict", container, "torch")]


def make_hf_sharded(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A sharded `pytorch_model-0000k-of-0000n.bin` checkpoint (the index json is not a pickle: not kept)."""
    seed_everything(int(rng.integers(2**31)))
    _, model = build_hf_model(rng)
    state = _state_dict(model, _dtype_name(rng))
    n = int(rng.integers(2, 4))
    keys = list(state)
    fmt, files = _torch_format(rng), []
    for i, chunk in enumerate(np.array_split(np.arange(len(keys)), n), start=1):
        name = f"pytorch_model-{i:05d}-of-{n:05d}.bin"
        shard = OrderedDict((keys[j], state[keys[j]]) for j in chunk)
        files.append(CarrierFile(name, "state_dict_shard", save_torch(shard, out_dir / name, fmt, rng), "torch"))
    return files


def make_embeddings(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A textual-inversion style `learned_embeds.bin` or a tensor dict with a vocabulary."""
    seed_everything(int(rng.integers(2**31)))
    dim = int(rng.choice([32, 64, 128, 256]))
    if rng.random() < 0.5:
        token = f"<concept-{int(rng.integers(1000))}>"
        obj: Any = {token: torch.randn(int(rng.integers(1, 5)), dim)}
        name = "learned_embeds.bin"
    else:
        words = [f"w{int(i)}" for i in rng.integers(0, 10**6, size=int(rng.integers(10, 200)))]
        obj = {"embeddings": torch.randn(len(words), dim), "vocab": words, "dim": dim}
        name = "embeddings.pt"
    container = save_torch(obj, out_dir / name, _torch_format(rng), rng, _protocol(rng))
    return [CarrierFile(name, "tensors", container, "torch")]


# ---------------------------------------------------------------- custom modules pickled whole
class TinyMLP(nn.Module):
    """A small multi-layer perceptron classifier."""

    def __init__(self, n_in: int, hidden: int, n_out: int, depth: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(n_in if i == 0 else hidden, hidden), nn.ReLU(), nn.Dropout(0.1)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits."""
        return self.head(self.body(x))


class TinyCNN(nn.Module):
    """A small convolutional image classifier."""

    def __init__(self, channels: int, n_out: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, channels * 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(channels * 2, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits."""
        return self.classifier(self.features(x).flatten(1))


class TinyLSTMTagger(nn.Module):
    """An embedding + LSTM sequence tagger."""

    def __init__(self, vocab: int, dim: int, tags: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, dim, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * dim, tags)
        self.tag_names = [f"TAG-{i}" for i in range(tags)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return per-token tag logits."""
        return self.out(self.lstm(self.embedding(x))[0])


class TinyTransformerClassifier(nn.Module):
    """A torch.nn.TransformerEncoder text classifier."""

    def __init__(self, vocab: int, dim: int, heads: int, layers: int, n_out: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, dim * 2, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, n_out)
        self.config = {"vocab": vocab, "dim": dim, "heads": heads, "layers": layers}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits from mean-pooled encodings."""
        return self.head(self.encoder(self.embedding(x)).mean(1))


class TinyAutoencoder(nn.Module):
    """A dense autoencoder."""

    def __init__(self, n_in: int, code: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(n_in, code * 2), nn.Tanh(), nn.Linear(code * 2, code))
        self.decoder = nn.Sequential(nn.Linear(code, code * 2), nn.Tanh(), nn.Linear(code * 2, n_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the reconstruction of x."""
        return self.decoder(self.encoder(x))


def build_custom_module(rng: np.random.Generator) -> tuple[nn.Module, torch.Tensor]:
    """Build one of the custom modules at a random size plus a matching example input."""
    choice = int(rng.integers(5))
    if choice == 0:
        n_in = int(rng.integers(4, 64))
        return TinyMLP(n_in, int(rng.integers(8, 64)), int(rng.integers(2, 10)), int(rng.integers(1, 4))), torch.randn(
            4, n_in
        )
    if choice == 1:
        return TinyCNN(int(rng.choice([4, 8, 16])), int(rng.integers(2, 10))), torch.randn(2, 3, 16, 16)
    if choice == 2:
        vocab = int(rng.integers(20, 500))
        return TinyLSTMTagger(vocab, int(rng.choice([8, 16, 32])), int(rng.integers(3, 12))), torch.randint(
            0, vocab, (2, 7)
        )
    if choice == 3:
        vocab, heads = int(rng.integers(20, 500)), int(rng.choice([2, 4]))
        model = TinyTransformerClassifier(vocab, heads * 8, heads, int(rng.integers(1, 3)), int(rng.integers(2, 6)))
        return model, torch.randint(0, vocab, (2, 9))
    n_in = int(rng.integers(8, 64))
    return TinyAutoencoder(n_in, int(rng.integers(2, 8))), torch.randn(4, n_in)


def trained_optimizer(model: nn.Module, example: torch.Tensor, rng: np.random.Generator) -> tuple[Any, Any]:
    """Run one or two optimisation steps on `model` and return (optimizer, lr scheduler)."""
    kind = int(rng.integers(3))
    lr = float(rng.choice([1e-3, 3e-4, 5e-5]))
    if kind == 0:
        opt: torch.optim.Optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    elif kind == 1:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=int(rng.integers(1, 10)), gamma=0.5)
    model.train()
    for _ in range(int(rng.integers(1, 3))):
        opt.zero_grad()
        out = model(example)
        out = out[0] if isinstance(out, tuple) else out
        out.float().pow(2).mean().backward()
        opt.step()
        sched.step()
    model.eval()
    return opt, sched


def make_whole_module(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """`torch.save(model)` of a custom nn.Module class (the whole object, not its state_dict)."""
    seed_everything(int(rng.integers(2**31)))
    model, _ = build_custom_module(rng)
    name = str(rng.choice(["model.pt", "model.pth", "net.pt", "best_model.pth"]))
    source = f"{FIXED_WORKDIR}/models.py"
    container = save_torch(model, out_dir / name, _torch_format(rng), rng, _protocol(rng), source_file=source)
    return [CarrierFile(name, "whole_module", container, "torch")]


def make_lightning_ckpt(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A PyTorch Lightning `.ckpt` dict: state_dict, optimizer/scheduler states, callbacks, hyper-parameters."""
    seed_everything(int(rng.integers(2**31)))
    model, example = build_custom_module(rng)
    opt, sched = trained_optimizer(model, example, rng)
    epoch = int(rng.integers(0, 50))
    steps = (epoch + 1) * int(rng.integers(10, 500))
    monitor = str(rng.choice(["val_loss", "val_acc", "val_f1"]))
    mode = "min" if monitor == "val_loss" else "max"
    best = torch.tensor(float(rng.random()))
    ckpt_dir = f"{FIXED_WORKDIR}/lightning_logs/version_{int(rng.integers(20))}/checkpoints"
    ckpt: dict[str, Any] = {
        "epoch": epoch,
        "global_step": steps,
        "pytorch-lightning_version": str(rng.choice(["1.9.5", "2.0.9", "2.1.3", "2.2.1", "2.4.0"])),
        "state_dict": OrderedDict((f"model.{k}", v) for k, v in model.state_dict().items()),
        "loops": {
            "fit_loop": {
                "state_dict": {},
                "epoch_progress": {"total": {"ready": epoch + 1, "completed": epoch}, "current": {"ready": epoch + 1}},
            }
        },
        "callbacks": {
            f"ModelCheckpoint{{'monitor': '{monitor}', 'mode': '{mode}', 'every_n_train_steps': 0}}": {
                "monitor": monitor,
                "best_model_score": best,
                "best_model_path": f"{ckpt_dir}/epoch={epoch}-step={steps}.ckpt",
                "current_score": best,
                "dirpath": ckpt_dir,
                "best_k_models": {f"{ckpt_dir}/epoch={epoch}-step={steps}.ckpt": best},
                "kth_best_model_path": "",
                "kth_value": torch.tensor(float("inf")),
                "last_model_path": "",
            }
        },
        "optimizer_states": [opt.state_dict()],
        "lr_schedulers": [sched.state_dict()],
        "hparams_name": "kwargs",
        "hyper_parameters": {"lr": float(opt.param_groups[0]["lr"]), "model": type(model).__name__, "seed": epoch},
    }
    if rng.random() < 0.5:
        ckpt["callbacks"][f"EarlyStopping{{'monitor': '{monitor}', 'mode': '{mode}'}}"] = {
            "wait_count": int(rng.integers(0, 3)), "stopped_epoch": 0, "best_score": best, "patience": 3,
        }
    name = str(rng.choice(["last.ckpt", f"epoch={epoch}-step={steps}.ckpt", "best.ckpt"]))
    container = save_torch(ckpt, out_dir / name, str(rng.choice(["zip", "zip_archive"])), rng)
    return [CarrierFile(name, "lightning_checkpoint", container, "torch")]


PRODUCERS = [
    Producer("transformers.state_dict", make_hf_state_dict, weight=5.0),
    Producer("transformers.sharded", make_hf_sharded, weight=1.0, files_per_call=2.5),
    Producer("torch.embeddings", make_embeddings, weight=0.8),
    Producer("torch.whole_module", make_whole_module, weight=1.5),
    Producer("lightning.ckpt", make_lightning_ckpt, weight=1.2),
]
