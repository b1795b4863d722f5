"""Benign carrier producers: real libraries writing the kinds of files people share, one module per family."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# A fixed, fake "working directory" embedded by producers that record paths (TrainingArguments, code
# objects of dill/cloudpickle, torch legacy module sources) so the bytes do not depend on where we build.
FIXED_WORKDIR = "/tmp/safepickle-out"


@dataclass(frozen=True)
class CarrierFile:
    """One file a producer wrote: its name inside the carrier's folder and how it is read."""

    name: str
    kind: str
    container: str
    loader: str


@dataclass(frozen=True)
class Producer:
    """A named generator of benign files; `make(rng, out_dir)` writes them and describes each."""

    name: str
    make: Callable[[np.random.Generator, Path], list[CarrierFile]]
    weight: float = 1.0
    files_per_call: float = 1.0


def seed_everything(seed: int) -> None:
    """Seed python, numpy and (when imported) torch so a producer call is reproducible."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency of the producers
        return
    torch.manual_seed(seed)


def hf_producers() -> list[Producer]:
    """Every producer of the `hf` dataset (imports the producing libraries)."""
    from safepickle_bench.datasets.carriers import (
        boosting,
        function_pickles,
        hf_training,
        pandas_numpy,
        sklearn_models,
        torch_models,
    )

    return [
        *torch_models.PRODUCERS,
        *hf_training.PRODUCERS,
        *sklearn_models.PRODUCERS,
        *boosting.PRODUCERS,
        *pandas_numpy.PRODUCERS,
        *function_pickles.PRODUCERS,
    ]


def ood_producers() -> list[Producer]:
    """Every producer of the `pickleball_ood` dataset (libraries that never appear in `hf`)."""
    from safepickle_bench.datasets.carriers import ood_libraries

    return list(ood_libraries.PRODUCERS)


def joblib_producers() -> list[Producer]:
    """Every producer of the `joblib` dataset (joblib.dump at every compression method)."""
    from safepickle_bench.datasets.carriers import joblib_dumps

    return list(joblib_dumps.PRODUCERS)


GENERALIZATION_NEW_SHARE = 0.5
"""Share of the `generalization` dataset's benign producer weight held by the producers `hf` lacks."""


def generalization_producers() -> list[Producer]:
    """Every producer of the `generalization` dataset: the `hf` producers (a share of the files) plus stdlib
    objects, user classes under generated names, code mentions, NLP models and TorchScript archives."""
    from dataclasses import replace

    from safepickle_bench.datasets.carriers import (
        code_mentions,
        nlp_models,
        stdlib_objects,
        torchscript,
        user_classes,
    )

    new = [*stdlib_objects.PRODUCERS, *user_classes.PRODUCERS, *code_mentions.PRODUCERS, *nlp_models.PRODUCERS,
           *torchscript.PRODUCERS]
    # user classes twice as often: the unseen-names protocol needs benign files of every namespace
    new = [replace(p, weight=p.weight * 2) if p.name.startswith("user_classes.") else p for p in new]
    old = hf_producers()
    new_weight, old_weight = sum(p.weight for p in new), sum(p.weight for p in old)
    scale = new_weight * (1 - GENERALIZATION_NEW_SHARE) / (old_weight * GENERALIZATION_NEW_SHARE)
    return [*(replace(p, weight=p.weight * scale) for p in old), *new]
