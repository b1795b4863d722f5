"""Table 1: every model on `hf` (stratified group k-fold), with the paper's opcode features and with all ours.

    python experiments/tables/main_comparison.py [--small] [--models rf,catboost] [--out results]

Writes results/main_comparison.{md,csv} and the figures roc_pr_<features>.png,
confusion_<features>.png and feature_importance_<features>.png; every run is an MLflow run (plus one
`results/main_comparison` run holding the table). The `features=all` runs export their models to
models/<model>_hf (the model the `ours` scanner uses). A last row runs RandomForest with opcode features on
the `paper` preset of hf (727 files, 648 benign + 79 malicious): the setting closest to the paper's.
"""

from __future__ import annotations

import argparse
import sys
import time

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
    fit_on_dataset,
    log_table_run,
    setup_logging,
    train_experiment,
)
from safepickle_bench.reporting.paper import paper_pct
from safepickle_bench.reporting.results_figures import (
    confusion_grid,
    feature_importance_readable,
    roc_pr_overlay,
)
from safepickle_bench.reporting.tables import caption, num, pct, write_table

SCRIPT = "experiments/tables/main_comparison.py"
CURVE_MODELS = ("rf", "catboost", "xgboost", "lightgbm", "logreg", "mlp", "autoencoder", "iforest", "lof", "ocsvm")
METRIC_COLUMNS = ("f1", "f1_std", "precision", "precision_std", "recall", "recall_std", "accuracy", "roc_auc",
                  "roc_auc_std", "pr_auc", "fpr", "tpr_at_1pct_fpr", "tp", "fp", "tn", "fn",
                  "inference_ms_median", "inference_ms_p95", "inference_batch_ms_per_file",
                  "features_ms_median", "features_ms_p95", "train_seconds", "n_folds", "n_train_files")


def outcome_row(o: TrainOutcome, dataset: str) -> dict[str, object]:
    """Return the CSV row of one run (NaN metrics when it failed)."""
    row: dict[str, object] = {"model": o.model, "kind": "supervised" if o.model in SUPERVISED else "unsupervised",
                              "features": o.features, "dataset": dataset, "run": o.name, "run_id": o.run_id,
                              "error": o.error or "", "wall_seconds": o.wall_seconds}
    row |= {k: o.metrics.get(k, np.nan) for k in METRIC_COLUMNS}
    return row


def display_row(r: dict[str, object]) -> dict[str, object]:
    """Return the Markdown row of one CSV row."""
    paper = paper_pct("hf_f1_rf") if r["model"] == "rf" and r["dataset"] == "hf" else "n/a"
    if r["error"]:
        return {"model": r["model"], "kind": r["kind"], "features": r["features"], "F1 % ± std": "failed",
                "paper F1 %": paper, "precision %": str(r["error"])[:80]}
    return {
        "model": r["model"], "kind": r["kind"], "features": r["features"],
        "F1 % ± std": pct(r["f1"], r["f1_std"]), "paper F1 %": paper,
        "precision %": pct(r["precision"], r["precision_std"]), "recall %": pct(r["recall"], r["recall_std"]),
        "ROC-AUC": num(r["roc_auc"], 4), "FPR %": pct(r["fpr"]), "TPR@1%FPR %": pct(r["tpr_at_1pct_fpr"]),
        "inference ms (single, median)": num(r["inference_ms_median"], 4),
        "inference ms/file (batched)": num(r["inference_batch_ms_per_file"], 5),
        "features ms (median)": num(r["features_ms_median"], 3), "train s": num(r["train_seconds"], 2),
    }


def best_supervised(rows: list[dict[str, object]], features: str) -> str | None:
    """Return the supervised model with the highest F1 (then ROC-AUC) for a feature set."""
    cands = [r for r in rows if r["features"] == features and r["kind"] == "supervised" and not r["error"]
             and r["dataset"] == "hf"]
    if not cands:
        return None
    return str(max(cands, key=lambda r: (float(r["f1"]), float(r["roc_auc"]))).get("model"))


def draw_figures(ctx: ReportContext, outcomes: list[TrainOutcome], rows: list[dict[str, object]]) -> list[str]:
    """Draw the ROC/PR overlay, confusion grid and best-model feature importance per feature set."""
    notes = []
    for features in (PAPER_FEATURES, OUR_FEATURES):
        runs = [o for o in outcomes if o.ok and o.features == features and not o.predictions.empty
                and o.name.startswith(f"{o.model}_hf")]
        if not runs:
            continue
        curves = {o.model: (o.predictions["label"].to_numpy(), o.predictions["score"].to_numpy())
                  for o in runs if o.model in CURVE_MODELS}
        roc_pr_overlay(curves, ctx.figures_dir / f"roc_pr_{features}.png",
                       title=f"hf ({ctx.size}), features={features}: out-of-fold scores, group k-fold")
        confusion_grid({o.model: (int(o.metrics["tn"]), int(o.metrics["fp"]), int(o.metrics["fn"]),
                                  int(o.metrics["tp"])) for o in runs},
                       ctx.figures_dir / f"confusion_{features}.png",
                       title=f"hf ({ctx.size}), features={features}: summed over folds")
        best = best_supervised(rows, features)
        if best is None:
            continue
        try:
            estimator, columns = fit_on_dataset(ctx, f"{best}_hf", best, features)
            imp = estimator.feature_importances()
        except Exception as exc:  # the table stays; the figure note says why it is missing
            notes.append(f"feature importance ({features}) not drawn: {type(exc).__name__}: {exc}")
            continue
        if imp is None:
            notes.append(f"best model with features={features} ({best}) has no feature importance")
            continue
        imp = np.asarray(imp, dtype=float)
        imp = imp / imp.sum() if imp.sum() > 0 else imp
        feature_importance_readable(columns, imp, ctx.figures_dir / f"feature_importance_{features}.png",
                                    title=f"{best}, features={features}, fitted on all of hf ({ctx.size}): top 25")
        top = np.argsort(-imp)[:10]
        notes.append(f"Top features of {best} (features={features}): "
                     + ", ".join(f"`{columns[i]}` {imp[i]:.3f}" for i in top))
    return notes


