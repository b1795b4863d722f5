"""Benchmark every scanner and our detector on the five datasets; write results/scanners.{csv,md}.

    python experiments/run_scanners.py                 # full size, ~20 min on 2 cores (MLflow: ./mlflow.db)
    python experiments/run_scanners.py --small         # small datasets, tiny samples of the slow scanners
    python experiments/run_scanners.py --out DIR [--datasets hf,wild] [--scanners picklescan,ours] [-- OVERRIDES]

Each dataset is the Hydra experiment `scanners_<dataset>` (conf/experiment/), run twice:
1. the fast scanners (picklescan, modelscan, fickling, policy loader, ours, and the unavailable ClamAV and
   VirusTotal, which only report why) on EVERY file, through the `scanners` task (one MLflow run
   `scanners_<dataset>`);
2. the slow scanners (modelaudit, a CLI at seconds per file; the Weights-Only Unpickler, one torch process
   per file) on a stratified sample with a fixed seed (one MLflow run `scanners_<dataset>_sampled`); the
   sample size is stated in every table. Weights-only is run on torch checkpoints only (it rejects any
   other pickle by construction, see safepickle_bench/scanners/weights_only.py).
On `hf` a timing-only pass also runs picklescan and modelscan as CLI processes on a small sample, so each
tool's time is given in-process and as a CLI. Per dataset, `<out>/scanners/<dataset>/{metrics,records,
matrix}.csv` hold every scanner (fast and sampled); `<out>/scanners.csv` and `<out>/scanners.md` gather them.
Our exported detector (models/rf_hf) is not scored on `hf` (its training set): that row is the pipeline's
out-of-fold cross-validation result (MLflow run `rf_hf` of the same size, else results/experiments.csv).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from safepickle_bench import paths
from safepickle_bench.datasets import ensure_dataset, read_manifest
from safepickle_bench.paths import CONF_DIR
from safepickle_bench.pipeline.app import run_task
from safepickle_bench.pipeline.scanner_benchmark import (
    EXTRA_COLUMNS,
    METRIC_COLUMNS,
    benchmark,
    detection_matrix,
    scanners_from_config,
    unavailable_row,
)
from safepickle_bench.reporting.tables import markdown_table, msec, pct
from safepickle_bench.scanners.weights_only import meaningful_for as WEIGHTS_ONLY_CONTAINERS

log = logging.getLogger("run_scanners")
ROOT = paths.root_dir()
"""The output root (the current directory unless $SAFEPICKLE_ROOT names another)."""
DATASETS: tuple[str, ...] = ("hf", "pickleball_ood", "hide_and_seek", "joblib", "wild")
SEED = 0
SLOW: tuple[str, ...] = ("modelaudit", "weights_only")
"""Scanners run on a stratified sample only (seconds per file)."""
TORCH_CONTAINERS: frozenset[str] = frozenset(WEIGHTS_ONLY_CONTAINERS) | {"torch_zip_archive"}
"""Manifest containers that are torch checkpoints (torch_zip_archive = the torch 1.6-1.13 zip layout)."""
SAMPLE_FULL: dict[str, dict[str, int]] = {
    "modelaudit": {"hf": 50, "pickleball_ood": 36, "hide_and_seek": 22, "joblib": 30, "wild": 40},
    "weights_only": {"hf": 40, "pickleball_ood": 30, "hide_and_seek": 16, "joblib": 0, "wild": 15},
}
"""Files per dataset for the slow scanners at full size (budget: the whole run in ~25 min on 2 cores)."""
SAMPLE_SMALL: dict[str, int] = {"modelaudit": 2, "weights_only": 2}
CLI_TIMING: tuple[str, ...] = ("picklescan", "modelscan")
"""Scanners also timed as one CLI process per file (on hf, a sample of CLI_SAMPLE files)."""
CLI_SAMPLE = {"full": 20, "small": 4}
STRATA: dict[str, list[str]] = {"hide_and_seek": ["label", "evasion_technique"]}
"""Sampling strata per dataset (default: label, then container)."""

_RANGE = "7.23-62.75 (range of 4 tools)"
PAPER: dict[str, dict[str, str]] = {
    "hf": {"modelscan": _RANGE, "fickling": _RANGE, "clamav": _RANGE, "virustotal": _RANGE,
           "ours": "90.01 (SafePickle RandomForest)"},
    "pickleball_ood": {"modelscan": "85.7 (ModelScan 0.8.1, PickleBall Table 2)",
                       "weights_only": "63.9 (PickleBall Table 2)",
                       "policy_loader": "76.09 (PickleBall itself, as quoted by SafePickle; ~76.7 from Table 2)",
                       "ours": "81.22 (SafePickle)"},
    "hide_and_seek": {"modelscan": "< 9/9 detected", "fickling": "< 9/9 detected", "clamav": "< 9/9 detected",
                      "virustotal": "< 9/9 detected", "ours": "9/9 detected (SafePickle)"},
}
"""The paper's figure beside ours (PAPER.md); every other cell is n/a."""


