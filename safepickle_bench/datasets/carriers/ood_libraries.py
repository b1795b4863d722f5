"""Out-of-distribution producers: library-style whole-object pickles (flair, pyannote, YOLO, sentence-transformers,
GLiNER) built from real torch modules, plus other real libraries (scipy, sklearn text, tokenizers).

The classes live here under importable names so the label oracle can load the files it generates.
"""

from __future__ import annotations

import enum
import pickle
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from safepickle_bench.datasets.carriers import FIXED_WORKDIR, CarrierFile, Producer, seed_everything
from safepickle_bench.datasets.carriers.torch_format import save_torch


# ---------------------------------------------------------------- flair-style sequence tagger
class Dictionary:
    """A flair-style item<->index dictionary (items stored as bytes, like flair does)."""

    def __init__(self, items: list[str], add_unk: bool = True) -> None:
        self.item2idx: dict[bytes, int] = {}
        self.idx2item: list[bytes] = []
        self.add_unk = add_unk
        for item in (["<unk>"] if add_unk else []) + items:
            self.item2idx[item.encode()] = len(self.idx2item)
            self.idx2item.append(item.encode())
        self.span_labels = False
        self.multi_label = False


class WordEmbeddings(nn.Module):
    """A static word-embedding table with its vocabulary."""

    def __init__(self, vocab: list[str], dim: int) -> None:
        super().__init__()
        self.name = f"{FIXED_WORKDIR}/.flair/embeddings/glove.gensim"
        self.vocab = {w: i for i, w in enumerate(vocab)}
        self.embedding = nn.Embedding(len(vocab), dim)
        self.static_embeddings = True
        self.embedding_length = dim


class LanguageModel(nn.Module):
    """A character LSTM language model (flair's contextual string embeddings)."""

    def __init__(self, dictionary: Dictionary, hidden: int, is_forward_lm: bool) -> None:
        super().__init__()
        self.dictionary = dictionary
        self.is_forward_lm = is_forward_lm
        self.encoder = nn.Embedding(len(dictionary.idx2item), 16)
        self.rnn = nn.LSTM(16, hidden, 1)
        self.decoder = nn.Linear(hidden, len(dictionary.idx2item))


class FlairEmbeddings(nn.Module):
    """Contextual string embeddings wrapping a character language model."""

    def __init__(self, lm: LanguageModel) -> None:
        super().__init__()
        self.lm = lm
        self.name = "news-forward" if lm.is_forward_lm else "news-backward"
        self.chars_per_chunk = 512
        self.embedding_length = lm.rnn.hidden_size


class StackedEmbeddings(nn.Module):
    """A stack of embeddings concatenated per token."""

    def __init__(self, embeddings: list[nn.Module]) -> None:
        super().__init__()
        for i, emb in enumerate(embeddings):
            self.add_module(f"list_embedding_{i}", emb)
        self.embedding_length = sum(e.embedding_length for e in embeddings)


