"""Fast start: `analyze` and a default-model scan of one file import only what they use (no scikit-learn,
torch, Dask, MLflow, pandas or the model libraries)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

HEAVY = ("sklearn", "torch", "dask", "distributed", "mlflow", "pandas", "scipy", "skops", "xgboost", "lightgbm",
         "catboost", "joblib", "hydra")


def imported_heavy(code: str) -> list[str]:
    """Run code in a fresh interpreter and return the heavy top-level packages it imported."""
    probe = f"\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))\n"
    out = subprocess.run([sys.executable, "-c", code + probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_analyze_imports_no_heavy_library(tmp_path):
    target = tmp_path / "model.pkl"
    target.write_bytes(b"\x80\x02cposix\nsystem\nX\x04\x00\x00\x00echoq\x00\x85R.")
    code = (
        "from safepickle_bench.__main__ import main\n"
        f"main(['analyze', {str(target)!r}])\n"
        f"main(['analyze', '--json', {str(target)!r}])\n"
    )
    assert imported_heavy(code) == []


def test_analyze_of_a_small_file_does_not_import_numpy(tmp_path):
    # numpy costs about as much start-up as the rest of `analyze` on a small file
    target = tmp_path / "model.pkl"
    target.write_bytes(pickle.dumps({"w": [0.5] * 4}))
    code = (
        "import sys\nfrom safepickle_bench.__main__ import main\n"
        f"main(['analyze', '--json', {str(target)!r}])\n"
        "print('numpy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_default_model_scan_of_one_file_imports_no_heavy_library(tmp_path):
    target = tmp_path / "weights.pkl"
    target.write_bytes(pickle.dumps({"w": [0.5] * 4}))
    code = (
        "from pathlib import Path\n"
        "from safepickle_bench.cli.engine import ScanItem, scan_items\n"
        f"verdicts = list(scan_items([ScanItem('w', Path({str(target)!r}))], explain='all'))\n"
        "assert verdicts[0].verdict == 'clean', verdicts\n"
    )
    assert imported_heavy(code) == []