# ----------------------------------------------------------------------------------------------- sampling


def allocate(sizes: pd.Series, n: int, at_least_one: bool) -> pd.Series:
    """Split n draws over strata in proportion to their sizes (largest remainder), capped by each size."""
    n = int(min(n, sizes.sum()))
    quota = sizes * n / sizes.sum()
    alloc = np.floor(quota).astype(int)
    if at_least_one and n >= len(sizes):
        alloc = alloc.clip(lower=1)
    alloc = np.minimum(alloc, sizes)
    while alloc.sum() > n:
        over = (alloc - quota).where(alloc > 1, -np.inf)
        alloc[over.idxmax()] -= 1
    while alloc.sum() < n:
        under = (quota - alloc).where(alloc < sizes, -np.inf)
        alloc[under.idxmax()] += 1
    return alloc


def stratified_sample(frame: pd.DataFrame, n: int, keys: Sequence[str], seed: int = SEED) -> pd.DataFrame:
    """Draw n rows keeping the share of each `keys[0]` value (labels), then spreading over `keys[1:]`."""
    if n >= len(frame):
        return frame.sort_values("path").reset_index(drop=True)
    first, rest = keys[0], list(keys[1:])
    parts = []
    by_first = frame.groupby(first, dropna=False)
    for value, k in allocate(by_first.size(), n, at_least_one=True).items():
        sub = by_first.get_group(value)
        if not rest or k == 0:
            parts.append(sub.sample(int(k), random_state=seed))
            continue
        by_rest = sub.fillna({c: "" for c in rest}).groupby(rest, dropna=False)
        for key, m in allocate(by_rest.size(), int(k), at_least_one=True).items():
            if m:
                parts.append(by_rest.get_group(key if isinstance(key, tuple) else (key,)).sample(int(m), random_state=seed))
    return pd.concat(parts).sort_values("path").reset_index(drop=True)


# ----------------------------------------------------------------------------------------------- runs


@dataclass(slots=True)
class DatasetResult:
    """Every scanner's metric rows on one dataset, its per-sample matrix and the dataset's size."""

    metrics: pd.DataFrame
    matrix: pd.DataFrame
    n_files: int
    n_malicious: int


def compose_cfg(dataset: str, size: str, out: Path, overrides: Sequence[str]) -> DictConfig:
    """Compose the Hydra config of `experiment=scanners_<dataset>` writing under `out`."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[
            f"experiment=scanners_{dataset}", f"dataset.size={size}", f"paths.root_dir={ROOT}",
            f"paths.results_dir={out}", *overrides,
        ])


def run_fast(cfg: DictConfig, names: list[str]) -> pd.DataFrame | None:
    """Run the `scanners` task with only `names` on every file; return its metrics (None when it failed)."""
    cfg = cfg.copy()
    OmegaConf.update(cfg, "scanner_benchmark.only", names, force_add=True)
    metrics = run_task(cfg, None, multirun=True)
    if not isinstance(metrics, pd.DataFrame):
        return None
    metrics.attrs = {}  # the matrix is rebuilt from records.csv once the sampled scanners have run
    return metrics


def sample_for(scanner: str, manifest: pd.DataFrame, dataset: str, size: str) -> tuple[pd.DataFrame, str]:
    """Return the files a slow scanner scans on this dataset and how they were chosen (empty: why not)."""
    eligible = manifest
    scope = "files"
    if scanner == "weights_only":
        eligible = manifest[manifest["container"].isin(TORCH_CONTAINERS)]
        scope = "torch checkpoints"
        if eligible.empty:
            return eligible, "not applicable: no torch checkpoint in this dataset (weights-only reads torch files only)"
    n = SAMPLE_FULL[scanner].get(dataset, 20) if size == "full" else SAMPLE_SMALL[scanner]
    keys = STRATA.get(dataset, ["label", "container"])
    sample = stratified_sample(eligible, n, keys)
    how = (f"stratified sample of {len(sample)} of {len(eligible)} {scope} "
           f"(strata {'+'.join(keys)}, seed {SEED})")
    if len(sample) == len(eligible):
        how = f"all {len(eligible)} {scope}"
    return sample, how


def run_sampled(cfg: DictConfig, manifest: pd.DataFrame, dataset: str, size: str,
                names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the slow scanners on their samples; return (metrics, records) with the sample stated in `note`."""
    rows, records = [], []
    for name in names:
        sample, how = sample_for(name, manifest, dataset, size)
        if sample.empty:
            row = unavailable_row(dataset, name, str(cfg.scanners[name].get("mode", "")), how)
            row["note"] = how
            rows.append(row)
            continue
        print(f"    {name}: {how}", flush=True)
        metrics, recs = benchmark(scanners_from_config(cfg.scanners, [name]), sample, dataset, seed=SEED)
        for row in metrics.to_dict("records"):
            if row["available"] is True:
                row["note"] = f"{how}; {row['note']}"
            rows.append(row)
        if not recs.empty:
            records.append(recs)
    frame = pd.DataFrame(rows, columns=[*METRIC_COLUMNS, *EXTRA_COLUMNS])
    return frame, (pd.concat(records, ignore_index=True) if records else pd.DataFrame())


