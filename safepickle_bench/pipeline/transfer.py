"""Train-on-hf / test-on-another-dataset runs for every model, and their table rows (OOD, joblib, wild, H&S)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from safepickle_bench.pipeline.experiment_runs import (
    MODELS,
    OUR_FEATURES,
    PAPER_FEATURES,
    SUPERVISED,
    ReportContext,
    TrainOutcome,
    add_context_args,
    context_from_args,
    log_table_run,
    setup_logging,
    train_experiment,
)
from safepickle_bench.reporting.scanner_results import (
    missing_note,
    read_scanner_metrics,
    scanner_display_rows,
)
from safepickle_bench.reporting.tables import caption, num, pct, write_table

PAPER_SETTING_MODELS: tuple[str, ...] = ("rf", "catboost")
"""Models also run with the paper's opcode features in the transfer tables."""

ROW_METRICS: tuple[str, ...] = ("f1", "precision", "recall", "accuracy", "roc_auc", "pr_auc", "fpr",
                                "tpr_at_1pct_fpr", "tp", "fp", "tn", "fn", "n_eval_files", "n_train_files",
                                "train_seconds", "inference_ms_median", "features_ms_median")


def run_transfer(ctx: ReportContext, experiment: str, tag: str, models: Sequence[str] = MODELS,
                 paper_models: Sequence[str] = PAPER_SETTING_MODELS, extra: Sequence[str] = ()) -> list[TrainOutcome]:
    """Train each model on hf and test it on the experiment's test dataset: `all` features, plus `opcodes`
    for `paper_models` (the paper's setting)."""
    plan = [(m, OUR_FEATURES) for m in models] + [(m, PAPER_FEATURES) for m in paper_models if m in models]
    out = []
    for i, (model, features) in enumerate(plan, 1):
        print(f"[{tag}] {i}/{len(plan)}: {model} features={features}", file=sys.stderr, flush=True)
        out.append(train_experiment(ctx, experiment, model, features, name=f"{model}_{tag}_{features}",
                                    extra=extra))
    return out


def transfer_frame_rows(outcomes: Sequence[TrainOutcome], test_dataset: str) -> list[dict[str, object]]:
    """Return one CSV row per run: model, kind, features, test dataset, metrics (NaN when it failed)."""
    rows = []
    for o in outcomes:
        row: dict[str, object] = {"method": o.model, "kind": "supervised" if o.model in SUPERVISED else "unsupervised",
                                  "features": o.features, "train_dataset": "hf", "test_dataset": test_dataset,
                                  "run": o.name, "run_id": o.run_id, "error": o.error or ""}
        row |= {k: o.metrics.get(k, np.nan) for k in ROW_METRICS}
        rows.append(row)
    return rows


def model_display_row(r: dict[str, object], paper: str = "n/a") -> dict[str, object]:
    """Return the Markdown row of a model run (same columns as the scanners' rows where they overlap)."""
    if r.get("error"):
        return {"method": f"{r['method']} ({r['features']})", "F1 % fail-closed": "failed",
                "F1 % fail-open": "failed", "paper %": paper, "note": str(r["error"])[:100]}
    f1 = pct(r["f1"])
    return {
        "method": f"{r['method']} ({r['features']})",
        "F1 % fail-closed": f1,
        "F1 % fail-open": f1,
        "paper %": paper,
        "precision %": pct(r["precision"]),
        "recall %": pct(r["recall"]),
        "FPR %": pct(r["fpr"]),
        "error %": "n/a (scores every file)",
        "files": str(int(float(r["n_eval_files"]))) if r.get("n_eval_files") == r.get("n_eval_files") else "n/a",
        "ms/file median": num(float(r["features_ms_median"]) + float(r["inference_ms_median"]), 2),
        "mode": "in-process",
        "note": f"{r['kind']}, trained on hf; ROC-AUC {num(r['roc_auc'], 3)}",
    }


@dataclass(frozen=True)
class TransferTable:
    """What one train-on-hf / test-on-X table needs: dataset, experiment, file stem, texts, paper figures."""

    dataset: str
    experiment: str
    stem: str
    title: str
    script: str
    description: str
    paper_rf_opcodes: str = "n/a"
    paper_scanners: dict[str, str] = field(default_factory=dict)


def transfer_table_main(spec: TransferTable, argv: list[str] | None = None, doc: str | None = None) -> int:
    """Command-line entry of a transfer table: run every model, merge the scanners' rows, write md+csv."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_context_args(ap)
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args(argv)
    setup_logging()
    ctx = context_from_args(args)
    started = time.perf_counter()
    outcomes = run_transfer(ctx, spec.experiment, f"hf_to_{spec.dataset}", [m for m in args.models.split(",") if m])
    rows = transfer_frame_rows(outcomes, spec.dataset)
    display = [model_display_row(r, spec.paper_rf_opcodes if r["method"] == "rf" and r["features"] == "opcodes"
                                 else "n/a") for r in rows]
    scanners = read_scanner_metrics(ctx.out_dir, spec.dataset)
    frame = pd.DataFrame(rows)
    extra_notes = []
    if scanners is None:
        extra_notes.append(missing_note(ctx.out_dir, spec.dataset))
    else:
        display += scanner_display_rows(scanners, spec.paper_scanners)
        frame = pd.concat([frame, scanners.assign(method=scanners["scanner"], kind="scanner",
                                                   test_dataset=spec.dataset)], ignore_index=True)
    n = next((int(r["n_eval_files"]) for r in rows if not r["error"]), 0)
    notes = [
        caption(spec.script, ctx.command_suffix(), time.perf_counter() - started),
        "",
        f"Every model trained on all of `hf` ({ctx.size}) and tested once on `{spec.dataset}` ({n} files); "
        "test-set metrics (no std). `(all)` = every feature group of ours, `(opcodes)` = the paper's "
        "opcode-frequency vector. " + spec.description,
        "",
        "Scanner rows are read from the scanner benchmark (`results/scanners/<dataset>/metrics.csv`, never re-run "
        "here): fail-closed counts a scanner error as a detection, fail-open as a pass. Our models never return an "
        "error verdict (an unreadable file still gets a feature row), so both F1 columns are the same for them; "
        "their ms/file = analysis+features median + single-row inference median.",
        *(["", *extra_notes] if extra_notes else []),
        *(["", "**Fast presets** (small datasets): a smoke run, not a result."] if ctx.fast else []),
    ]
    files = write_table(ctx.out_dir, spec.stem, spec.title, frame, display, notes)
    log_table_run(ctx, spec.stem, files, metrics={f"{r['method']}.{r['features']}.f1": float(r["f1"])
                                                  for r in rows if not r["error"]})
    print((ctx.out_dir / f"{spec.stem}.md").read_text(encoding="utf-8"))
    return 1 if any(r["error"] for r in rows) else 0
