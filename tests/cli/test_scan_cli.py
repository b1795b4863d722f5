"""`python -m safepickle_bench scan`: verdicts, scores, reasons and exit codes of an exported detector."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from safepickle_bench.cli.scan import main as scan_main
from safepickle_bench.models.detector import export_detector, load_detector
from safepickle_bench.models.supervised import RandomForestDetector

pytestmark = pytest.mark.slow  # trains a small forest on the hf set

REPO = Path(__file__).resolve().parents[2]
GROUPS = ["opcodes", "structure", "imports", "strings", "ngrams"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A RandomForest trained on the small hf set, exported; plus one benign and one malicious file."""
    from safepickle_bench.datasets import ensure_dataset, read_manifest
    from safepickle_bench.features import FEATURE_VERSION, extract

    data_dir = REPO / "data"
    ensure_dataset("hf", "small", data_dir)
    manifest = read_manifest("hf", "small", data_dir)
    X = extract(manifest["abspath"].tolist(), groups=GROUPS, n_jobs=1, cache_dir=data_dir / "feature_cache")
    det = RandomForestDetector(n_estimators=30).fit(X.to_numpy(), manifest["label"].to_numpy())
    out = tmp_path_factory.mktemp("models") / "rf_small"
    export_detector(det, out, feature_groups=GROUPS, feature_columns=list(X.columns),
                    feature_version=str(FEATURE_VERSION), training={"dataset": "hf", "size": "small"})
    scores = det.predict_proba(X.to_numpy())[:, 1]
    labels = manifest["label"].to_numpy()
    benign = manifest["abspath"].iloc[int(np.argmin(np.where(labels == 0, scores, 2)))]
    malicious = manifest["abspath"].iloc[int(np.argmax(np.where(labels == 1, scores, -1)))]
    return out, benign, malicious


def test_scan_json_lines_give_verdict_score_and_reasons_with_offsets(exported, capsys, no_dangerous_events):
    model, benign, malicious = exported
    code = scan_main(["--model", str(model), "--json", benign, malicious])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert [d["path"] for d in lines] == [benign, malicious]
    assert [d["verdict"] for d in lines] == ["clean", "malicious"]
    assert lines[0]["score"] < lines[0]["threshold"] <= lines[1]["score"]
    analyzer = [r for r in lines[1]["reasons"] if r["kind"] in ("import", "call")]
    assert analyzer and all(isinstance(r["offset"], int) and r["location"] for r in analyzer)
    features = lines[1]["top_features"]
    assert features and all(r["contribution"] > 0 and "Saabas" in r["method"] for r in features)
    assert lines[0]["top_features"] == []  # only flagged files are explained


def test_scan_exit_codes_all_benign_zero_unreadable_two(exported, capsys, tmp_path):
    model, benign, _ = exported
    assert scan_main(["--model", str(model), benign]) == 0
    assert ": clean score=" in capsys.readouterr().out
    assert scan_main(["--model", str(model), "--json", benign, str(tmp_path / "missing.bin")]) == 2
    verdicts = [json.loads(line)["verdict"] for line in capsys.readouterr().out.splitlines()]
    assert verdicts == ["clean", "error"]


def test_scan_refuses_a_model_folder_without_detector_json(tmp_path, capsys):
    assert scan_main(["--model", str(tmp_path), "x.pkl"]) == 2
    assert "detector.json" in capsys.readouterr().err


def test_tampered_skops_model_with_untrusted_type_is_refused(exported, tmp_path):
    import skops.io as sio

    model, _, _ = exported
    bad = tmp_path / "bad"
    shutil.copytree(model, bad)
    sio.dump({"model_": np.add.reduce}, bad / "model.skops")
    with pytest.raises(ValueError, match="allow-list"):
        load_detector(bad)


def test_analyze_with_model_shows_analyzer_reasons_verdict_and_top_features(exported, capsys, no_dangerous_events):
    from safepickle_bench.cli.analyze import main as analyze_main

    model, benign, malicious = exported
    assert analyze_main(["--model", str(model), malicious]) == 0
    text = capsys.readouterr().out
    assert "reasons:" in text and "model verdict: malicious" in text and "feature " in text
    assert analyze_main(["--json", "--model", str(model), benign, malicious]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["verdict"] for r in records] == ["benign", "malicious"]
    dangerous = [r for r in records[1]["reasons"] if r["kind"] in ("import", "call")]
    assert dangerous and all(r["location"] and isinstance(r["offset"], int) for r in dangerous)
    assert records[1]["top_features"] and records[0]["reasons"] == []