def run_cli_timing(cfg: DictConfig, manifest: pd.DataFrame, dataset: str, size: str,
                   names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run in-process scanners once more as one CLI process per file on a small sample (timing rows)."""
    from hydra.utils import instantiate

    sample = stratified_sample(manifest, CLI_SAMPLE[size], ["label", "container"])
    how = f"CLI timing pass: stratified sample of {len(sample)} of {len(manifest)} files (seed {SEED})"
    rows, records = [], []
    for name in names:
        node = cfg.scanners[name].copy()
        node.mode = "cli"
        print(f"    {name} (cli): {how}", flush=True)
        metrics, recs = benchmark({name: instantiate(node)}, sample, dataset, seed=SEED)
        for row in metrics.to_dict("records"):
            if row["available"] is True:
                row["note"] = f"{how}; {row['note']}"
            rows.append(row)
        records.append(recs)
    frame = pd.DataFrame(rows, columns=[*METRIC_COLUMNS, *EXTRA_COLUMNS])
    return frame, (pd.concat(records, ignore_index=True) if records else pd.DataFrame())


def log_sampled_run(cfg: DictConfig, name: str, metrics: pd.DataFrame, files: list[Path]) -> None:
    """Log the sampled scanners' metrics (`<scanner>.<mode>.<metric>`) and files as one MLflow run."""
    import mlflow

    from safepickle_bench.config import run_config
    from safepickle_bench.pipeline.tracking import setup_mlflow

    setup_mlflow(run_config(cfg).tracking)
    with mlflow.start_run(run_name=name):
        mlflow.set_tags({"task": "scanners", "dataset": str(cfg.dataset.name), "sampled": "true"})
        mlflow.log_params({"dataset": cfg.dataset.name, "size": cfg.dataset.get("size", "full"), "seed": SEED,
                           "scanners": ",".join(f"{s}:{m}" for s, m in zip(metrics["scanner"], metrics["mode"],
                                                                            strict=True))})
        for row in metrics.to_dict("records"):
            for key in ("f1_fail_closed", "f1_fail_open", "precision", "recall", "fpr", "error_rate",
                        "skip_rate", "ms_median", "ms_p95", "n_files"):
                value = row.get(key)
                if isinstance(value, int | float) and math.isfinite(value):
                    mlflow.log_metric(f"{row['scanner']}.{row['mode']}.{key}", float(value))
        for f in files:
            if f.is_file():
                mlflow.log_artifact(str(f))


def ours_cv_row(cfg: DictConfig, size: str, out: Path) -> dict[str, Any]:
    """Return our row on hf from the pipeline's out-of-fold CV run `rf_hf` (MLflow, else experiments.csv)."""
    import mlflow

    from safepickle_bench.config import run_config

    found: dict[str, Any] | None = None
    source = ""
    tracking = run_config(cfg).tracking
    try:
        mlflow.set_tracking_uri(tracking.uri)
        runs = mlflow.search_runs(
            experiment_names=[tracking.experiment_name], max_results=1, order_by=["attributes.start_time DESC"],
            filter_string=(f"attributes.run_name = 'rf_hf' and attributes.status = 'FINISHED' "
                           f"and params.`dataset.size` = '{size}' and params.`features.name` = 'all'"
                           + (" and params.fast = 'False'" if size == "full" else "")))
        if len(runs):
            run = runs.iloc[0]
            found = {k.removeprefix("metrics."): run[k] for k in runs.columns if k.startswith("metrics.")}
            source = f"MLflow run rf_hf {run['run_id'][:8]}"
    except Exception as exc:  # no store or no such experiment: fall back to the CSV
        log.info("no rf_hf run in MLflow (%s)", exc)
    if found is None and size == "full":
        for csv in (out / "experiments.csv", ROOT / "results" / "experiments.csv"):
            if csv.is_file():
                table = pd.read_csv(csv)
                hit = table[table["model"] == "rf"]
                if len(hit):
                    found, source = hit.iloc[0].to_dict(), str(csv.relative_to(ROOT) if csv.is_relative_to(ROOT) else csv)
                    break
    if found is None:
        return unavailable_row("hf", "ours", "in-process",
                               f"model trained on hf and no rf_hf cross-validation run of size {size} found")
    tp, fp, tn, fn = (int(found.get(k, 0) or 0) for k in ("tp", "fp", "tn", "fn"))
    row = unavailable_row("hf", "ours", "in-process", "")
    row.update({
        "f1_fail_closed": found["f1"], "f1_fail_open": found["f1"], "precision": found["precision"],
        "recall": found["recall"], "fpr": found["fpr"],
        "ms_median": found["features_ms_median"] + found["inference_ms_median"],
        "ms_p95": found["features_ms_p95"] + found["inference_ms_p95"],
        "n_files": tp + fp + tn + fn, "n_malicious": tp + fn, "n_benign": fp + tn,
        "tp": tp, "fp": fp, "tn": tn, "fn": fn, "available": True,
        "note": (f"RandomForest, out-of-fold group k-fold CV ({source}): every file is scored by a model that "
                 "never saw its group; analysis errors are features, so no error verdict exists (error % n/a); "
                 "ms = median analysis+features + median single-row inference (p95: sum of p95s)"),
    })
    return row


def merge_dataset(out: Path, dataset: str, order: list[str], fast: pd.DataFrame | None,
                  extra: list[pd.DataFrame], extra_records: pd.DataFrame,
                  fast_wrote_records: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Merge fast and sampled rows into `<out>/scanners/<dataset>/{metrics,records,matrix}.csv`; return
    (metrics, matrix). The fast pass's records are read back from the records.csv it just wrote."""
    folder = out / "scanners" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    parts = [p for p in (fast, *extra) if p is not None and not p.empty]
    metrics = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*METRIC_COLUMNS, *EXTRA_COLUMNS])
    rank = {name: i for i, name in enumerate(order)}
    metrics = metrics.assign(_o=metrics["scanner"].map(rank).fillna(len(rank)), _m=metrics["mode"] == "cli")
    metrics = metrics.sort_values(["_o", "_m"], kind="stable").drop(columns=["_o", "_m"]).reset_index(drop=True)
    fast_records = pd.DataFrame()
    rec_path = folder / "records.csv"
    if fast_wrote_records and rec_path.is_file() and rec_path.stat().st_size > 1:
        try:
            fast_records = pd.read_csv(rec_path, keep_default_na=False, na_values=[""])
        except pd.errors.EmptyDataError:
            fast_records = pd.DataFrame()
    for column in ("evasion_technique", "payload_family"):  # the matrix pivots on these: no NaN keys
        for frame in (fast_records, extra_records):
            if column in frame:
                frame[column] = frame[column].astype(object).where(frame[column].notna(), "").astype(str)
    records = pd.concat([r for r in (fast_records, extra_records) if not r.empty], ignore_index=True) \
        if not (fast_records.empty and extra_records.empty) else pd.DataFrame()
    matrix = detection_matrix(records) if not records.empty else pd.DataFrame()
    if not matrix.empty:
        scanners = [c for c in matrix.columns if c in rank]
        matrix[scanners] = matrix[scanners].fillna("not run")
    metrics.to_csv(folder / "metrics.csv", index=False)
    records.to_csv(rec_path, index=False)
    matrix.to_csv(folder / "matrix.csv", index=False)
    return metrics, matrix


