"""Table 6: latency per file of every model and scanner on the same files, in one run; corpus throughput.

    python experiments/tables/latency.py [--small] [--n-files 100] [--n-slow 15] [--out results]

On one stratified sample of `hf` files (same files for every method, one process, `time.perf_counter`):
- analysis (bytes -> Analysis) and featurisation (Analysis -> row) per file, no cache, median and p95;
- each model's inference: one `predict_proba` call on one row (median, p95) and per file in one batch;
  models with `all` features come from their exported folders (models/<model>_hf, written by Table 1),
  RandomForest and CatBoost with the paper's `opcodes` features are fitted here;
- each scanner's wall time per file around `Scanner.scan` (the tool's own measurement beside it); slow
  scanners (modelaudit, the weights-only subprocess) on the first `--n-slow` files of the sample only;
- whole-corpus scan of `hf` (analysis + features + RandomForest), files per second with 1 and 2 workers.
Writes results/latency.{md,csv} and results/figures/latency.png (log scale).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd

from safepickle_bench import paths
from safepickle_bench.pipeline.experiment_runs import (
    MODELS,
    OUR_FEATURES,
    PAPER_FEATURES,
    ReportContext,
    add_context_args,
    compose_config,
    context_from_args,
    fit_on_dataset,
    log_table_run,
    setup_logging,
)
from safepickle_bench.reporting.paper import SCANNER_TIME_TEXT, paper_value
from safepickle_bench.reporting.results_figures import latency_bars
from safepickle_bench.reporting.scanner_results import read_scanner_metrics
from safepickle_bench.reporting.tables import caption, num, write_table

SCRIPT = "experiments/tables/latency.py"
SLOW_SCANNERS = ("modelaudit", "weights_only")


def stratified_sample(manifest: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """Return up to n rows keeping the label ratio, reproducibly."""
    frac = min(1.0, n / max(1, len(manifest)))
    parts = [g.sample(n=max(1, round(len(g) * frac)), random_state=seed) for _, g in manifest.groupby("label")]
    return pd.concat(parts).sample(frac=1.0, random_state=seed).head(n).reset_index(drop=True)


def summary(ms: list[float]) -> tuple[float, float]:
    """Return (median, p95) of milliseconds, NaN when empty."""
    if not ms:
        return float("nan"), float("nan")
    arr = np.asarray(ms, dtype=float)
    return float(np.median(arr)), float(np.percentile(arr, 95))


def time_features(paths: list[str], groups: list[str]) -> dict[str, float]:
    """Time analysis and featurisation of each file apart (ms): medians and p95s."""
    from safepickle_bench.analysis import analyze_path
    from safepickle_bench.features import featurize_array

    featurize_array(analyze_path(paths[0]), groups)  # warm-up: imports and first calls
    t_an, t_ft = [], []
    for p in paths:
        t0 = time.perf_counter()
        a = analyze_path(p)
        t1 = time.perf_counter()
        featurize_array(a, groups)
        t2 = time.perf_counter()
        t_an.append((t1 - t0) * 1e3)
        t_ft.append((t2 - t1) * 1e3)
    both = [a + f for a, f in zip(t_an, t_ft, strict=True)]
    (am, ap), (fm, fp), (bm, bp) = summary(t_an), summary(t_ft), summary(both)
    return {"analysis_ms_median": am, "analysis_ms_p95": ap, "featurize_ms_median": fm, "featurize_ms_p95": fp,
            "ms_median": bm, "ms_p95": bp}


def time_inference(estimator: object, X: np.ndarray) -> dict[str, float]:
    """Time single-row predict_proba calls (median, p95 ms) and one batched call (ms per file)."""
    estimator.predict_proba(X[:1])  # type: ignore[attr-defined]
    single = []
    for i in range(len(X)):
        t0 = time.perf_counter()
        estimator.predict_proba(X[i : i + 1])  # type: ignore[attr-defined]
        single.append((time.perf_counter() - t0) * 1e3)
    t0 = time.perf_counter()
    estimator.predict_proba(X)  # type: ignore[attr-defined]
    batch = (time.perf_counter() - t0) * 1e3 / len(X)
    med, p95 = summary(single)
    return {"ms_median": med, "ms_p95": p95, "batch_ms_per_file": batch}


def model_for(ctx: ReportContext, model: str, features: str) -> tuple[object, list[str], str]:
    """Return (estimator, columns, source): the exported model when present, else one fitted here."""
    from safepickle_bench.models.detector import load_detector

    models_dir = ctx.models_dir or paths.models_dir()
    export = models_dir / f"{model}_hf"
    if features == OUR_FEATURES and (export / "detector.json").is_file():
        det = load_detector(export)
        if list(det.feature_groups) == list(compose_config([f"features={features}"]).features.groups):
            return det.estimator, det.feature_columns, f"exported {export.name}"
    estimator, columns = fit_on_dataset(ctx, f"{model}_hf", model, features)
    return estimator, columns, "fitted in this run"


def time_scanners(ctx: ReportContext, sample: pd.DataFrame, n_slow: int, train: pd.DataFrame) -> list[dict]:
    """Scan the sample with every configured scanner; return one timing row per scanner."""
    from safepickle_bench.pipeline.scanner_benchmark import scanners_from_config

    cfg = compose_config(["experiment=scanners_hf", *ctx.overrides()])
    rows = []
    for name, scanner in scanners_from_config(cfg.scanners).items():
        print(f"[latency] scanner {name}", file=sys.stderr, flush=True)
        try:
            ok, why = (True, "") if scanner.learns else scanner.available()
            if not ok:
                rows.append({"method": name, "kind": "scanner", "mode": scanner.mode, "note": f"unavailable: {why}"})
                continue
            part = sample.head(n_slow) if name in SLOW_SCANNERS else sample
            if scanner.learns:
                scanner.fit(train)
            scanner.prepare(part)
            wall, own, errors = [], [], 0
            for p in part["abspath"]:
                t0 = time.perf_counter()
                res = scanner.scan(p)
                wall.append((time.perf_counter() - t0) * 1e3)
                own.append(res.seconds * 1e3)
                errors += res.verdict == "error"
            med, p95 = summary(wall)
            rows.append({"method": name, "kind": "scanner", "mode": scanner.mode, "ms_median": med, "ms_p95": p95,
                         "tool_ms_median": summary(own)[0], "n_files": len(part), "n_errors": errors,
                         "note": "learned from hf benign files first" if scanner.learns else ""})
        except Exception as exc:  # one broken scanner is a row with its reason, the others go on
            rows.append({"method": name, "kind": "scanner", "mode": scanner.mode,
                         "note": f"failed: {type(exc).__name__}: {exc}"[:200]})
        finally:
            scanner.close()
    return rows


def corpus_throughput(paths: list[str], estimator: object, groups: list[str], workers: int) -> dict[str, float]:
    """Scan a whole corpus (analysis + features, no cache, then one batched inference); files per second."""
    from safepickle_bench.features import extract

    t0 = time.perf_counter()
    X = extract(paths, groups=groups, n_jobs=workers, cache=False, progress=False)
    estimator.predict_proba(X.to_numpy(dtype=np.float64))  # type: ignore[attr-defined]
    seconds = time.perf_counter() - t0
    return {"files": len(paths), "workers": workers, "seconds": seconds, "files_per_second": len(paths) / seconds}


def main(argv: list[str] | None = None) -> int:
    """Measure every method on the same sample; write the table and the log-scale figure."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_context_args(ap)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--n-files", type=int, default=None, help="sample size (default 100, 20 with --small)")
    ap.add_argument("--n-slow", type=int, default=None, help="files for slow scanners (default 15, 3 with --small)")
    ap.add_argument("--no-scanners", action="store_true", help="time the models only")
    args = ap.parse_args(argv)
    setup_logging()
    ctx = context_from_args(args)
    n_files = args.n_files or (20 if ctx.small else 100)
    n_slow = args.n_slow or (3 if ctx.small else 15)
    started = time.perf_counter()
    from safepickle_bench.datasets import read_manifest

    manifest = read_manifest("hf", ctx.size, ctx.data_dir)
    sample = stratified_sample(manifest, n_files)
    paths = sample["abspath"].astype(str).tolist()
    rows: list[dict] = []
    for features in (PAPER_FEATURES, OUR_FEATURES):
        groups = list(compose_config([f"features={features}"]).features.groups)
        print(f"[latency] analysis + features ({features})", file=sys.stderr, flush=True)
        rows.append({"method": f"analysis + features ({features})", "kind": "features", "mode": "in-process",
                     "n_files": len(paths), **time_features(paths, groups)})
    from safepickle_bench.features import extract

    plan = [(m, OUR_FEATURES) for m in args.models.split(",") if m]
    plan += [(m, PAPER_FEATURES) for m in ("rf", "catboost") if m in args.models.split(",")]
    rf_all = None
    for model, features in plan:
        print(f"[latency] model {model} ({features})", file=sys.stderr, flush=True)
        try:
            estimator, columns, source = model_for(ctx, model, features)
        except Exception as exc:  # the row says why
            rows.append({"method": f"{model} ({features})", "kind": "model", "note": f"failed: {exc}"[:200]})
            continue
        groups = list(compose_config([f"features={features}"]).features.groups)
        X = extract(paths, groups=groups, n_jobs=1, cache=True, progress=False)[columns].to_numpy(dtype=np.float64)
        rows.append({"method": f"{model} ({features})", "kind": "model", "mode": "in-process", "n_files": len(X),
                     "note": source, **time_inference(estimator, X)})
        if model == "rf" and features == OUR_FEATURES:
            rf_all = estimator
    if not args.no_scanners:
        rows += time_scanners(ctx, sample, n_slow, manifest)
    throughput = []
    if rf_all is not None:
        corpus = manifest["abspath"].astype(str).tolist()
        for workers in (1, 2):
            print(f"[latency] whole-corpus scan, {workers} worker(s), {len(corpus)} files", file=sys.stderr,
                  flush=True)
            throughput.append(corpus_throughput(corpus, rf_all, list(compose_config(["features=all"]).features.groups),
                                                workers))
    frame = pd.DataFrame(rows)
    paper_ms = paper_value("catboost_inference_ms")
    display = []
    for r in rows:
        is_model = r["kind"] == "model"
        paper = f"{paper_ms} ms" if r["method"].startswith("catboost") else (
            "100s-1000s ms" if r["kind"] == "scanner" and r["method"] != "ours" else "n/a")
        display.append({
            "method": r["method"], "kind": r["kind"], "mode": r.get("mode", ""),
            "ms/file median": num(r.get("ms_median"), 4), "ms/file p95": num(r.get("ms_p95"), 4),
            "batched ms/file": num(r.get("batch_ms_per_file"), 5) if is_model else "",
            "paper": paper, "files": r.get("n_files", ""),
            "note": " ".join(str(x) for x in (
                f"analysis {num(r.get('analysis_ms_median'), 3)} + featurise {num(r.get('featurize_ms_median'), 3)} ms"
                if r["kind"] == "features" else "",
                f"tool's own {num(r.get('tool_ms_median'), 1)} ms; errors {r.get('n_errors', 0)}"
                if r["kind"] == "scanner" and "ms_median" in r else "",
                r.get("note", "")) if x),
        })
    bench = read_scanner_metrics(ctx.out_dir, "hf")
    bench_note = ""
    if bench is not None and "ms_median" in bench:
        bench_note = ("Scanner benchmark's own timing on hf (results/scanners/hf/metrics.csv; different files): "
                      + ", ".join(f"{r['scanner']} ({r['mode']}) {num(r['ms_median'], 1)} ms" for r in bench.to_dict("records")
                                  if r.get("ms_median") == r.get("ms_median")) + ".")
    tp_rows = [{"workers": t["workers"], "files": t["files"], "seconds": num(t["seconds"], 1),
                "files/second": num(t["files_per_second"], 1)} for t in throughput]
    pd.DataFrame(throughput).to_csv(ctx.out_dir / "latency_throughput.csv", index=False)
    bars = [r for r in rows if r.get("ms_median") == r.get("ms_median") and "ms_median" in r]
    ours_e2e = next((r for r in rows if r["method"] == "ours"), None)
    latency_bars([r["method"] for r in bars], [r["ms_median"] for r in bars],
                 ["end-to-end" if r is ours_e2e else r["kind"] for r in bars], ctx.figures_dir / "latency.png",
                 reference={f"paper CatBoost {paper_ms} ms": paper_ms},
                 title=f"ms per file on the same {len(paths)} hf ({ctx.size}) files (median, log scale)")
    from safepickle_bench.reporting.tables import markdown_table

    cpu = os.cpu_count()
    notes = [
        caption(SCRIPT, ctx.command_suffix(), time.perf_counter() - started),
        "",
        f"{len(paths)} files sampled from `hf` ({ctx.size}, stratified by label, seed 0); every method on the same "
        f"files in one process on a {cpu}-core machine shared with other jobs (figures are indicative, not a "
        f"clean benchmark). Slow scanners ({', '.join(SLOW_SCANNERS)}) timed on the first {n_slow} files only. "
        "Model rows are inference only (features already extracted); `analysis + features` rows are the static "
        "work before it; the `ours` scanner row is end to end (read file, analyse, featurise, infer with the "
        "exported rf_hf model, including the per-file reasons it prints). Scanner rows are wall time around `Scanner.scan` (in-process calls run in a warm "
        "isolated worker; `cli`/`subprocess` modes start a process per file), the tool's own measurement in the "
        f"note. Paper: CatBoost inference {paper_ms} ms per file; scanners {SCANNER_TIME_TEXT}.",
        *(["", bench_note] if bench_note else []),
        *(["", "**Fast presets** (small datasets): a smoke run, not a result."] if ctx.fast else []),
    ]
    sections = ["## Whole-corpus scan of hf (analysis + features, no cache, + batched RandomForest)", "",
                "Wall time of `features.extract(n_jobs=workers, cache=False)` over every hf file plus one batched "
                "`predict_proba`; includes starting the worker processes.", "",
                markdown_table(tp_rows, list(tp_rows[0])) if tp_rows else "(not measured: rf model missing)", "",
                "![latency](figures/latency.png)"]
    files = write_table(ctx.out_dir, "latency", "Table 6 — latency per file, models vs scanners", frame, display,
                        notes, sections)
    log_table_run(ctx, "latency", [*files, ctx.out_dir / "latency_throughput.csv", ctx.figures_dir / "latency.png"],
                  metrics={f"{r['method']}.ms_median": r["ms_median"] for r in bars})
    print((ctx.out_dir / "latency.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
