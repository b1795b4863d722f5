"""The PickleBall artifact loader lists benign per-library models and the extracted malicious archive."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from safepickle_bench.craft.payloads import build_payload
from safepickle_bench.datasets import read_manifest


def _fixture_artifact(root: Path) -> None:
    """A tiny artifact in the PickleBall layout: <library>/<model>/files + malicious.tar.gz."""
    for library, model in [
        ("flair", "ner-english"),
        ("yolov5", "yolov5s"),
        ("sentence-transformers", "mini"),
    ]:
        folder = root / library / model
        folder.mkdir(parents=True)
        torch.save({"w": torch.zeros(2)}, folder / "pytorch_model.bin")
        (folder / "config.json").write_text("{}")  # not a pickle: ignored
    np.save(
        root / "flair" / "ner-english" / "vocab.npy", np.array(["a", "b"], dtype=object), allow_pickle=True
    )
    payload = build_payload("os_system", "/tmp/safepickle-out/markers").stream(2)
    with tarfile.open(root / "malicious.tar.gz", "w:gz") as tar:
        for member in ("malicious/flair/evil-1/pytorch_model.bin", "malicious/yolov5/evil-2/best.pt"):
            info = tarfile.TarInfo(member)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


def test_pickleball_layout_is_listed_with_labels(tmp_path):
    root = tmp_path / "pickleball"
    _fixture_artifact(root)
    from safepickle_bench.datasets.build import build_dataset as build

    build("pickleball", "full", tmp_path / "data", root=root)
    frame = read_manifest("pickleball", "full", tmp_path / "data")
    assert len(frame) == 6
    assert frame.groupby("label").size().to_dict() == {0: 4, 1: 2}
    assert set(frame.loc[frame.label == 0, "producer"]) == {"flair", "yolov5", "sentence-transformers"}
    assert set(frame.loc[frame.label == 1, "producer"]) == {"flair", "yolov5"}
    assert all(Path(p).is_file() for p in frame["abspath"])
    assert not frame["path"].str.endswith(".json").any()


def test_pickleball_archive_with_path_traversal_is_refused(tmp_path):
    root = tmp_path / "pickleball"
    (root / "flair").mkdir(parents=True)
    with tarfile.open(root / "malicious.tar.gz", "w:gz") as tar:
        data = pickle.dumps(1)
        info = tarfile.TarInfo("../../escape.pkl")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    from safepickle_bench.datasets.build import build_dataset as build

    with pytest.raises(tarfile.TarError):
        build("pickleball", "full", tmp_path / "data", root=root)
    assert not (tmp_path / "escape.pkl").exists()