def run_dataset(dataset: str, size: str, out: Path, wanted: set[str] | None,
                overrides: Sequence[str]) -> DatasetResult:
    """Run every scanner of `scanners_<dataset>` (fast on all files, slow on a sample); return merged metrics."""
    cfg = compose_cfg(dataset, size, out, overrides)
    ensure_dataset(dataset, size, Path(str(cfg.paths.data_dir)), seed=int(cfg.get("seed", 0)))
    manifest = read_manifest(dataset, size, Path(str(cfg.paths.data_dir)))
    order = [str(n) for n in cfg.scanners]
    chosen = [n for n in order if wanted is None or n in wanted]
    fast_names = [n for n in chosen if n not in SLOW]
    slow_names = [n for n in chosen if n in SLOW]
    n_mal = int(manifest["label"].sum())
    print(f"--- {dataset} ({size}): {len(manifest)} files, {n_mal} malicious; fast {fast_names}, "
          f"sampled {slow_names}", flush=True)
    fast, fast_ok = None, False
    if fast_names:
        t0 = time.perf_counter()
        fast = run_fast(cfg, fast_names)
        fast_ok = fast is not None
        print(f"    fast scanners: {time.perf_counter() - t0:.0f} s", flush=True)
        if fast is None:
            fast = pd.DataFrame([unavailable_row(dataset, n, str(cfg.scanners[n].get("mode", "")),
                                                 "the scanners task failed (see the FAILED MLflow run)")
                                 for n in fast_names])
        if dataset == "hf" and "ours" in fast_names:
            fast = fast[fast["scanner"] != "ours"]
            fast = pd.concat([fast, pd.DataFrame([ours_cv_row(cfg, size, out)])], ignore_index=True)
    extra: list[pd.DataFrame] = []
    extra_records = pd.DataFrame()
    if slow_names:
        t0 = time.perf_counter()
        sampled, extra_records = run_sampled(cfg, manifest, dataset, size, slow_names)
        extra.append(sampled)
        print(f"    sampled scanners: {time.perf_counter() - t0:.0f} s", flush=True)
    cli_names = [n for n in CLI_TIMING if n in chosen] if dataset == "hf" else []
    if cli_names:
        cli_rows, cli_records = run_cli_timing(cfg, manifest, dataset, size, cli_names)
        extra.append(cli_rows)
        folder = out / "scanners" / dataset
        folder.mkdir(parents=True, exist_ok=True)
        cli_records.to_csv(folder / "records_cli.csv", index=False)
    metrics, matrix = merge_dataset(out, dataset, order, fast, extra, extra_records, fast_ok)
    side = [m for m in extra if not m.empty]
    if side and cfg.get("tracking") is not None:
        try:
            folder = out / "scanners" / dataset
            log_sampled_run(cfg, f"scanners_{dataset}_sampled", pd.concat(side, ignore_index=True),
                            [folder / "metrics.csv", folder / "records.csv", folder / "matrix.csv"])
        except Exception:  # tracking must not lose results already written
            log.exception("MLflow logging of the sampled scanners failed; results are in %s", out)
    return DatasetResult(metrics, matrix, len(manifest), n_mal)


