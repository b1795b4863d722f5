"""Ablation: supervised vs unsupervised detectors — merged from the tables already written (no new runs).

    python experiments/tables/ablation_supervised_vs_unsupervised.py [--out results]

Reads results/main_comparison.csv (hf, group k-fold) and results/{ood,joblib,wild}.csv (trained on hf, tested
once), keeps our models' rows and compares the two families: best and mean F1 per dataset and feature set.
Writes results/ablation_supervised_vs_unsupervised.{md,csv} and results/figures/ablation_supervised_vs_unsupervised.png.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from safepickle_bench.pipeline.experiment_runs import (
    add_context_args,
    context_from_args,
    log_table_run,
    setup_logging,
)
from safepickle_bench.reporting.results_figures import grouped_bars
from safepickle_bench.reporting.tables import caption, pct, write_table

SCRIPT = "experiments/tables/ablation_supervised_vs_unsupervised.py"
SOURCES = (("main_comparison", "hf (group k-fold)"), ("ood", "pickleball_ood"), ("joblib", "joblib"),
           ("wild", "wild"))


def model_rows(out_dir: object, stem: str) -> pd.DataFrame | None:
    """Return our models' rows (model, kind, features, f1) of a written table, or None when it is missing."""
    from pathlib import Path

    path = Path(str(out_dir)) / f"{stem}.csv"
    if not path.is_file():
        return None
    frame = pd.read_csv(path)
    if "model" not in frame:
        frame = frame.rename(columns={"method": "model"})
    if stem == "main_comparison":  # drop the paper-preset reference row
        frame = frame[frame["dataset"].astype(str) == "hf"]
    frame = frame[frame["kind"].isin(["supervised", "unsupervised"])]
    frame = frame[frame["error"].fillna("").astype(str) == ""] if "error" in frame else frame
    return frame[["model", "kind", "features", "f1"]]


def main(argv: list[str] | None = None) -> int:
    """Aggregate both families per dataset and feature set; write the table and figure."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_context_args(ap)
    args = ap.parse_args(argv)
    setup_logging()
    ctx = context_from_args(args)
    started = time.perf_counter()
    rows, missing = [], []
    for stem, label in SOURCES:
        frame = model_rows(ctx.out_dir, stem)
        if frame is None or frame.empty:
            missing.append(f"{stem}.csv")
            continue
        for (features, kind), part in frame.groupby(["features", "kind"]):
            best = part.loc[part["f1"].idxmax()]
            rows.append({"evaluation": label, "features": features, "kind": kind, "n_models": len(part),
                         "best_model": best["model"], "best_f1": float(best["f1"]), "mean_f1": float(part["f1"].mean()),
                         "min_f1": float(part["f1"].min()), "models": ",".join(part["model"])})
    frame = pd.DataFrame(rows)
    display = [{"evaluation": r["evaluation"], "features": r["features"], "family": r["kind"],
                "models": r["n_models"], "best": f"{r['best_model']} {pct(r['best_f1'])}",
                "mean F1 %": pct(r["mean_f1"]), "worst F1 %": pct(r["min_f1"])} for r in rows]
    fig = ctx.figures_dir / "ablation_supervised_vs_unsupervised.png"
    if rows:
        cats = sorted({(r["evaluation"], r["features"]) for r in rows}, key=lambda c: (c[1], c[0]))
        series = {}
        for kind in ("supervised", "unsupervised"):
            for stat in ("best_f1", "mean_f1"):
                series[f"{kind} {stat.split('_')[0]}"] = [
                    next((r[stat] for r in rows if (r["evaluation"], r["features"]) == c and r["kind"] == kind),
                         np.nan) for c in cats]
        grouped_bars([f"{e} [{f}]" for e, f in cats], series, fig, title="supervised vs unsupervised: F1")
    notes = [
        caption(SCRIPT, ctx.command_suffix(), time.perf_counter() - started),
        "",
        "Supervised: rf, catboost, xgboost, lightgbm, logreg, linear_svm, knn, mlp (class weights). Unsupervised: "
        "autoencoder, iforest, lof, ocsvm, trained on benign files only, threshold at 1 % FPR on held-out benign "
        "files. The transfer tables run the opcode feature set for rf and catboost only, so `[opcodes]` rows outside "
        "hf hold supervised models only. Source rows: main_comparison, ood, joblib, wild tables (same size as this "
        "run).",
        *(["", "Missing source tables (run them first): " + ", ".join(missing)] if missing else []),
    ]
    files = write_table(ctx.out_dir, "ablation_supervised_vs_unsupervised", "Ablation — supervised vs unsupervised",
                        frame, display, notes, ["![supervised vs unsupervised](figures/ablation_supervised_vs_unsupervised.png)"])
    log_table_run(ctx, "ablation_supervised_vs_unsupervised", [*files, fig])
    print((ctx.out_dir / "ablation_supervised_vs_unsupervised.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