def main(argv: list[str] | None = None) -> int:
    """Run every model with both feature sets, write the table and figures; 0 when no run failed."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_context_args(ap)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--features", default=f"{PAPER_FEATURES},{OUR_FEATURES}")
    args = ap.parse_args(argv)
    setup_logging()
    ctx = context_from_args(args)
    started = time.perf_counter()
    outcomes: list[TrainOutcome] = []
    models = [m for m in args.models.split(",") if m]
    for features in args.features.split(","):
        for i, model in enumerate(models, 1):
            print(f"[main_comparison] features={features} model {i}/{len(models)}: {model}", file=sys.stderr,
                  flush=True)
            name = f"{model}_hf" if features == OUR_FEATURES else f"{model}_hf_{features}"
            outcomes.append(train_experiment(ctx, f"{model}_hf", model, features, name=name,
                                             export=features == OUR_FEATURES))
    rows = [outcome_row(o, "hf") for o in outcomes]
    paper_like = train_experiment(ctx, "rf_hf", "rf", PAPER_FEATURES, name="rf_hf_paper_opcodes",
                                  extra=["dataset.size=paper"])
    paper_row = outcome_row(paper_like, "hf (paper preset: 648 + 79)")
    frame = pd.DataFrame([*rows, paper_row])
    notes = draw_figures(ctx, outcomes, rows)
    n_files = int(np.nanmax([float(r["n_train_files"]) for r in rows])) if rows else 0
    seconds = time.perf_counter() - started
    best = {f: best_supervised(rows, f) for f in (PAPER_FEATURES, OUR_FEATURES)}
    text_notes = [
        caption(SCRIPT, ctx.command_suffix(), seconds),
        "",
        f"Dataset `hf` ({ctx.size}, {n_files} files), stratified group k-fold (an infected copy never meets its "
        "carrier across folds); mean ± std over folds. `features=opcodes` is the paper's representation (the "
        "normalised opcode-frequency vector); `features=all` adds our structure, imports, strings and n-gram "
        "groups. Supervised models use class weights; unsupervised ones train on benign files only, threshold at "
        "1 % FPR on held-out benign files. Latency inside each run: features = analysis + featurisation of one "
        "file without cache (median over up to 100 files); inference = one `predict_proba` call on one row, or "
        "per file within batches of 256.",
        "",
        "`paper F1` is SafePickle's RandomForest on its own 727-file HF set (opcode features); no other per-model "
        "figure is public. Our files are generated (real libraries' save functions, inert payloads injected), "
        "not the paper's Hugging Face downloads, so the columns are not like for like.",
        *(["", "**Fast presets** (few trees/iterations): a smoke run, not a result."] if ctx.fast else []),
    ]
    pr = paper_row
    sections = [
        "## Closest to the paper's setting",
        "",
        f"RandomForest, `features=opcodes`, hf `paper` preset (727 files: 648 benign + 79 malicious), group "
        f"k-fold: F1 {pct(pr['f1'], pr['f1_std'])} % (paper: {paper_pct('hf_f1_rf')} %), precision "
        f"{pct(pr['precision'])} %, recall {pct(pr['recall'])} %, ROC-AUC {num(pr['roc_auc'], 4)}"
        + (f" — failed: {pr['error']}" if pr["error"] else "") + ".",
        "",
        "## Figures",
        "",
        *[f"![{kind} {f}](figures/{kind}_{f}.png)" for f in (PAPER_FEATURES, OUR_FEATURES)
          for kind in ("roc_pr", "confusion", "feature_importance")],
        "",
        f"Best supervised model (F1, then ROC-AUC): opcodes -> {best[PAPER_FEATURES]}, all -> {best[OUR_FEATURES]}.",
        *[f"- {n}" for n in notes],
    ]
    files = write_table(ctx.out_dir, "main_comparison", "Table 1 — every model on hf", frame,
                        [display_row(r) for r in rows], text_notes, sections)
    headline = {f"{r['model']}.{r['features']}.f1": float(r["f1"]) for r in rows if not r["error"]}
    figures = [ctx.figures_dir / f"{kind}_{f}.png" for f in (PAPER_FEATURES, OUR_FEATURES)
               for kind in ("roc_pr", "confusion", "feature_importance")]
    log_table_run(ctx, "main_comparison", files + figures, metrics=headline)
    print((ctx.out_dir / "main_comparison.md").read_text(encoding="utf-8"))
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
