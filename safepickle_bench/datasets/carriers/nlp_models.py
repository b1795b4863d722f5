"""Word-embedding and NLP models saved by the real libraries: gensim `.save()` (a pickle plus `.npy` side
files for large arrays) of Word2Vec, FastText, Doc2Vec, KeyedVectors, Dictionary, TfidfModel and LdaModel,
and pickled scikit-learn text vectorizers.

gensim records "lifecycle events" (date, platform, file name) inside the pickle; they are pinned to seeded
values while a model is built and saved so the bytes are reproducible.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from safepickle_bench.craft.payload_args import generate_benign_mentions
from safepickle_bench.datasets.carriers import FIXED_WORKDIR, CarrierFile, Producer, seed_everything

_TOPICS = (
    ("model", "layer", "token", "embedding", "vector", "train", "loss", "batch", "epoch", "weight"),
    ("river", "forest", "mountain", "valley", "lake", "trail", "snow", "pine", "meadow", "stone"),
    ("market", "price", "stock", "trade", "bank", "rate", "fund", "bond", "asset", "yield"),
    ("goal", "match", "team", "coach", "league", "score", "season", "player", "pitch", "cup"),
)
_PLATFORMS = ("Linux-5.15.0-91-generic-x86_64-with-glibc2.35", "Linux-6.1.58+-x86_64-with-glibc2.31",
              "macOS-14.2.1-arm64-arm-64bit", "Windows-10-10.0.19045-SP0")


def _corpus(rng: np.random.Generator) -> list[list[str]]:
    """Return tokenised sentences drawn from a few topics, plus code-mentioning text."""
    sentences = []
    for _ in range(int(rng.integers(30, 80))):
        topic = _TOPICS[int(rng.integers(len(_TOPICS)))]
        sentences.append([topic[int(i)] for i in rng.integers(0, len(topic), int(rng.integers(4, 12)))])
    for mention in generate_benign_mentions(int(rng.integers(2**62)), int(rng.integers(5, 15))):
        words = mention.text.lower().split()
        if words:
            sentences.append(words)
    return sentences


@contextlib.contextmanager
def _pinned_lifecycle(rng: np.random.Generator) -> Iterator[None]:
    """Make gensim's lifecycle events carry a seeded date, platform and file path; one BLAS thread."""
    import gensim.utils as gutils

    start = dt.datetime(2019, 1, 1) + dt.timedelta(seconds=int(rng.integers(0, 5 * 365 * 86400)))
    platform_name = _PLATFORMS[int(rng.integers(len(_PLATFORMS)))]
    ticks = iter(range(10**6))

    class _Clock(dt.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> dt.datetime:  # noqa: ANN401 - datetime's own signature
            return start + dt.timedelta(seconds=37 * next(ticks))

    class _Platform:
        @staticmethod
        def platform() -> str:
            return platform_name

    original_add = gutils.SaveLoad.add_lifecycle_event

    def add(self: Any, event_name: str, log_level: int = 0, **event: Any) -> None:  # noqa: ANN401
        if "fname_or_handle" in event:
            event["fname_or_handle"] = f"{FIXED_WORKDIR}/{Path(str(event['fname_or_handle'])).name}"
        original_add(self, event_name, log_level=0, **event)

    saved = gutils.datetime, gutils.platform
    gutils.datetime, gutils.platform = _Clock, _Platform
    gutils.SaveLoad.add_lifecycle_event = add
    try:
        with threadpool_limits(limits=1):  # multi-threaded BLAS sums vary in the last bits between runs
            yield
    finally:
        gutils.datetime, gutils.platform = saved
        gutils.SaveLoad.add_lifecycle_event = original_add


_TIMING = re.compile(r"took [0-9.]+s, [0-9.]+ effective words/s")
_ELAPSED = re.compile(r"\b(in|took) [0-9]+\.[0-9]+s\b")


def _pin_timings(model: Any, rng: np.random.Generator) -> None:
    """Replace measured training times (an attribute and lifecycle messages) by seeded ones."""
    seconds = float(round(rng.uniform(0.05, 5.0), 6))
    if hasattr(model, "total_train_time"):
        model.total_train_time = seconds
    for event in getattr(model, "lifecycle_events", None) or []:
        if isinstance(event.get("msg"), str):
            msg = _TIMING.sub(f"took {seconds:.1f}s, {int(rng.integers(10**4, 10**6))} effective words/s",
                              event["msg"])
            event["msg"] = _ELAPSED.sub(lambda m: f"{m.group(1)} {seconds:.2f}s", msg)


def _save(model: Any, rng: np.random.Generator, out_dir: Path, name: str) -> None:
    """`model.save()`, storing arrays as `.npy` side files (a low `sep_limit`) about half the time."""
    _pin_timings(model, rng)
    sep_limit = 0 if rng.random() < 0.5 else 10 * 1024**2
    model.save(str(out_dir / name), sep_limit=sep_limit, pickle_protocol=int(rng.integers(2, 6)))


def _train_kwargs(rng: np.random.Generator) -> dict[str, Any]:
    """Return small, single-threaded (hence reproducible) training settings."""
    return {"vector_size": int(rng.choice([8, 16, 32])), "window": int(rng.integers(2, 6)), "min_count": 1,
            "workers": 1, "epochs": int(rng.integers(1, 4)), "seed": int(rng.integers(2**31))}


def make_word_vectors(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A gensim Word2Vec, FastText or Doc2Vec model `.save()`d, or its KeyedVectors alone."""
    from gensim.models import Doc2Vec, FastText, Word2Vec
    from gensim.models.doc2vec import TaggedDocument

    seed_everything(int(rng.integers(2**31)))
    sentences = _corpus(rng)
    kind = ("word2vec", "fasttext", "doc2vec", "keyedvectors")[int(rng.integers(4))]
    with _pinned_lifecycle(rng):
        if kind == "fasttext":
            model: Any = FastText(sentences, bucket=int(rng.choice([64, 256, 1024])), **_train_kwargs(rng))
        elif kind == "doc2vec":
            docs = [TaggedDocument(words, [i]) for i, words in enumerate(sentences)]
            model = Doc2Vec(docs, **_train_kwargs(rng))
        else:
            model = Word2Vec(sentences, sg=int(rng.integers(2)), **_train_kwargs(rng))
        if kind == "keyedvectors":
            model, name = model.wv, ("vectors.kv", "word2vec.wordvectors", "embeddings.kv")[int(rng.integers(3))]
        else:
            name = {"word2vec": "word2vec.model", "fasttext": "fasttext.model", "doc2vec": "doc2vec.model"}[kind]
        _save(model, rng, out_dir, name)
    return [CarrierFile(name, f"gensim_{kind}", "pickle", "pickle")]


def make_topic_model(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A gensim Dictionary, TfidfModel or LdaModel `.save()`d (the LDA writes its state and id2word too)."""
    from gensim.corpora import Dictionary
    from gensim.models import LdaModel, TfidfModel

    seed_everything(int(rng.integers(2**31)))
    sentences = _corpus(rng)
    kind = ("dictionary", "tfidf", "lda")[int(rng.integers(3))]
    with _pinned_lifecycle(rng):
        dictionary = Dictionary(sentences)
        bow = [dictionary.doc2bow(s) for s in sentences]
        if kind == "dictionary":
            model: Any = dictionary
            name = ("dictionary.gensim", "vocab.dict", "id2word.dict")[int(rng.integers(3))]
        elif kind == "tfidf":
            model, name = TfidfModel(bow, id2word=dictionary), "tfidf.model"
        else:
            model = LdaModel(bow, id2word=dictionary, num_topics=int(rng.integers(2, 6)), passes=1,
                             iterations=int(rng.integers(5, 30)), random_state=int(rng.integers(2**31)))
            name = "lda.model"
        _save(model, rng, out_dir, name)
    files = [CarrierFile(name, f"gensim_{kind}", "pickle", "pickle")]
    for part in ("state", "id2word"):  # LdaModel.save pickles its state and dictionary into files of their own
        if (out_dir / f"{name}.{part}").is_file():
            files.append(CarrierFile(f"{name}.{part}", f"gensim_{kind}_{part}", "pickle", "pickle"))
    return files


def make_sklearn_vectorizer(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A fitted scikit-learn CountVectorizer or TfidfVectorizer pickled with its vocabulary."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    docs = [" ".join(s) for s in _corpus(rng)]
    ngram = (1, int(rng.integers(1, 3)))
    cls = CountVectorizer if rng.random() < 0.5 else TfidfVectorizer
    vectorizer = cls(ngram_range=ngram, lowercase=bool(rng.random() < 0.8), min_df=1,
                     max_features=None if rng.random() < 0.5 else int(rng.integers(20, 300)))
    vectorizer.fit(docs)
    name = ("vectorizer.pkl", "tfidf.pkl", "count_vectorizer.pickle")[int(rng.integers(3))]
    (out_dir / name).write_bytes(pickle.dumps(vectorizer, protocol=int(rng.integers(2, 6))))
    return [CarrierFile(name, f"sklearn_{cls.__name__}", "pickle", "pickle")]


PRODUCERS = [
    Producer("nlp.gensim_vectors", make_word_vectors, weight=1.0),
    Producer("nlp.gensim_topics", make_topic_model, weight=0.7),
    Producer("nlp.sklearn_vectorizer", make_sklearn_vectorizer, weight=0.5),
]
