"""Sandbox loaders for baselines that must load a file to judge it (the torch weights-only unpickler)."""

from __future__ import annotations

from typing import Any

from safepickle_bench.sandbox.spec import LoaderSpec


def _torch_weights_only(path: str) -> Any:
    """Load a file with `torch.load(weights_only=True)` on CPU."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


SANDBOX_LOADERS: dict[str, LoaderSpec] = {
    "torch_weights_only": LoaderSpec(load=_torch_weights_only, preimport=("torch",)),
}
