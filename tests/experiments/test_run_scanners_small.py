"""`experiments/run_scanners.py --small` writes scanners.csv with the exact columns, samples the slow scanners
and says so, reports unavailable scanners without a figure, and draws reproducible stratified samples."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from safepickle_bench.datasets import read_manifest
from safepickle_bench.pipeline.scanner_benchmark import METRIC_COLUMNS

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "experiments" / "run_scanners.py"
pytestmark = pytest.mark.slow


def load_script():
    """Import experiments/run_scanners.py as a module (experiments/ is not a package)."""
    spec = importlib.util.spec_from_file_location("run_scanners", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_scanners"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """Run the script's --small mode on two datasets and three scanners into a tmp folder and store."""
    out = tmp_path_factory.mktemp("scanners")
    cmd = [sys.executable, str(SCRIPT), "--small", "--out", str(out), "--datasets", "hide_and_seek,hf",
           "--scanners", "picklescan,weights_only,clamav",
           f"tracking.uri=sqlite:///{out / 'mlflow.db'}",
           f"tracking.artifact_location={(out / 'mlartifacts').as_uri()}"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_small_mode_writes_the_csv_with_the_exact_columns(small_run):
    table = pd.read_csv(small_run / "scanners.csv")
    assert list(table.columns[: len(METRIC_COLUMNS)]) == list(METRIC_COLUMNS)
    assert set(table.columns[len(METRIC_COLUMNS):]) <= {"n_files", "n_malicious", "n_benign", "precision_fail_open",
                                                        "recall_fail_open", "fpr_fail_open", "skip_rate", "tp", "fp",
                                                        "tn", "fn", "n_error", "available", "note"}
    keys = set(zip(table["dataset"], table["scanner"], table["mode"], strict=True))
    assert keys == {(d, s, m) for d in ("hide_and_seek", "hf")
                    for s, m in (("picklescan", "in-process"), ("weights_only", "subprocess"), ("clamav", "cli"))} | {
        ("hf", "picklescan", "cli")}
    available = table[table["available"]]
    for r in available.to_dict("records"):
        tp, fp, fn = r["tp"], r["fp"], r["fn"]
        assert math.isclose(r["f1_fail_closed"], 2 * tp / (2 * tp + fp + fn))
        assert 0 <= r["f1_fail_open"] <= 1 and 0 <= r["error_rate"] <= 1 and r["ms_median"] > 0
    hf = read_manifest("hf", "small", REPO / "data")
    full_pass = table[(table["dataset"] == "hf") & (table["scanner"] == "picklescan") & (table["mode"] == "in-process")]
    assert full_pass["n_files"].tolist() == [len(hf)]  # fast scanners see every file


def test_slow_scanners_are_sampled_and_unavailable_ones_carry_no_figure(small_run):
    table = pd.read_csv(small_run / "scanners.csv")
    wo = table[table["scanner"] == "weights_only"]
    assert (wo["n_files"] <= 2).all() and wo["note"].str.contains("torch checkpoints").all()
    clam = table[table["scanner"] == "clamav"]
    assert not clam["available"].any() and clam["note"].str.startswith("unavailable").all()
    assert clam[["f1_fail_closed", "f1_fail_open", "ms_median"]].isna().all().all()
    text = (small_run / "scanners.md").read_text()
    assert "| clamav | cli | 0 | unavailable | unavailable |" in text
    assert "Per-sample matrix, `hide_and_seek`" in text and "Per evasion technique" in text
    matrix = pd.read_csv(small_run / "scanners" / "hide_and_seek" / "matrix.csv")
    assert set(matrix["weights_only"]) <= {"detected", "missed", "error", "not run"}
    assert (matrix["weights_only"] != "not run").sum() == wo.loc[wo["dataset"] == "hide_and_seek", "n_files"].item()


def test_stratified_sample_keeps_label_shares_and_is_reproducible():
    module = load_script()
    manifest = read_manifest("hf", "small", REPO / "data")
    first = module.stratified_sample(manifest, 40, ["label", "container"])
    again = module.stratified_sample(manifest, 40, ["label", "container"])
    assert len(first) == 40 and first["path"].tolist() == again["path"].tolist()
    assert first["path"].is_unique and set(first["path"]) <= set(manifest["path"])
    assert abs(first["label"].mean() - manifest["label"].mean()) <= 1 / 40
    assert first["container"].nunique() >= 5
    assert len(module.stratified_sample(manifest, 10_000, ["label"])) == len(manifest)
