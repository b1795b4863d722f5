"""Benign carrier producers: torch file layouts of different torch versions, reproducible bytes per seed."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from safepickle_bench.datasets.carriers import hf_producers, joblib_producers, ood_producers
from safepickle_bench.datasets.carriers.torch_format import save_torch


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_torch_layouts_match_their_torch_versions_and_load(tmp_path):
    state = {"weight": torch.arange(6.0).reshape(2, 3), "bias": torch.ones(2, dtype=torch.float16)}
    rng = np.random.default_rng(0)
    assert save_torch(state, tmp_path / "pytorch_model.bin", "zip", rng) == "torch_zip"
    names = zipfile.ZipFile(tmp_path / "pytorch_model.bin").namelist()
    assert "pytorch_model/.format_version" in names and "pytorch_model/data.pkl" in names
    assert save_torch(state, tmp_path / "old.bin", "zip_archive", rng) == "torch_zip_archive"
    names = zipfile.ZipFile(tmp_path / "old.bin").namelist()
    assert names[0] == "archive/data.pkl" and names[-1] == "archive/version"
    assert not any(n.endswith((".format_version", ".storage_alignment", "byteorder")) for n in names)
    assert save_torch(state, tmp_path / "legacy.bin", "legacy", rng) == "torch_legacy"
    assert not zipfile.is_zipfile(tmp_path / "legacy.bin")
    for name in ("pytorch_model.bin", "old.bin", "legacy.bin"):  # our own freshly generated benign files
        loaded = torch.load(tmp_path / name, weights_only=True)
        assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_legacy_format_is_reproducible(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    for name in ("a.pt", "b.pt"):
        save_torch(model.state_dict(), tmp_path / name, "legacy", np.random.default_rng(7))
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


@pytest.mark.parametrize("registry", [hf_producers, ood_producers, joblib_producers])
def test_every_producer_writes_the_same_bytes_for_the_same_seed(registry, tmp_path):
    for producer in registry():
        digests = []
        for run in ("first", "second"):
            folder = tmp_path / producer.name / run
            folder.mkdir(parents=True)
            files = producer.make(np.random.default_rng([11, 5]), folder)
            assert files and all((folder / f.name).is_file() for f in files)
            digests.append(_digest(folder))
        assert digests[0] == digests[1], producer.name


def test_hf_has_at_least_twelve_producers_disjoint_from_ood():
    hf = {p.name for p in hf_producers()}
    assert len(hf) >= 12
    assert not hf & {p.name for p in ood_producers()}
