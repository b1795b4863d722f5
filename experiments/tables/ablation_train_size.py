"""Ablation: training-set size — a learning curve from the paper's 727 files upward (5 sizes).

    python experiments/tables/ablation_train_size.py [--small] [--model rf] [--out results]

Subsets of `hf` (whole split groups drawn at random, so a carrier and its infected copies stay together) of 5
sizes from 727 (the paper's set size) to all of hf; at each size: stratified group k-fold F1 on the subset,
and F1 on `pickleball_ood` after fitting on the whole subset. For both feature sets (`opcodes`, the paper's;
`all`, ours). The `paper` preset of hf (727 files with the paper's 648/79 class balance) is a reference row.
With --small the sizes scale down to the small hf (5 sizes from 26 % of it to all of it).
Built from the pipeline's own pieces (dataset loading, estimator, splitter, metrics); logged to MLflow as
one parent run with a nested run per point. Writes results/ablation_train_size.{md,csv} and
results/figures/learning_curve.png.
"""

from __future__ import annotations

import argparse
import sys
import time

import mlflow
import numpy as np
import pandas as pd
from hydra.utils import instantiate

from safepickle_bench.analysis.limits import Limits
from safepickle_bench.config import run_config
from safepickle_bench.metrics import detection_metrics
from safepickle_bench.pipeline.data import LabelledFeatures, load_labelled_features
from safepickle_bench.pipeline.evaluate import evaluate_group_kfold
from safepickle_bench.pipeline.experiment_runs import (
    OUR_FEATURES,
    PAPER_FEATURES,
    add_context_args,
    compose_config,
    context_from_args,
    features_overrides,
    log_table_run,
    setup_logging,
)
from safepickle_bench.pipeline.tracking import setup_mlflow
from safepickle_bench.pipeline.train import build_estimator
from safepickle_bench.reporting.paper import paper_value
from safepickle_bench.reporting.results_figures import learning_curve
from safepickle_bench.reporting.tables import caption, pct, write_table

SCRIPT = "experiments/tables/ablation_train_size.py"
PAPER_SIZE = 727
N_SIZES = 5


def sizes_for(n_total: int) -> list[int]:
    """Return 5 sizes from the paper's 727 (or the same share of a smaller set) up to n_total."""
    low = PAPER_SIZE if n_total >= PAPER_SIZE * 1.5 else max(20, round(n_total * PAPER_SIZE / 2750))
    return sorted({int(round(x)) for x in np.linspace(low, n_total, N_SIZES)})


