"""The shipped detector on the wild corpus (never trained on, read in place): F1 >= 0.99 at its stored
threshold, and every flagged file names the callable behind the verdict."""

from __future__ import annotations

import csv

from safepickle_bench.cli.engine import ScanItem, scan_items
from safepickle_bench.metrics import label_metrics


def test_default_detector_scores_the_wild_corpus_and_names_every_flagged_callable(wild_corpus):
    with (wild_corpus / "MANIFEST.csv").open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] in ("malicious", "benign")]
    verdicts = list(scan_items([ScanItem(r["file"], wild_corpus / r["file"]) for r in rows]))
    assert [v.display for v in verdicts] == [r["file"] for r in rows]
    assert not [v.display for v in verdicts if v.verdict == "error"]
    y = [int(r["label"] == "malicious") for r in rows]
    pred = [int(v.verdict == "malicious") for v in verdicts]
    assert label_metrics(y, pred)["f1"] >= 0.99
    flagged = [v for v in verdicts if v.verdict == "malicious"]
    unnamed = [v.display for v in flagged if not any(r.get("global") for r in v.reasons)]
    assert flagged and unnamed == []