# ----------------------------------------------------------------------------------------------- Markdown


def metric_rows(metrics: pd.DataFrame, dataset: str) -> list[dict[str, str]]:
    """Return the Markdown rows of one dataset's metrics (unavailable scanners: the reason, no figure)."""
    paper = PAPER.get(dataset, {})
    rows = []
    for r in metrics.to_dict("records"):
        base = {"scanner": str(r["scanner"]), "mode": str(r["mode"]),
                "paper F1 %": paper.get(str(r["scanner"]), "n/a") if r["mode"] != "cli" else "n/a",
                "note": str(r.get("note") or "").replace("|", "/")}
        if r.get("available") is not True and str(r.get("available")).lower() != "true":
            rows.append({**base, "files": "0", "F1 % fail-closed": "unavailable", "F1 % fail-open": "unavailable"})
            continue
        n = r.get("n_files")
        rows.append({
            **base,
            "files": str(int(n)) if isinstance(n, int | float) and math.isfinite(n) else "n/a",
            "F1 % fail-closed": pct(r["f1_fail_closed"]), "F1 % fail-open": pct(r["f1_fail_open"]),
            "precision %": pct(r["precision"]), "recall %": pct(r["recall"]), "FPR %": pct(r["fpr"]),
            "error %": pct(r["error_rate"]), "skipped %": pct(r.get("skip_rate")),
            "ms/file median": msec(r["ms_median"]), "ms/file p95": msec(r["ms_p95"]),
        })
    return rows


