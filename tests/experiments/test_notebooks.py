"""The notebooks run top to bottom (nbclient): the dataset and results notebooks on the small datasets against a
throwaway MLflow store that a quick small training run and a small scanner run fill, the never-seen-gadget
notebook on a temporary copy against the shipped detector. They are committed executed, by
experiments/run_notebooks.py (the reproduce_all step `notebooks`)."""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path

import nbformat
import pytest
from hydra import compose, initialize_config_dir
from nbclient import NotebookClient

from safepickle_bench.paths import CONF_DIR
from safepickle_bench.pipeline.app import run_task

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
COMMITTED_EXECUTED = ("03_never_seen_gadget.ipynb",)
"""Notebooks whose committed copy must hold the outputs of a full run; the others are committed either executed
or still empty (before their first full reproduction)."""
pytestmark = pytest.mark.slow


def run_experiment(name: str, overrides: list[str]) -> object:
    """Compose `experiment=name` with overrides and run its task (raises on failure)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={name}", *overrides])
    return run_task(cfg, None)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> str:
    """A throwaway MLflow store holding one small rf_hf run and one small scanner run; return its URI."""
    tmp = tmp_path_factory.mktemp("notebook-store")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    common = [
        "dataset.size=small", f"paths.root_dir={REPO}", f"paths.data_dir={REPO / 'data'}",
        f"paths.results_dir={tmp / 'results'}", f"paths.models_dir={tmp / 'models'}", f"tracking.uri={uri}",
        f"tracking.artifact_location={(tmp / 'mlartifacts').as_uri()}",
    ]
    run_experiment("rf_hf", [*common, "fast=true", "split.n_splits=3", "latency.n_files=5", "backend.n_jobs=1",
                             "export.enabled=false"])
    run_experiment("scanners_hide_and_seek", [*common, "scanner_benchmark.only=[picklescan,fickling]"])
    return uri


def execute(path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
            cwd: Path | None = None) -> nbformat.NotebookNode:
    """Run a notebook top to bottom in a fresh kernel from `cwd` (default its folder); return it with outputs."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=240, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd or path.parent)}}).execute()
    return nb


def text_of(nb: nbformat.NotebookNode) -> str:
    """Return every stream and plain-text output of a notebook, joined."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out["text"])
            elif "data" in out:
                parts.append(out["data"].get("text/plain", ""))
                parts.append(out["data"].get("text/html", ""))
    return "\n".join(parts)


def images_of(nb: nbformat.NotebookNode) -> int:
    """Return how many PNG figures a notebook produced."""
    return sum("image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))


def executed_top_to_bottom(nb: nbformat.NotebookNode) -> bool:
    """Return True when every code cell ran, in order, in one kernel, and no cell raised."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.get("execution_count") for c in code]
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    return counts == list(range(1, len(code) + 1)) and not errors


def test_notebooks_read_parameters_first_and_are_committed_executed_or_empty():
    assert [p.name for p in NOTEBOOKS] == ["01_explore_dataset.ipynb", "02_results.ipynb", "03_never_seen_gadget.ipynb"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), path.name
        assert "os.environ.get(" in code[0].source, path.name
        empty = all(not c.get("outputs") and c.get("execution_count") is None for c in code)
        if path.name in COMMITTED_EXECUTED:
            assert executed_top_to_bottom(nb), f"{path.name} is not committed executed top to bottom"
        else:
            assert empty or executed_top_to_bottom(nb), f"{path.name} is committed half executed or with an error"


def test_explore_notebook_runs_and_disassembles_each_payload_family(monkeypatch, tmp_path):
    from safepickle_bench.datasets import read_manifest

    nb = execute(REPO / "notebooks" / "01_explore_dataset.ipynb", monkeypatch,
                 {"SAFEPICKLE_NB_DATASET": "hf", "SAFEPICKLE_NB_SIZE": "small",
                  "SAFEPICKLE_DATA_DIR": str(REPO / "data")})
    text = text_of(nb)
    manifest = read_manifest("hf", "small", REPO / "data")
    families = set(manifest.loc[manifest.label == 1, "payload_family"].fillna(""))
    assert f"{len(manifest)} files, {int(manifest.label.sum())} malicious" in text
    for family in families:
        assert f"family {family or '(none)'}: " in text
    assert text.count(">> ") >= len(families) - 1  # an opcode listing marks the dangerous import/call
    assert "GLOBAL" in text and "REDUCE" in text
    assert images_of(nb) >= 2  # opcode share bars and per-file box plots


def test_results_notebook_redraws_tables_and_figures_from_mlflow(monkeypatch, small_store):
    nb = execute(REPO / "notebooks" / "02_results.ipynb", monkeypatch,
                 {"SAFEPICKLE_TRACKING_URI": small_store, "SAFEPICKLE_NB_SIZE": "small"})
    text = text_of(nb)
    assert "1 cross-validated on hf" in text
    assert "rf_hf" in text and "RandomForestDetector" in text
    assert "1 scanner runs at size small" in text
    assert "picklescan" in text and "fickling" in text
    assert images_of(nb) >= 4  # F1 bars, ROC/PR, scanner F1 bars, latency bars


def test_gadget_notebook_flags_a_never_seen_gadget_in_a_real_carrier_and_not_the_carrier(monkeypatch, tmp_path):
    copy = tmp_path / "03_never_seen_gadget.ipynb"
    shutil.copy(REPO / "notebooks" / copy.name, copy)
    seed = secrets.randbits(32) or 1  # a fresh draw every run; the message says how to replay it
    nb = execute(copy, monkeypatch, {"SAFEPICKLE_NB_SEED": str(seed), "SAFEPICKLE_DATA_DIR": str(REPO / "data")},
                 cwd=tmp_path)
    text = text_of(nb)
    replay = f"replay with SAFEPICKLE_NB_SEED={seed}"
    assert replay in text
    gadget = re.search(r"^gadget +(\S+)$", text, re.MULTILINE)
    assert gadget, text[:2000]
    called = rf"^ +{re.escape(gadget[1])} .*\[(?:REDUCE|NEWOBJ|NEWOBJ_EX|INST|OBJ|BUILD) @\d+\]$"
    assert re.search(called, text, re.MULTILINE), (replay, text[:4000])  # `analyze` lists the gadget's call
    assert "absent from every list: yes" in text, replay
    assert "namespace of the package: test" in text, replay
    verdicts = dict(re.findall(r"^(injected file|clean carrier): (malicious|benign|error) \(score", text, re.MULTILINE))
    assert verdicts.get("clean carrier") == "benign", (replay, verdicts)
    assert verdicts.get("injected file") == "malicious", (replay, gadget[1], re.findall(r"^(?:what|route) .*$", text,
                                                                                        re.MULTILINE), verdicts)
