"""Measure analysis + feature latency per file and extraction throughput; write results/feature_speed.md.

Corpora: the wild corpus (read in place, analysed only), generated PyTorch state dicts of a few hundred
tensors (HF-style `pytorch_model.bin`), and joblib dumps of scikit-learn estimators. Cache off throughout.
Run: python experiments/bench_feature_speed.py [--repeats 3] [--out results/feature_speed.md]
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import pickletools
import platform
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import joblib
import numpy as np

from safepickle_bench.analysis import analyze_path
from safepickle_bench.features import FEATURE_VERSION, GROUPS, extract, feature_columns, featurize_array
from safepickle_bench.features.extraction import gc_paused
from safepickle_bench.paths import wild_dir

WILD = wild_dir()
ROOT = Path(__file__).resolve().parents[1]


def wild_files() -> list[str]:
    """Return the wild corpus files listed in its MANIFEST (empty when the corpus is absent)."""
    manifest = WILD / "MANIFEST.csv"
    if not manifest.exists():
        return []
    with manifest.open() as fh:
        return [str(WILD / r["file"]) for r in csv.DictReader(fh) if (WILD / r["file"]).is_file()]


def make_torch_files(out: Path, n_files: int, seed: int = 0) -> list[str]:
    """Write HF-style state dicts (BERT-like key names, 200-400 small tensors each) with torch.save."""
    import torch

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n_files):
        n_layers = int(rng.integers(12, 25))
        sd = {"embeddings.word_embeddings.weight": torch.zeros(64, 8), "embeddings.LayerNorm.weight": torch.ones(8)}
        for layer in range(n_layers):
            for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                         "attention.output.dense", "intermediate.dense", "output.dense"):
                sd[f"encoder.layer.{layer}.{part}.weight"] = torch.zeros(8, 8)
                sd[f"encoder.layer.{layer}.{part}.bias"] = torch.zeros(8)
            sd[f"encoder.layer.{layer}.output.LayerNorm.weight"] = torch.ones(8)
            sd[f"encoder.layer.{layer}.output.LayerNorm.bias"] = torch.zeros(8)
        path = out / f"torch_{i:02d}_{len(sd)}t" / "pytorch_model.bin"
        path.parent.mkdir(parents=True)
        torch.save(sd, path)
        paths.append(str(path))
    return paths


def make_joblib_files(out: Path, n_files: int, seed: int = 0) -> list[str]:
    """Write joblib dumps of small fitted scikit-learn estimators and pipelines."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 6))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_files):
        kind = i % 3
        if kind == 0:
            model = LogisticRegression().fit(X, y)
        elif kind == 1:
            model = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=i).fit(X, y)
        else:
            model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
        path = out / f"model_{i:02d}.joblib"
        joblib.dump(model, path, compress=3 if i % 4 == 3 else 0)
        paths.append(str(path))
    return paths


