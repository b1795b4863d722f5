"""Hugging Face Trainer checkpoints: training_args.bin, optimizer.pt, scheduler.pt, rng_state.pth, weights."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from safepickle_bench.datasets.carriers import FIXED_WORKDIR, CarrierFile, Producer, seed_everything
from safepickle_bench.datasets.carriers.torch_format import save_torch
from safepickle_bench.datasets.carriers.torch_models import _state_dict, build_hf_model


def training_arguments(rng: np.random.Generator, step: int) -> object:
    """A TrainingArguments object with random hyper-parameters and fixed (machine-independent) paths."""
    from transformers import TrainingArguments

    run = f"{FIXED_WORKDIR}/{rng.choice(['results', 'outputs', 'finetuned', 'runs/exp'])}-{int(rng.integers(100))}"
    return TrainingArguments(
        output_dir=run,
        logging_dir=f"{run}/logs",
        report_to=[],
        learning_rate=float(rng.choice([1e-5, 2e-5, 3e-5, 5e-5, 1e-4])),
        num_train_epochs=float(rng.integers(1, 10)),
        per_device_train_batch_size=int(rng.choice([4, 8, 16, 32])),
        per_device_eval_batch_size=int(rng.choice([8, 16, 64])),
        weight_decay=float(rng.choice([0.0, 0.01, 0.1])),
        warmup_steps=int(rng.integers(0, 500)),
        lr_scheduler_type=str(rng.choice(["linear", "cosine", "constant_with_warmup"])),
        eval_strategy=str(rng.choice(["no", "steps", "epoch"])),
        save_steps=step,
        logging_steps=int(rng.choice([10, 50, 100, 500])),
        seed=int(rng.integers(100)),
        gradient_accumulation_steps=int(rng.choice([1, 2, 4])),
        use_cpu=True,
    )


def make_trainer_checkpoint(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A `checkpoint-N/` folder as the Trainer of transformers<5 wrote it (pickled files only)."""
    from transformers import get_scheduler

    seed = int(rng.integers(2**31))
    seed_everything(seed)
    _, model = build_hf_model(rng)
    steps = int(rng.integers(1, 3))
    args = training_arguments(rng, step=steps * int(rng.choice([100, 500, 1000])))
    opt = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    sched = get_scheduler(args.lr_scheduler_type, opt, num_warmup_steps=args.warmup_steps, num_training_steps=1000)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        loss = sum(p.float().pow(2).mean() for p in model.parameters() if p.requires_grad)
        loss.backward()
        opt.step()
        sched.step()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    rng_state = {"python": random.getstate(), "numpy": np.random.get_state(), "cpu": torch.random.get_rng_state()}
    fmt = str(rng.choice(["zip", "zip_archive"], p=[0.6, 0.4]))
    files = [
        ("training_args.bin", "training_args", args),
        ("optimizer.pt", "optimizer_state", opt.state_dict()),
        ("scheduler.pt", "scheduler_state", sched.state_dict()),
        ("rng_state.pth", "rng_state", rng_state),
    ]
    if rng.random() < 0.5:
        files.append(("pytorch_model.bin", "state_dict", _state_dict(model, "fp32")))
    return [CarrierFile(name, kind, save_torch(obj, out_dir / name, fmt, rng), "torch") for name, kind, obj in files]


PRODUCERS = [Producer("transformers.trainer_checkpoint", make_trainer_checkpoint, weight=1.2, files_per_call=4.5)]
