"""The scan engine: verdicts in input order whatever the backend, chunking or batching; errors as verdicts;
archive-member bytes scored like the file; explanations only where asked; stuck or crashing items isolated."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import pytest

from safepickle_bench.cli import engine
from safepickle_bench.cli.engine import ItemResult, ScanItem, Verdict, analyse_items, scan_items

SYSTEM_CALL = b"\x80\x02cposix\nsystem\nX\x04\x00\x00\x00echoq\x00\x85R."
"""Inert payload bytes (never loaded here): os.system('echo') through the posix alias."""


@pytest.fixture(scope="module")
def sample_items(tmp_path_factory) -> list[ScanItem]:
    """A mix of benign pickles, payload pickles, a text file, bytes items and unreadable items."""
    root = tmp_path_factory.mktemp("engine")
    items = []
    for i in range(12):
        benign = root / f"benign_{i}.pkl"
        benign.write_bytes(pickle.dumps({"weights": list(range(i + 3)), "name": f"layer{i}"}, protocol=i % 6))
        items.append(ScanItem(str(benign), benign))
        if i % 3 == 0:
            bad = root / f"payload_{i}.pkl"
            bad.write_bytes(SYSTEM_CALL)
            items.append(ScanItem(str(bad), bad))
    text = root / "notes.txt"
    text.write_text("just text\n")
    items += [
        ScanItem(str(text), text),
        ScanItem("archive.zip!inner/data.pkl", data=SYSTEM_CALL),
        ScanItem("archive.zip!inner/config.pkl", data=pickle.dumps({"lr": 0.1})),
        ScanItem(str(root / "missing.pkl"), root / "missing.pkl"),
        ScanItem(str(root), root),
        ScanItem("empty item"),
    ]
    return items


def as_dicts(verdicts: list[Verdict]) -> list[dict]:
    return [v.to_dict() for v in verdicts]


def test_verdicts_follow_input_order_with_errors_in_place(sample_items):
    verdicts = list(scan_items(sample_items, jobs=1))
    assert [v.display for v in verdicts] == [i.display for i in sample_items]
    by_name = {v.display: v for v in verdicts}
    for v in verdicts:
        name = Path(v.display).name
        if name.startswith("payload_") or v.display == "archive.zip!inner/data.pkl":
            assert v.verdict == "malicious" and v.score >= v.threshold
            assert any(r["kind"] in ("import", "call") and r["global"] == "posix.system" for r in v.reasons)
        elif name.startswith("benign_") or v.display.endswith("config.pkl"):
            assert v.verdict == "clean" and v.score < v.threshold and v.reasons == []
    for bad in (str(Path(sample_items[0].path).parent / "missing.pkl"), str(Path(sample_items[0].path).parent),
                "empty item"):
        assert by_name[bad].verdict == "error" and by_name[bad].score is None and by_name[bad].error


def test_pool_chunks_and_small_batches_give_the_same_verdicts(sample_items, monkeypatch):
    reference = as_dicts(list(scan_items(sample_items, jobs=1)))
    assert as_dicts(list(scan_items(sample_items, jobs=1, batch_size=3))) == reference
    monkeypatch.setattr(engine, "POOL_MIN_ITEMS", 4)
    monkeypatch.setattr(engine, "CHUNK_SIZE", 3)
    assert as_dicts(list(scan_items(sample_items, jobs=2, batch_size=5))) == reference


def test_bytes_item_scores_like_the_same_file(sample_items):
    payload = next(i for i in sample_items if Path(i.display).name.startswith("payload_"))
    from_file, from_bytes = scan_items([payload, ScanItem("a.zip!p.pkl", data=payload.path.read_bytes())], jobs=1)
    assert from_file.score == from_bytes.score and from_file.verdict == from_bytes.verdict
    assert [r["location"] for r in from_bytes.reasons] == ["a.zip!p.pkl#0"] * len(from_bytes.reasons)


def test_explanations_only_where_asked(sample_items):
    flagged = list(scan_items(sample_items, jobs=1))
    assert all(v.top_features for v in flagged if v.verdict == "malicious")
    assert not any(v.top_features for v in flagged if v.verdict != "malicious")
    assert not any(v.top_features for v in scan_items(sample_items, jobs=1, explain="none"))
    explained_all = list(scan_items(sample_items, jobs=1, explain="all"))
    assert [v.score for v in explained_all] == [v.score for v in flagged]
    clean = [v for v in explained_all if v.verdict == "clean"]
    assert clean and all(isinstance(v.top_features, list) for v in clean)
    assert any(v.top_features for v in clean)


def test_bad_arguments_and_missing_model_are_refused(tmp_path):
    with pytest.raises(ValueError, match="explain"):
        scan_items([], explain="some")
    with pytest.raises(ValueError, match="backend"):
        scan_items([], backend="spark")
    with pytest.raises(ValueError, match="address"):
        scan_items([], backend="dask")
    with pytest.raises(FileNotFoundError, match="detector.json"):
        scan_items([], model_dir=tmp_path)


def _sleepy_task(items):
    """Hang on items named 'hang', kill the worker on 'crash', else return an empty result per item."""
    out = []
    for item in items:
        if item.display == "hang":
            time.sleep(60)
        if item.display == "crash":
            os._exit(3)
        out.append(ItemResult(None, [], f"done {item.display}"))
    return out


def test_pool_isolates_a_stuck_item_and_a_crashing_worker():
    names = ["a", "b", "hang", "c", "d", "crash", "e", "f"]
    chunks = iter([[ScanItem(n) for n in names[i:i + 3]] for i in range(0, len(names), 3)])
    t0 = time.perf_counter()
    got = list(engine._ProcessPool(2, item_timeout=2.0).run(chunks, _sleepy_task))
    assert time.perf_counter() - t0 < 45
    flat = [(item.display, result.error) for chunk, results in got for item, result in zip(chunk, results, strict=True)]
    assert [n for n, _ in flat] == names
    errors = dict(flat)
    assert "timed out" in errors["hang"] and "worker failed" in errors["crash"]
    assert all(errors[n] == f"done {n}" for n in names if n not in ("hang", "crash"))


def test_worker_task_reports_every_item(sample_items):
    from safepickle_bench.models.detector import load_detector

    d = load_detector()
    results = analyse_items(sample_items, d.feature_groups, d.meta.get("limits"))
    assert len(results) == len(sample_items)
    assert all((r.row is None) == bool(r.error) for r in results)


@pytest.mark.parametrize("processes", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_dask_backend_gives_the_local_verdicts(sample_items, processes):
    from distributed import LocalCluster

    local = as_dicts(list(scan_items(sample_items, jobs=1)))
    with LocalCluster(n_workers=1 if processes else 2, threads_per_worker=1, processes=processes,
                      dashboard_address=None) as cluster:
        remote = as_dicts(list(scan_items(sample_items, backend="dask", address=cluster.scheduler_address)))
    assert remote == local