def pickle_regions(path: str) -> list[bytes]:
    """Return the pickle bytes a tokenizer would walk: the `.pkl` entries of a zip, else the whole file."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                return [zf.read(n) for n in zf.namelist() if n.endswith(".pkl")]
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError):  # broken or encrypted wild zips: raw bytes
        pass
    return [Path(path).read_bytes()]


def genops_seconds(regions: list[bytes]) -> float:
    """Return the time of a full `pickletools.genops` pass over every region (tokenising only, no simulation)."""
    t0 = time.perf_counter()
    for data in regions:
        try:
            for _ in pickletools.genops(data):
                pass
        except Exception:  # noqa: BLE001 - malformed wild files: timed up to genops' error
            pass
    return time.perf_counter() - t0


def analysis_and_features(path: str) -> tuple[float, float]:
    """Return seconds of analysis+features and of features alone for one file, as extract() runs it per file."""
    with gc_paused():  # as extract's analyze_row: no cyclic collection while one file's objects are alive
        t0 = time.perf_counter()
        analysis = analyze_path(path, compute_sha256=False)  # as extract() does: its cache hashes files itself
        t1 = time.perf_counter()
        featurize_array(analysis, GROUPS)
        t2 = time.perf_counter()
        del analysis  # as analyze_row: freed while the collector is paused (counted in the total)
        t3 = time.perf_counter()
    return t3 - t0, t2 - t1


def latency(paths: list[str], repeats: int) -> dict[str, float]:
    """Return median and p95 ms per file of analysis+features, of features alone, and of a bare genops pass;
    each the best of `repeats` runs per file."""
    both, feats, bare = [], [], []
    for p in paths:
        best_both = best_feat = best_bare = float("inf")
        regions = pickle_regions(p)
        # one file at a time, each way `repeats` times in a row (as extract reads a file: once),
        # both ways side by side on the same file so that they see the same machine state
        for _ in range(repeats):
            total, feat = analysis_and_features(p)
            best_both = min(best_both, total)
            best_feat = min(best_feat, feat)
        for _ in range(repeats):
            best_bare = min(best_bare, genops_seconds(regions))
        both.append(best_both * 1e3)
        feats.append(best_feat * 1e3)
        bare.append(best_bare * 1e3)
    return {
        "n": len(paths),
        "median_total": statistics.median(both),
        "p95_total": float(np.percentile(both, 95)),
        "median_features": statistics.median(feats),
        "p95_features": float(np.percentile(feats, 95)),
        "median_genops": statistics.median(bare),
    }


def throughput(paths: list[str], n_jobs: int, repeats: int) -> float:
    """Return files per second of extract(cache=False) with `n_jobs` workers (best of repeats, warm pool)."""
    extract(paths[: max(2, n_jobs)], n_jobs=n_jobs, cache=False, progress=False)  # start the worker pool
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        df = extract(paths, n_jobs=n_jobs, cache=False, progress=False)
        best = min(best, time.perf_counter() - t0)
        assert len(df) == len(paths)
    return len(paths) / best


def main() -> int:
    """Run the benchmark and write the Markdown report."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--torch-files", type=int, default=20)
    ap.add_argument("--joblib-files", type=int, default=12)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "feature_speed.md")
    args = ap.parse_args()

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="spb_featspeed_") as tmp:
        tmpdir = Path(tmp)
        corpora = {
            "wild (in place)": wild_files(),
            "torch state dicts (HF-style, 170-338 tensors)": make_torch_files(tmpdir / "torch", args.torch_files),
            "joblib sklearn estimators": make_joblib_files(tmpdir / "joblib", args.joblib_files),
        }
        for p in corpora["torch state dicts (HF-style, 170-338 tensors)"][:1]:
            analyze_path(p)  # warm imports and caches once
        lat = {name: latency(paths, args.repeats) for name, paths in corpora.items() if paths}
        everything = [p for paths in corpora.values() for p in paths]
        everything = everything * max(1, math.ceil(1000 / len(everything)))  # amortise pool dispatch
        tput = {n: throughput(everything, n, args.repeats) for n in (1, 2)}
    load_after = os.getloadavg()[0]

    lines = [
        "# Feature extraction speed",
        "",
        "Written by `experiments/bench_feature_speed.py`. Per file: `analyze_path` (containers, opcodes,",
        f"symbolic stack) plus `featurize` of every group ({len(feature_columns())} columns, FEATURE_VERSION "
        f"{FEATURE_VERSION}), with the cyclic GC paused per file as `extract` does, best of {args.repeats} runs per "
        "file, cache off (the analyzer is pure Python: the package has no compiled code). "
        "Throughput: `extract(paths, "
        "cache=False, n_jobs=N)` over all the files below together (repeated to at least 1000 files; the cache is "
        "off, so every copy is analysed), warm worker pool, best of "
        f"{args.repeats}.",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        f"(1-minute load average {load_before:.1f} before, {load_after:.1f} after"
        + (": with a load above the core count, the 2-worker figure cannot show the scaling of an idle machine"
           if max(load_before, load_after) > (os.cpu_count() or 1) else "")
        + f"), Python {platform.python_version()}.",
        "",
        "## Latency per file (ms)",
        "",
        "| corpus | files | median analysis+features | p95 analysis+features | median features only | "
        "p95 features only | median bare `pickletools.genops` pass |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in lat.items():
        lines.append(f"| {name} | {r['n']} | {r['median_total']:.3f} | {r['p95_total']:.3f} | "
                     f"{r['median_features']:.3f} | {r['p95_features']:.3f} | "
                     f"{r['median_genops']:.3f} |")
    goal = lat.get("torch state dicts (HF-style, 170-338 tensors)")
    lines += [
        "",
        "## Throughput (files per second, cache off)",
        "",
        "| workers | files/s |",
        "|---|---|",
        *(f"| {n} | {v:.1f} |" for n, v in tput.items()),
        "",
        "Goal: median under 1 ms per file for analysis+features of a typical HF `pytorch_model.bin` "
        "of a few hundred tensors: "
        + (f"measured {goal['median_total']:.3f} ms ({'met' if goal['median_total'] < 1.0 else 'not met'}). "
           f"Merely tokenising the same files with the stdlib's pure-Python `pickletools.genops` (no stack "
           f"simulation, no features) takes {goal['median_genops']:.3f} ms."
           if goal else "not measured."),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