def group_subset(groups: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Return the row indices of randomly drawn whole groups, stopping once `n` rows are reached (the last
    group is kept whole, so a subset may hold a few rows more than `n`)."""
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    rng.shuffle(uniq)
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(str(g), []).append(i)
    chosen: list[int] = []
    for g in uniq:
        if len(chosen) >= n:
            break
        chosen += by_group[str(g)]
    return np.sort(np.array(chosen, dtype=int))


def evaluate_point(cfg: object, data: LabelledFeatures, idx: np.ndarray, ood: LabelledFeatures) -> dict[str, float]:
    """Group k-fold on the subset, then fit on it and test on the OOD set; return the metrics."""
    X = data.X.to_numpy(dtype=np.float64)[idx]
    y, groups = data.y[idx], data.groups[idx]
    estimator = build_estimator(cfg)  # type: ignore[arg-type]
    ev = evaluate_group_kfold(estimator, X, y, groups, instantiate(cfg.split), data.columns,  # type: ignore[attr-defined]
                              n_jobs=cfg.backend.n_jobs, top_k=0)  # type: ignore[attr-defined]
    Xo = ood.X[data.columns].to_numpy(dtype=np.float64)
    scores = ev.final.predict_proba(Xo)[:, 1]
    om = detection_metrics(ood.y, scores, ev.final.predict(Xo))
    return {"n_files": float(len(idx)), "n_malicious": float(y.sum()), "f1": ev.metrics["f1"],
            "f1_std": ev.metrics["f1_std"], "roc_auc": ev.metrics["roc_auc"], "ood_f1": om["f1"],
            "ood_roc_auc": om["roc_auc"]}


def main(argv: list[str] | None = None) -> int:
    """Draw the learning curve for both feature sets; write the table and the figure."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_context_args(ap)
    ap.add_argument("--model", default="rf")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    setup_logging()
    ctx = context_from_args(args)
    started = time.perf_counter()
    rows = []
    tracking = None
    for features in (PAPER_FEATURES, OUR_FEATURES):
        cfg = run_config(compose_config([f"experiment={args.model}_hf", f"model={args.model}",
                                         *features_overrides(features), *ctx.overrides()]), args.model)
        tracking = cfg.tracking
        limits = Limits.from_mapping(cfg.limits)
        data = load_labelled_features(cfg.dataset, cfg.paths.data_dir, cfg.raw.get("features"), cfg.backend, limits)
        ood_ref = type(cfg.dataset)(name="pickleball_ood", size=ctx.size, seed=cfg.dataset.seed)
        ood = load_labelled_features(ood_ref, cfg.paths.data_dir, cfg.raw.get("features"), cfg.backend, limits)
        for n in sizes_for(len(data.y)):
            print(f"[ablation_train_size] features={features} n={n}", file=sys.stderr, flush=True)
            idx = group_subset(data.groups, n, args.seed)
            rows.append({"features": features, "dataset": f"hf {ctx.size} subset", "model": args.model,
                         **evaluate_point(cfg, data, idx, ood)})
        # The paper-shaped reference: hf `paper` preset, 648 benign + 79 malicious.
        paper_ref = type(cfg.dataset)(name="hf", size="paper", seed=cfg.dataset.seed)
        pdata = load_labelled_features(paper_ref, cfg.paths.data_dir, cfg.raw.get("features"), cfg.backend, limits)
        full_ood = type(cfg.dataset)(name="pickleball_ood", size="full", seed=cfg.dataset.seed)
        pood = ood if ctx.size == "full" else load_labelled_features(full_ood, cfg.paths.data_dir,
                                                                     cfg.raw.get("features"), cfg.backend, limits)
        print(f"[ablation_train_size] features={features} hf paper preset", file=sys.stderr, flush=True)
        rows.append({"features": features, "dataset": "hf paper preset (648+79)", "model": args.model,
                     **evaluate_point(cfg, pdata, np.arange(len(pdata.y)), pood)})
    frame = pd.DataFrame(rows)
    if tracking is not None:
        setup_mlflow(tracking)
        with mlflow.start_run(run_name=f"ablation_train_size/{args.model}"):
            mlflow.set_tags({"task": "ablation_train_size", "dataset.size": ctx.size})
            for r in rows:
                with mlflow.start_run(run_name=f"{r['features']}/{r['dataset']}/{int(r['n_files'])}", nested=True):
                    mlflow.log_params({"features": r["features"], "dataset": r["dataset"], "model": r["model"]})
                    mlflow.log_metrics({k: float(v) for k, v in r.items()
                                        if isinstance(v, float) and np.isfinite(v)})
    curve = {}
    for features in (PAPER_FEATURES, OUR_FEATURES):
        part = frame[(frame["features"] == features) & frame["dataset"].str.contains("subset")]
        curve[f"{features}: hf group k-fold"] = (part["n_files"], part["f1"], part["f1_std"])
        curve[f"{features}: pickleball_ood"] = (part["n_files"], part["ood_f1"], [np.nan] * len(part))
    fig = ctx.figures_dir / "learning_curve.png"
    learning_curve(curve, fig, reference={"paper RF F1 90.01 % (727 files)": paper_value("hf_f1_rf") or 0.0},
                   title=f"{args.model}: F1 vs training files (hf {ctx.size})")
    display = [{"features": r["features"], "training data": r["dataset"], "files": int(r["n_files"]),
                "malicious": int(r["n_malicious"]), "F1 % hf (group k-fold)": pct(r["f1"], r["f1_std"]),
                "F1 % pickleball_ood": pct(r["ood_f1"]),
                "paper F1 %": pct(paper_value("hf_f1_rf")) if r["features"] == PAPER_FEATURES
                and int(r["n_files"]) == PAPER_SIZE else "n/a"} for r in rows]
    notes = [
        caption(SCRIPT, ctx.command_suffix(), time.perf_counter() - started),
        "",
        f"Model `{args.model}`. Subsets draw whole split groups at random (seed {args.seed}) until the size is "
        "reached, so the class balance follows hf's (about 24 % malicious); F1 is the mean ± std over the "
        "group k-fold of that subset; `pickleball_ood` F1 is the model fitted on the whole subset, tested once "
        "(the full-size OOD set for the paper-preset row). The `hf paper preset` rows have the paper's size and "
        "balance (727 files, 648 benign + 79 malicious). Paper: 90.01 % F1 (RandomForest, opcode features, 727 "
        "files).",
        *(["", "**Fast presets** (small datasets): a smoke run, not a result."] if ctx.fast else []),
    ]
    files = write_table(ctx.out_dir, "ablation_train_size", "Ablation — training-set size (learning curve)", frame,
                        display, notes, ["![learning curve](figures/learning_curve.png)"])
    log_table_run(ctx, "ablation_train_size", [*files, fig])
    print((ctx.out_dir / "ablation_train_size.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