METRIC_TABLE_COLUMNS = ["scanner", "mode", "files", "F1 % fail-closed", "F1 % fail-open", "paper F1 %",
                        "precision %", "recall %", "FPR %", "error %", "skipped %", "ms/file median",
                        "ms/file p95", "note"]
SCANNER_CELLS = ("detected", "missed", "error", "not run")


def matrix_summary(matrix: pd.DataFrame, scanners: list[str]) -> list[dict[str, str]]:
    """Return per-scanner counts of detected / missed / error / not run over the malicious rows."""
    mal = matrix[matrix["label"] == 1]
    rows = []
    for s in scanners:
        counts = mal[s].value_counts()
        scanned = int(sum(counts.get(c, 0) for c in ("detected", "missed", "error")))
        rows.append({"scanner": s, "malicious files": str(len(mal)), "scanned": str(scanned),
                     **{c: str(int(counts.get(c, 0))) for c in SCANNER_CELLS},
                     "detected / scanned": f"{int(counts.get('detected', 0))}/{scanned}" if scanned else "n/a"})
    return rows


def technique_table(matrix: pd.DataFrame, scanners: list[str]) -> list[dict[str, str]]:
    """Return technique x scanner cells `detected/scanned (errors)` for the malicious rows."""
    rows = []
    for tech, part in matrix[matrix["label"] == 1].groupby("evasion_technique", sort=True):
        row = {"technique": str(tech), "files": str(len(part))}
        for s in scanners:
            counts = part[s].value_counts()
            scanned = int(sum(counts.get(c, 0) for c in ("detected", "missed", "error")))
            err = int(counts.get("error", 0))
            row[s] = (f"{int(counts.get('detected', 0))}/{scanned}" + (f" ({err} err)" if err else "")) if scanned else "-"
        rows.append(row)
    return rows


def matrix_block(matrix: pd.DataFrame, scanners: list[str], title: str) -> list[str]:
    """Return the per-sample matrix as a collapsible Markdown table."""
    cols = ["path", "label", *(["evasion_technique"] if "evasion_technique" in matrix else []), *scanners]
    rows = [{c: str(v).replace("|", "/") for c, v in r.items()} for r in matrix[cols].to_dict("records")]
    return [f"<details><summary>{title} ({len(matrix)} files x {len(scanners)} scanners)</summary>", "",
            markdown_table(rows, cols), "", "</details>", ""]


def dataset_section(dataset: str, result: DatasetResult, size: str) -> list[str]:
    """Return the Markdown section of one dataset: the metric table, and the matrices where asked."""
    metrics, matrix, n, n_mal = result.metrics, result.matrix, result.n_files, result.n_malicious
    lines = [f"## `{dataset}` ({size}: {n} files, {n_mal} malicious, {n - n_mal} benign)", ""]
    lines += [markdown_table(metric_rows(metrics, dataset), METRIC_TABLE_COLUMNS), ""]
    if dataset in ("hide_and_seek", "wild") and not matrix.empty:
        scanners = [s for s in metrics["scanner"].drop_duplicates() if s in matrix.columns]
        lines += ["Per scanner, over the malicious files (fail-open counting: an error is not a detection):", "",
                  markdown_table(matrix_summary(matrix, scanners),
                                 ["scanner", "malicious files", "scanned", *SCANNER_CELLS, "detected / scanned"]), ""]
        if dataset == "hide_and_seek":
            lines += ["Per evasion technique (`detected/scanned`, errors in brackets, `-` = not run):", "",
                      markdown_table(technique_table(matrix, scanners), ["technique", "files", *scanners]), ""]
        lines += matrix_block(matrix, scanners, f"Per-sample matrix, `{dataset}`")
    return lines


