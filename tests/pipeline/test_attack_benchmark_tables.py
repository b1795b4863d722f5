"""The robustness benchmark's bookkeeping: rule categories learned from benign training rows only, recall per
(method, features, attack, ratio) with the CSV's exact columns, and the written report and figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from safepickle_bench.pipeline.attack_benchmark import (
    CSV_COLUMNS,
    RobustnessConfig,
    recall_table,
    rule_candidates,
    rule_categories,
    rule_fires,
    write_results,
)


def test_rule_layer_skips_categories_that_benign_training_files_use() -> None:
    """A dangerous category present in any benign training row is left out of the rule; the rest fire."""
    cols = rule_candidates()
    benign = pd.DataFrame(np.zeros((3, len(cols))), columns=cols)
    benign.loc[1, cols[0]] = 1.0
    cats = rule_categories(benign)
    assert cols[0] not in cats and set(cats) == set(cols[1:])
    test = pd.DataFrame(np.zeros((2, len(cols))), columns=cols)
    test.loc[0, cols[0]] = 1.0
    test.loc[1, cols[1]] = 2.0
    assert rule_fires(test, cats).tolist() == [0, 1]


def _preds() -> pd.DataFrame:
    rows = []
    for method, features in (("rf", "opcodes"), ("rf", "all"), ("picklescan", "")):
        for attack, ratio in (("none", None), ("padding", 1), ("padding", 1000), ("memo_split", None)):
            for i in range(4):
                hit = int(not (features == "opcodes" and ratio == 1000 and i < 3))
                rows.append({"path": f"{attack}{ratio}{i}", "attack": attack, "ratio": ratio, "pred": hit,
                             "method": method, "features": features})
    return pd.DataFrame(rows)


def test_recall_table_has_one_row_per_method_attack_and_ratio() -> None:
    """Recall is the detected share per cell; ratio is blank for attacks without one."""
    table = recall_table(_preds())
    assert len(table) == 3 * 4
    row = table[(table.features == "opcodes") & (table.ratio == "1000")]
    assert row.recall.item() == 0.25 and row.n.item() == 4
    assert set(table[table.attack == "memo_split"].ratio) == {""}


def test_results_are_written_with_the_csv_columns_and_a_figure(tmp_path: Path) -> None:
    """robustness.csv has exactly the issue's columns; the Markdown report and PNG figure exist."""
    table = recall_table(_preds())
    clean = pd.DataFrame([{"method": "rf", "features": "all", "clean_f1": 0.9, "clean_f1_std": 0.01,
                           "clean_recall": 0.9, "clean_fpr": 0.0}])
    counts = pd.DataFrame([{"attack": "padding", "ratio": "1", "samples": 4, "generated": 4, "confirmed": 4}])
    cfg = RobustnessConfig(results_dir=tmp_path, attacks=("none", "padding", "memo_split"))
    written = write_results(cfg, table, clean, counts, {"picklescan": "4 files"}, 1.0)
    csv = pd.read_csv(tmp_path / "robustness.csv", keep_default_na=False)
    assert tuple(csv.columns) == CSV_COLUMNS
    assert (tmp_path / "figures" / "robustness_recall_vs_padding.png").stat().st_size > 1000
    md = (tmp_path / "robustness.md").read_text()
    assert "| rf | opcodes |" in md and "memo_split" in md
    assert all(p.exists() for p in written)
