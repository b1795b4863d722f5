"""Corpus extraction: one row per path in order, cache hits skip parsing, parallel equals sequential."""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd
import pytest

from safepickle_bench.features import STATS, extract, feature_columns, feature_groups
from safepickle_bench.features import cache as cache_mod


def _boom(path, limits):
    raise AssertionError(f"analyzer called for {path}: the cache should have answered")


@pytest.fixture()
def corpus(tmp_path: Path) -> list[str]:
    """Small benign pickles of different shapes (our own objects, never loaded back)."""
    paths = []
    for i in range(8):
        p = tmp_path / f"f{i}.pkl"
        obj = {"weights": [float(j) for j in range(i * 5)], "name": f"layer{i}", "shape": (i, i + 1)}
        p.write_bytes(pickle.dumps(obj, protocol=i % 6))
        paths.append(str(p))
    return paths


def test_second_extraction_reads_only_the_cache(corpus, tmp_path):
    cache_dir = tmp_path / "cache"
    first = extract(corpus, n_jobs=1, cache_dir=cache_dir, progress=False)
    assert first.attrs["n_parsed"] == len(corpus) and first.attrs["n_cached"] == 0
    before = STATS.parsed
    second = extract(corpus, n_jobs=1, cache_dir=cache_dir, progress=False, analyzer=_boom)
    assert STATS.parsed == before
    assert second.attrs["n_parsed"] == 0 and second.attrs["n_cached"] == len(corpus)
    pd.testing.assert_frame_equal(first, second)
    # a group subset is served from the same cache and equals the matching columns of the full row
    sub = extract(corpus, groups=["imports", "opcodes"], cache_dir=cache_dir, progress=False, analyzer=_boom)
    pd.testing.assert_frame_equal(sub, first[feature_columns(["opcodes", "imports"])])


def test_cache_off_neither_reads_nor_writes(corpus, tmp_path):
    cache_dir = tmp_path / "cache"
    extract(corpus[:2], n_jobs=1, cache_dir=cache_dir, progress=False)
    shards = sorted(cache_dir.iterdir())
    df = extract(corpus, n_jobs=1, cache=False, cache_dir=cache_dir, progress=False)
    assert df.attrs["n_parsed"] == len(corpus) and df.attrs["n_cached"] == 0
    assert sorted(cache_dir.iterdir()) == shards


def test_parallel_equals_sequential(corpus):
    one = extract(corpus, n_jobs=1, cache=False, progress=False)
    two = extract(corpus, n_jobs=2, cache=False, progress=False)
    pd.testing.assert_frame_equal(one, two)


def test_every_path_gets_a_row_in_input_order(corpus, tmp_path):
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\xff\xfe not a pickle at all")
    missing = str(tmp_path / "missing.pkl")
    paths = [corpus[3], missing, str(garbage), corpus[0], corpus[3]]
    df = extract(paths, n_jobs=1, cache_dir=tmp_path / "cache", progress=False)
    assert list(df.index) == paths and df.index.name == "path"
    assert df.loc[missing, "structure__error"] == 1.0
    assert df.loc[missing, "opcodes__empty"] == 1.0
    assert df.iloc[0].equals(df.iloc[4])
    assert df.notna().all().all()


def test_columns_are_stable_and_match_feature_columns(corpus):
    a = extract(corpus[:3], n_jobs=1, cache=False, progress=False)
    b = extract(corpus[:3], n_jobs=1, cache=False, progress=False)
    assert list(a.columns) == list(b.columns) == feature_columns()
    assert a.attrs["feature_groups"] == feature_groups()
    assert sum(map(len, a.attrs["feature_groups"].values())) == a.shape[1]
    sub = extract(corpus[:3], groups="opcodes", n_jobs=1, cache=False, progress=False)
    assert list(sub.columns) == feature_columns("opcodes")
    assert (sub.drop(columns="opcodes__empty").sum(axis=1) - 1.0).abs().max() < 1e-9


def test_many_writers_merge_shards_without_losing_rows(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(cache_mod, "MAX_SHARDS", 2)
    cache_dir = tmp_path / "cache"
    for p in corpus:  # one writer per file, as separate runs or processes would do
        extract([p], n_jobs=1, cache_dir=cache_dir, progress=False)
    torn = next(cache_dir.glob("*.parquet")).name.rsplit("-", 1)[0] + "-torn.parquet"
    (cache_dir / torn).write_bytes(b"PAR1")  # a half-written file from a crashed writer
    assert len(list(cache_dir.glob("*.parquet"))) <= 4  # merged, plus the torn one
    df = extract(corpus, n_jobs=1, cache_dir=cache_dir, progress=False, analyzer=_boom)
    assert df.attrs["n_cached"] == len(corpus)