HEADER = """\
Every scanner a user could pick instead of a learned detector, and our exported detector (`ours` =
models/rf_hf, RandomForest on every feature group, trained on all of `hf`), on the same files.

- **F1 fail-closed**: a scanner error (crash, timeout, exception, unparseable file) counts as *malicious*
  (the file is blocked); **fail-open**: an error counts as *benign* (the file goes through). precision,
  recall and FPR are the fail-closed figures; `skipped %` = files the tool did not look at (modelscan's
  extension filter) and that count as benign.
- **mode**: `in-process` = the tool's Python API in a warm worker, timed around the call; `cli` = one tool
  process per file, timed as the whole process (start-up included); `subprocess` = our own throwaway process
  per file (weights-only: one `torch.load(weights_only=True)` process behind an audit hook).
- **Sampling**: picklescan, modelscan, fickling, the policy loader and ours scan every file. modelaudit
  (seconds per file) and the Weights-Only Unpickler (one torch process per file) scan a stratified sample
  (label shares kept, then spread over containers, or over evasion techniques on Hide-and-Seek; seed 0):
  the `files` column and the note give the sample size. Weights-only runs on torch checkpoints only (it
  rejects every other pickle by construction), so its rows are about torch files only.
- **unavailable** rows carry no figure: ClamAV has no signature database here (freshclam cannot download),
  VirusTotal has no API key; the note says why.
- **ours on `hf`** is not scored by the exported model (it was trained on those files): the row is the
  pipeline's out-of-fold group k-fold cross-validation of the same RandomForest.
- **paper F1**: SafePickle's and PickleBall's published figures on *their* data (PAPER.md). Our `hf`,
  `pickleball_ood` and `hide_and_seek` sets are rebuilt offline from real libraries with inert payloads, not
  their files, so the columns compare methods, not identical test sets. `policy_loader` is our static
  re-implementation of the PickleBall approach, not PickleBall itself.
- The paper's scanner range on `hf` covers ModelScan, Fickling, ClamAV and VirusTotal; per-tool figures are
  not public, so the range is repeated beside each of those four.
- **Matrices** (Hide-and-Seek, wild): `detected` / `missed` / `error` per malicious file, `clean` /
  `false_positive` / `error` per benign file; `not run` = outside that scanner's sample (or not a torch file).
"""


def write_outputs(out: Path, results: dict[str, DatasetResult], size: str, seconds: float,
                  argv: Sequence[str]) -> None:
    """Write `<out>/scanners.csv` (the 11 columns, then the extras) and `<out>/scanners.md`."""
    frames = [r.metrics for r in results.values() if not r.metrics.empty]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*METRIC_COLUMNS, *EXTRA_COLUMNS])
    extras = [c for c in EXTRA_COLUMNS if c in table.columns]
    table[[*METRIC_COLUMNS, *extras]].to_csv(out / "scanners.csv", index=False)
    command = "python experiments/run_scanners.py" + ("".join(f" {a}" for a in argv))
    lines = ["# Scanners vs our detector", "",
             f"Written by `{command}` on {dt.date.today().isoformat()} in {seconds / 60:.1f} min "
             f"(dataset size `{size}`, 2 shared cores). Per dataset: `scanners/<dataset>/{{metrics,records,"
             "matrix}.csv`; all rows: `scanners.csv`; MLflow runs `scanners_<dataset>` and "
             "`scanners_<dataset>_sampled`.", "", HEADER]
    for dataset, result in results.items():
        lines += dataset_section(dataset, result, size)
    (out / "scanners.md").write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run the scanner benchmark on every dataset and write the tables; return 0 when every dataset ran."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="small datasets and tiny samples of the slow scanners")
    ap.add_argument("--out", default=str(ROOT / "results"), help="results folder (default: results/)")
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset of the datasets")
    ap.add_argument("--scanners", default="", help="comma-separated subset of the scanners (default: all)")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides (e.g. tracking.uri=sqlite:///x.db)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    size = "small" if args.small else "full"
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    wanted = {s for s in args.scanners.split(",") if s} or None
    started = time.perf_counter()
    results: dict[str, DatasetResult] = {}
    failed = []
    for dataset in [d for d in args.datasets.split(",") if d]:
        if dataset not in DATASETS:
            ap.error(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
        try:
            results[dataset] = run_dataset(dataset, size, out, wanted, args.overrides)
        except Exception as exc:  # one dataset failing must not lose the others' results
            log.exception("dataset %s failed", dataset)
            failed.append(f"{dataset} ({type(exc).__name__}: {exc})")
    seconds = time.perf_counter() - started
    write_outputs(out, results, size, seconds, sys.argv[1:] if argv is None else argv)
    print(f"wrote {out / 'scanners.csv'} and {out / 'scanners.md'} in {seconds:.0f} s", flush=True)
    if failed:
        print("failed: " + "; ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