class SequenceTagger(nn.Module):
    """A flair-style BiLSTM-CRF sequence tagger."""

    def __init__(self, embeddings: StackedEmbeddings, tags: Dictionary, hidden: int) -> None:
        super().__init__()
        self.embeddings = embeddings
        self.tag_dictionary = tags
        self.tag_type = "ner"
        self.rnn = nn.LSTM(embeddings.embedding_length, hidden, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(2 * hidden, len(tags.idx2item))
        self.transitions = nn.Parameter(torch.randn(len(tags.idx2item), len(tags.idx2item)))


def make_flair(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A flair `final-model.pt`: dict with state_dict plus the pickled embeddings and tag dictionary."""
    seed_everything(int(rng.integers(2**31)))
    vocab = [f"w{int(v)}" for v in rng.integers(0, 10**5, size=int(rng.integers(20, 200)))]
    chars = Dictionary([chr(c) for c in range(97, 123)])
    embs: list[nn.Module] = [WordEmbeddings(vocab, int(rng.choice([8, 16, 32])))]
    if rng.random() < 0.6:
        embs.append(FlairEmbeddings(LanguageModel(chars, int(rng.choice([16, 32])), is_forward_lm=True)))
    entity = ["PER", "LOC", "ORG", "MISC"][: int(rng.integers(2, 5))]
    tags = Dictionary(["O"] + [f"{p}-{e}" for e in entity for p in "BIES"], add_unk=False)
    tagger = SequenceTagger(StackedEmbeddings(embs), tags, int(rng.choice([16, 32])))
    state = {
        "state_dict": tagger.state_dict(),
        "embeddings": tagger.embeddings,
        "hidden_size": tagger.rnn.hidden_size,
        "tag_dictionary": tags,
        "tag_format": "BIOES",
        "tag_type": "ner",
        "use_crf": True,
        "use_rnn": True,
        "rnn_layers": 1,
        "__cls__": "SequenceTagger",
    }
    name = str(rng.choice(["final-model.pt", "best-model.pt", "pytorch_model.bin"]))
    return [CarrierFile(name, "flair_tagger", save_torch(state, out_dir / name, "zip", rng), "torch")]


# ---------------------------------------------------------------- pyannote-style checkpoint
class Problem(enum.Enum):
    """Task problem types (pyannote.audio.core.task.Problem)."""

    BINARY_CLASSIFICATION = 0
    MONO_LABEL_CLASSIFICATION = 1
    MULTI_LABEL_CLASSIFICATION = 2
    REPRESENTATION = 3


class Resolution(enum.Enum):
    """Output resolution (pyannote.audio.core.task.Resolution)."""

    FRAME = 1
    CHUNK = 2


@dataclass
class Specifications:
    """What a pyannote task model predicts."""

    problem: Problem
    resolution: Resolution
    duration: float
    min_duration: float | None = None
    warm_up: tuple[float, float] | None = (0.0, 0.0)
    classes: list[str] | None = None
    powerset_max_classes: int | None = None
    permutation_invariant: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class SincNetLike(nn.Module):
    """A small waveform front-end followed by an LSTM and a classifier (PyanNet-like)."""

    def __init__(self, channels: int, hidden: int, classes: int) -> None:
        super().__init__()
        self.sincnet = nn.Sequential(nn.Conv1d(1, channels, 251, stride=10), nn.MaxPool1d(3), nn.InstanceNorm1d(channels))
        self.lstm = nn.LSTM(channels, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.linear = nn.ModuleList([nn.Linear(2 * hidden, hidden), nn.Linear(hidden, hidden)])
        self.classifier = nn.Linear(hidden, classes)


def make_pyannote(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A pyannote.audio `pytorch_model.bin`: a Lightning checkpoint carrying task Specifications objects."""
    seed_everything(int(rng.integers(2**31)))
    classes = [f"speaker#{i + 1}" for i in range(int(rng.integers(2, 5)))]
    model = SincNetLike(int(rng.choice([20, 40, 60])), int(rng.choice([16, 32, 64])), len(classes))
    specs = Specifications(
        problem=Problem(int(rng.integers(4))), resolution=Resolution(int(rng.integers(1, 3))),
        duration=float(rng.choice([2.0, 5.0, 10.0])), classes=classes, powerset_max_classes=int(rng.integers(1, 3)),
    )
    ckpt = {
        "epoch": int(rng.integers(1, 100)),
        "global_step": int(rng.integers(100, 10**5)),
        "pytorch-lightning_version": "1.9.4",
        "state_dict": model.state_dict(),
        "pyannote.audio": {
            "versions": {"torch": "1.13.1", "pyannote.audio": "2.1.1"},
            "architecture": {"module": "pyannote.audio.models.segmentation.PyanNet", "class": "PyanNet"},
            "specifications": specs,
        },
        "hyper_parameters": {"sincnet": {"stride": 10}, "lstm": {"hidden_size": model.lstm.hidden_size}, "num_channels": 1},
    }
    return [CarrierFile("pytorch_model.bin", "pyannote_checkpoint", save_torch(ckpt, out_dir / "pytorch_model.bin", "zip", rng), "torch")]


# ---------------------------------------------------------------- YOLO (ultralytics / yolov5) checkpoints
class Conv(nn.Module):
    """Conv2d + BatchNorm + SiLU (ultralytics.nn.modules.conv.Conv)."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU()


class C2f(nn.Module):
    """CSP bottleneck with two convolutions."""

    def __init__(self, c1: int, c2: int, n: int) -> None:
        super().__init__()
        self.cv1 = Conv(c1, c2, 1)
        self.cv2 = Conv(c2 * (n + 1) // 2 + c2 // 2, c2, 1)
        self.m = nn.ModuleList(Conv(c2 // 2, c2 // 2, 3) for _ in range(n))


class Detect(nn.Module):
    """Detection head."""

    def __init__(self, nc: int, ch: tuple[int, ...]) -> None:
        super().__init__()
        self.nc, self.nl, self.reg_max = nc, len(ch), 16
        self.stride = torch.tensor([8.0, 16.0, 32.0][: len(ch)])
        self.cv2 = nn.ModuleList(nn.Sequential(Conv(c, 16, 3), nn.Conv2d(16, 4 * self.reg_max, 1)) for c in ch)
        self.cv3 = nn.ModuleList(nn.Sequential(Conv(c, 16, 3), nn.Conv2d(16, nc, 1)) for c in ch)


class DetectionModel(nn.Module):
    """A YOLO detection model (ultralytics.nn.tasks.DetectionModel)."""

    def __init__(self, width: int, nc: int, names: dict[int, str]) -> None:
        super().__init__()
        w = width
        self.model = nn.Sequential(Conv(3, w, 3, 2), Conv(w, 2 * w, 3, 2), C2f(2 * w, 2 * w, 1), Conv(2 * w, 4 * w, 3, 2),
                                   C2f(4 * w, 4 * w, 2), Detect(nc, (2 * w, 4 * w)))
        self.yaml = {"nc": nc, "depth_multiple": 0.33, "width_multiple": 0.25, "backbone": [[-1, 1, "Conv", [64, 3, 2]]],
                     "head": [[[15, 18, 21], 1, "Detect", ["nc"]]], "yaml_file": "yolov8n.yaml", "ch": 3}
        self.names = names
        self.stride = torch.tensor([8.0, 16.0])
        self.save = [4, 6]


def make_yolo(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """An ultralytics `best.pt`: dict with the whole DetectionModel pickled (fp16) plus train args/metrics."""
    seed_everything(int(rng.integers(2**31)))
    nc = int(rng.integers(1, 10))
    names = {i: n for i, n in enumerate(["person", "car", "dog", "cat", "bus", "truck", "bike", "boat", "bird", "sign"][:nc])}
    model = DetectionModel(int(rng.choice([4, 8])), nc, names).half()
    epochs = int(rng.integers(10, 300))
    v5 = rng.random() < 0.3
    ckpt: dict[str, Any] = {
        "epoch": -1 if not v5 else epochs - 1,
        "best_fitness": float(rng.random()),
        "model": model,
        "ema": None,
        "updates": int(rng.integers(100, 10**5)),
        "optimizer": None,
    }
    train = {"task": "detect", "mode": "train", "model": "yolov8n.pt", "data": f"{FIXED_WORKDIR}/data.yaml",
             "epochs": epochs, "imgsz": int(rng.choice([320, 640])), "batch": int(rng.choice([8, 16, 32])),
             "lr0": 0.01, "project": None, "name": "train", "seed": 0, "deterministic": True}
    if v5:
        ckpt.update({"opt": train, "git": {"remote": "https://github.com/ultralytics/yolov5", "branch": "master",
                                           "commit": "".join(f"{int(v):x}" for v in rng.integers(0, 16, size=7))},
                     "date": "2023-05-01T10:00:00.000000"})
    else:
        ckpt.update({"train_args": train, "train_metrics": {"metrics/mAP50(B)": float(rng.random()),
                                                            "fitness": float(rng.random())},
                     "train_results": {"epoch": list(range(3))}, "date": "2024-03-01T12:00:00.000000",
                     "version": "8.1.0", "license": "AGPL-3.0 License (https://ultralytics.com/license)",
                     "docs": "https://docs.ultralytics.com"})
    name = str(rng.choice(["best.pt", "last.pt", "yolov8n-custom.pt"]))
    return [CarrierFile(name, "yolo_checkpoint", save_torch(ckpt, out_dir / name, "zip", rng), "torch")]


# ---------------------------------------------------------------- sentence-transformers / GLiNER whole objects
class Pooling(nn.Module):
    """Mean/CLS pooling (sentence_transformers.models.Pooling)."""

    def __init__(self, dim: int, mode: str) -> None:
        super().__init__()
        self.word_embedding_dimension = dim
        self.pooling_mode_mean_tokens = mode == "mean"
        self.pooling_mode_cls_token = mode == "cls"


class Normalize(nn.Module):
    """L2 normalisation layer."""


class SentenceEncoder(nn.Sequential):
    """A SentenceTransformer-like sequential encoder (transformer, pooling, optional dense/normalize)."""

    def __init__(self, modules: list[nn.Module], prompts: dict[str, str]) -> None:
        super().__init__(OrderedDict((str(i), m) for i, m in enumerate(modules)))
        self.prompts = prompts
        self.default_prompt_name = None
        self.similarity_fn_name = "cosine"
        self.model_card_data = {"language": ["en"], "license": "apache-2.0"}


def make_sentence_transformer(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """`torch.save(model)` of a sentence encoder wrapping a real (tiny) transformers BERT-like model."""
    import transformers

    seed_everything(int(rng.integers(2**31)))
    heads = int(rng.choice([2, 4]))
    dim = heads * 8
    config = transformers.BertConfig(hidden_size=dim, num_hidden_layers=int(rng.integers(1, 3)), num_attention_heads=heads,
                                     intermediate_size=dim * 2, vocab_size=int(rng.integers(64, 512)))
    modules: list[nn.Module] = [transformers.BertModel(config), Pooling(dim, str(rng.choice(["mean", "cls"])))]
    if rng.random() < 0.5:
        modules.append(nn.Linear(dim, dim // 2))
    modules.append(Normalize())
    encoder = SentenceEncoder(modules, {"query": "query: ", "document": "passage: "})
    return [CarrierFile("model.pt", "sentence_encoder", save_torch(encoder, out_dir / "model.pt", "zip", rng), "torch")]


@dataclass
class GLiNERConfig:
    """GLiNER model configuration."""

    model_name: str = "microsoft/deberta-v3-small"
    max_width: int = 12
    hidden_size: int = 32
    dropout: float = 0.4
    ent_token: str = "<<ENT>>"
    sep_token: str = "<<SEP>>"
    span_mode: str = "markerV0"
    max_len: int = 384


class SpanMarker(nn.Module):
    """Span representation layer."""

    def __init__(self, hidden: int, max_width: int) -> None:
        super().__init__()
        self.max_width = max_width
        self.project_start = nn.Sequential(nn.Linear(hidden, hidden * 2), nn.ReLU(), nn.Linear(hidden * 2, hidden))
        self.project_end = nn.Sequential(nn.Linear(hidden, hidden * 2), nn.ReLU(), nn.Linear(hidden * 2, hidden))
        self.out_project = nn.Linear(hidden * 2, hidden)


class GLiNER(nn.Module):
    """A GLiNER-like span-based NER model."""

    def __init__(self, config: GLiNERConfig, vocab: int) -> None:
        super().__init__()
        self.config = config
        self.token_rep_layer = nn.Embedding(vocab, config.hidden_size)
        self.rnn = nn.LSTM(config.hidden_size, config.hidden_size // 2, bidirectional=True, batch_first=True)
        self.span_rep_layer = SpanMarker(config.hidden_size, config.max_width)
        self.prompt_rep_layer = nn.Linear(config.hidden_size, config.hidden_size)


def make_gliner(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """`torch.save(model)` of a GLiNER-like model, config dataclass included."""
    seed_everything(int(rng.integers(2**31)))
    config = GLiNERConfig(hidden_size=int(rng.choice([16, 32, 48])), max_width=int(rng.integers(4, 13)),
                          dropout=float(rng.choice([0.1, 0.3, 0.4])))
    model = GLiNER(config, int(rng.integers(100, 1000)))
    name = str(rng.choice(["gliner_model.pt", "pytorch_model.bin"]))
    return [CarrierFile(name, "gliner_model", save_torch(model, out_dir / name, "zip", rng), "torch")]


# ---------------------------------------------------------------- other real libraries
def make_scipy_sparse(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A pickled scipy sparse matrix (feature matrices, adjacency matrices)."""
    import scipy.sparse as sp

    fmt = str(rng.choice(["csr", "csc", "coo", "lil"]))
    mat = sp.random(int(rng.integers(10, 300)), int(rng.integers(10, 300)), density=float(rng.uniform(0.01, 0.1)),
                    format=fmt, random_state=int(rng.integers(2**31)), dtype=np.float32)
    (out_dir / "matrix.pkl").write_bytes(pickle.dumps(mat, protocol=int(rng.integers(2, 6))))
    return [CarrierFile("matrix.pkl", "sparse_matrix", "pickle", "pickle")]


def make_text_vectorizer(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A fitted sklearn CountVectorizer/TfidfVectorizer/HashingVectorizer pipeline front-end."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    words = [f"tok{int(v)}" for v in rng.integers(0, 400, size=2000)]
    docs = [" ".join(words[i: i + int(rng.integers(3, 30))]) for i in range(0, 1500, 15)]
    vec = (TfidfVectorizer if rng.random() < 0.5 else CountVectorizer)(ngram_range=(1, int(rng.integers(1, 3))))
    vec.fit(docs)
    (out_dir / "vectorizer.pkl").write_bytes(pickle.dumps(vec, protocol=int(rng.integers(2, 6))))
    return [CarrierFile("vectorizer.pkl", "text_vectorizer", "pickle", "pickle")]


def make_tokenizer(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A pickled `tokenizers.Tokenizer` (WordLevel vocabulary, whitespace pre-tokenizer)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "[PAD]": 1}
    for v in rng.integers(0, 10**5, size=int(rng.integers(20, 300))):
        vocab.setdefault(f"t{int(v)}", len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    (out_dir / "tokenizer.pkl").write_bytes(pickle.dumps(tok, protocol=int(rng.integers(2, 6))))
    return [CarrierFile("tokenizer.pkl", "tokenizer", "pickle", "pickle")]


PRODUCERS = [
    Producer("flair", make_flair, weight=1.2),
    Producer("pyannote", make_pyannote, weight=1.0),
    Producer("ultralytics", make_yolo, weight=1.2),
    Producer("sentence_transformers", make_sentence_transformer, weight=1.0),
    Producer("gliner", make_gliner, weight=1.0),
    Producer("scipy.sparse", make_scipy_sparse, weight=0.6),
    Producer("sklearn.text_vectorizer", make_text_vectorizer, weight=0.6),
    Producer("tokenizers", make_tokenizer, weight=0.5),
]
