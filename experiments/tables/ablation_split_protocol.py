"""Ablation: split protocol — random (plain stratified) k-fold vs stratified group k-fold on `hf`.

    python experiments/tables/ablation_split_protocol.py [--small] [--models rf,lightgbm,logreg,knn] [--out results]

A random split lets an infected copy land in a test fold while its clean carrier (or a sibling copy of the same
carrier) is in training; the group split keeps every carrier's files in one fold. The difference in F1 is how
much carrier leakage would inflate the scores. Both feature sets. Every run is an MLflow run.
Writes results/ablation_split_protocol.{md,csv} and results/figures/ablation_split_protocol.png.
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from safepickle_bench.pipeline.experiment_runs import (
    OUR_FEATURES,
    PAPER_FEATURES,
    add_context_args,
    context_from_args,
    log_table_run,
    setup_logging,
    train_experiment,
)
from safepickle_bench.reporting.results_figures import grouped_bars
from safepickle_bench.reporting.tables import caption, pct, write_table

SCRIPT = "experiments/tables/ablation_split_protocol.py"
SPLITS = (("stratified_kfold", "random split"), ("group_kfold", "group split"))


def main(argv: list[str] | None = None) -> int:
    """Run each model with both splits and both feature sets; write the table and figure."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_context_args(ap)
    ap.add_argument("--models", default="rf,lightgbm,logreg,knn")
    args = ap.parse_args(argv)
    setup_logging()
    ctx = context_from_args(args)
    started = time.perf_counter()
    rows = []
    models = [m for m in args.models.split(",") if m]
    for features in (PAPER_FEATURES, OUR_FEATURES):
        for model in models:
            row: dict[str, object] = {"model": model, "features": features}
            for split, _ in SPLITS:
                print(f"[ablation_split_protocol] {model} features={features} split={split}", file=sys.stderr,
                      flush=True)
                o = train_experiment(ctx, f"{model}_hf", model, features,
                                     name=f"ablation_split/{model}/{features}/{split}",
                                     extra=[f"split={split}", "latency.n_files=20"])
                row[f"{split}_f1"] = o.metrics.get("f1", float("nan"))
                row[f"{split}_f1_std"] = o.metrics.get("f1_std", float("nan"))
                row[f"{split}_recall"] = o.metrics.get("recall", float("nan"))
                row[f"{split}_run_id"] = o.run_id
                row[f"{split}_error"] = o.error or ""
            row["inflation_f1"] = float(row["stratified_kfold_f1"]) - float(row["group_kfold_f1"])  # type: ignore[arg-type]
            rows.append(row)
    frame = pd.DataFrame(rows)
    display = [{"model": r["model"], "features": r["features"],
                "F1 % random split": pct(r["stratified_kfold_f1"], r["stratified_kfold_f1_std"]),
                "F1 % group split": pct(r["group_kfold_f1"], r["group_kfold_f1_std"]),
                "random - group (points)": f"{100 * float(r['inflation_f1']):+.2f}",
                "errors": "; ".join(str(r[f"{s}_error"])[:60] for s, _ in SPLITS if r[f"{s}_error"])} for r in rows]
    fig = ctx.figures_dir / "ablation_split_protocol.png"
    grouped_bars([f"{r['model']} ({r['features']})" for r in rows],
                 {label: [r[f"{s}_f1"] for r in rows] for s, label in SPLITS}, fig,
                 title=f"F1 on hf ({ctx.size}): random vs group k-fold")
    notes = [
        caption(SCRIPT, ctx.command_suffix(), time.perf_counter() - started),
        "",
        f"`hf` ({ctx.size}), 5 folds each, same seed; `random split` = `split=stratified_kfold` (ignores the "
        "manifest's `group`), `group split` = `split=group_kfold` (the project's default: a carrier and its infected "
        "copies share a fold). Mean ± std over folds. A positive difference is the optimism a leaky split adds.",
        *(["", "**Fast presets** (small datasets): a smoke run, not a result."] if ctx.fast else []),
    ]
    files = write_table(ctx.out_dir, "ablation_split_protocol", "Ablation — random vs group split", frame, display,
                        notes, ["![split protocol](figures/ablation_split_protocol.png)"])
    log_table_run(ctx, "ablation_split_protocol", [*files, fig],
                  metrics={f"{r['model']}.{r['features']}.inflation_f1": float(r["inflation_f1"]) for r in rows})
    print((ctx.out_dir / "ablation_split_protocol.md").read_text(encoding="utf-8"))
    return 1 if any(r[f"{s}_error"] for r in rows for s, _ in SPLITS) else 0


if __name__ == "__main__":
    raise SystemExit(main())
