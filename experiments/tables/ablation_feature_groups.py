"""Ablation: feature groups — the paper's `opcodes` alone, each group added to it, each group removed from `all`.

    python experiments/tables/ablation_feature_groups.py [--small] [--model rf] [--out results]

One model (RandomForest, the paper's best) per feature set; F1 on `hf` (stratified group k-fold), on
`pickleball_ood` and on `wild` (both: trained on all of hf, tested once). Every run is an MLflow run.
Writes results/ablation_feature_groups.{md,csv} and results/figures/ablation_feature_groups.png.
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from safepickle_bench.pipeline.experiment_runs import (
    add_context_args,
    context_from_args,
    log_table_run,
    setup_logging,
    train_experiment,
)
from safepickle_bench.reporting.results_figures import grouped_bars
from safepickle_bench.reporting.tables import caption, num, pct, write_table

SCRIPT = "experiments/tables/ablation_feature_groups.py"
OTHER_GROUPS = ("structure", "imports", "strings", "ngrams", "calls")
FEATURE_SETS: tuple[tuple[str, str], ...] = (
    ("opcodes", "paper: opcodes only"),
    *((f"opcodes+{g}", f"opcodes + {g}") for g in OTHER_GROUPS),
    *((f"all_but_{g}", f"all - {g}") for g in ("opcodes", *OTHER_GROUPS)),
    ("all", "all groups"),
)
EVALS: tuple[tuple[str, str], ...] = (("hf", "rf_hf"), ("pickleball_ood", "rf_pickleball_ood"), ("wild", "rf_wild"))
FAST_LATENCY = ("latency.n_files=20",)
"""Ablation runs sample fewer files for the latency metrics (latency has its own table)."""


def main(argv: list[str] | None = None) -> int:
    """Run the model on every feature set and evaluation; write the table and the bar figure."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_context_args(ap)
    ap.add_argument("--model", default="rf")
    ap.add_argument("--feature-sets", default=None, help="comma list of feature sets to run (default: all 11)")
    args = ap.parse_args(argv)
    setup_logging()
    ctx = context_from_args(args)
    started = time.perf_counter()
    rows = []
    wanted = set(args.feature_sets.split(",")) if args.feature_sets else None
    sets = [(f, label) for f, label in FEATURE_SETS if wanted is None or f in wanted]
    for i, (features, label) in enumerate(sets, 1):
        print(f"[ablation_feature_groups] {i}/{len(sets)}: {label}", file=sys.stderr, flush=True)
        row: dict[str, object] = {"features": features, "label": label, "model": args.model}
        for dataset, experiment in EVALS:
            o = train_experiment(ctx, experiment, args.model, features,
                                 name=f"ablation_features/{args.model}/{features}/{dataset}", extra=FAST_LATENCY)
            row[f"{dataset}_f1"] = o.metrics.get("f1", float("nan"))
            row[f"{dataset}_f1_std"] = o.metrics.get("f1_std", float("nan"))
            row[f"{dataset}_roc_auc"] = o.metrics.get("roc_auc", float("nan"))
            row[f"{dataset}_run_id"] = o.run_id
            row[f"{dataset}_error"] = o.error or ""
        rows.append(row)
    frame = pd.DataFrame(rows)
    display = [{"feature set": r["label"], "groups": r["features"],
                "F1 % hf (group k-fold)": pct(r["hf_f1"], r["hf_f1_std"]),
                "F1 % pickleball_ood": pct(r["pickleball_ood_f1"]), "F1 % wild": pct(r["wild_f1"]),
                "ROC-AUC hf / ood / wild": " / ".join(num(r[f"{d}_roc_auc"], 3) for d, _ in EVALS),
                "errors": "; ".join(str(r[f"{d}_error"])[:60] for d, _ in EVALS if r[f"{d}_error"])}
               for r in rows]
    fig = ctx.figures_dir / "ablation_feature_groups.png"
    grouped_bars([r["label"] for r in rows], {d: [r[f"{d}_f1"] for r in rows] for d, _ in EVALS}, fig,
                 title=f"{args.model}: F1 by feature set (hf: group k-fold; ood, wild: trained on hf)")
    notes = [
        caption(SCRIPT, ctx.command_suffix(), time.perf_counter() - started),
        "",
        f"Model `{args.model}` (class weights), `hf` ({ctx.size}) with stratified group k-fold (mean ± std over "
        f"folds); `pickleball_ood` ({ctx.size}) and `wild` (third-party files): trained on all of hf, tested once. "
        "Groups: `opcodes` = the paper's normalised opcode-frequency vector; `structure` = streams, containers, "
        "memo and stack shape; `imports` = imported globals and calls mapped to a danger taxonomy; `strings` = "
        "string statistics; `ngrams` = hashed opcode bi/tri-grams.",
        *(["", "**Fast presets** (small datasets): a smoke run, not a result."] if ctx.fast else []),
    ]
    files = write_table(ctx.out_dir, "ablation_feature_groups", "Ablation — feature groups", frame, display, notes,
                        ["![ablation feature groups](figures/ablation_feature_groups.png)"])
    log_table_run(ctx, "ablation_feature_groups", [*files, fig],
                  metrics={f"{r['features']}.{d}.f1": float(r[f"{d}_f1"]) for r in rows for d, _ in EVALS})
    print((ctx.out_dir / "ablation_feature_groups.md").read_text(encoding="utf-8"))
    return 1 if any(r[f"{d}_error"] for r in rows for d, _ in EVALS) else 0


if __name__ == "__main__":
    raise SystemExit(main())
