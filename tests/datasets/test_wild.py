"""The wild dataset lists the shared corpus in place with the corpus manifest's labels."""

from __future__ import annotations

from pathlib import Path

from safepickle_bench.datasets import ensure_dataset, read_manifest
from safepickle_bench.datasets.manifest import COLUMNS


def test_wild_manifest_lists_corpus_in_place(wild_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("SAFEPICKLE_WILD_DIR", str(wild_corpus))
    manifest = ensure_dataset("wild", "full", tmp_path)
    frame = read_manifest("wild", "full", tmp_path)
    assert list(frame.columns) == [*COLUMNS, "abspath"]
    assert len(frame) == 167 and int(frame["label"].sum()) == 119
    assert all(Path(p).is_file() and Path(p).is_relative_to(wild_corpus) for p in frame["abspath"])
    assert sorted(p.name for p in manifest.parent.iterdir()) == ["manifest.parquet"]  # nothing copied
    assert set(frame["producer"]) == {"mmaitre314/picklescan", "promptfoo/modelaudit", "protectai/modelscan"}
    assert (frame["oracle_event"] == "").all()  # third-party files are never loaded
