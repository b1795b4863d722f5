"""Figures of results/: ROC/PR overlays, confusion-matrix grids, latency bars, learning curves, ablation bars."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import auc, precision_recall_curve, roc_curve  # noqa: E402

from safepickle_bench.reporting.figures import (  # noqa: E402
    feature_importance_png,
    save_figure,
    style_roc_pr_axes,
)

GROUP_LABELS = {"opcodes": "opcode share", "structure": "structure", "imports": "imports",
                "strings": "strings", "ngrams": "opcode n-gram bucket"}


def readable_feature_name(column: str) -> str:
    """Turn `<group>__<name>` into "name (group label)", e.g. `opcodes__REDUCE` -> "REDUCE (opcode share)"."""
    group, _, name = column.partition("__")
    if not name:
        return column
    return f"{name.replace('_', ' ') if group != 'opcodes' else name} ({GROUP_LABELS.get(group, group)})"


def roc_pr_overlay(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str = "") -> Path:
    """Draw the ROC and precision-recall curves of several models (name -> (labels, scores)) to `path`."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.4))
    base = None
    for name, (y, s) in curves.items():
        y, s = np.asarray(y, dtype=int), np.asarray(s, dtype=float)
        if len(np.unique(y)) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, s)
        prec, rec, _ = precision_recall_curve(y, s)
        ax1.plot(fpr, tpr, lw=1.3, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        ax2.plot(rec, prec, lw=1.3, label=name)
        base = float(np.mean(y))
    if base is not None:
        ax2.axhline(base, ls=":", color="grey", lw=1)
    style_roc_pr_axes(ax1, ax2)
    ax1.legend(fontsize=7, loc="lower right")
    ax2.legend(fontsize=7, loc="lower left")
    return save_figure(fig, path, title)


def confusion_grid(matrices: Mapping[str, tuple[int, int, int, int]], path: Path, title: str = "") -> Path:
    """Draw one 2x2 confusion matrix (tn, fp, fn, tp) per model in a grid to `path`."""
    n = max(1, len(matrices))
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.7 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, (tn, fp, fn, tp)) in zip(axes.ravel(), matrices.items(), strict=False):
        ax.axis("on")
        cm = np.array([[tn, fp], [fn, tp]])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(int(v)), ha="center", va="center",
                    color="white" if v > cm.max() / 2 else "black", fontsize=10)
        ax.set_xticks([0, 1], ["benign", "malicious"], fontsize=7)
        ax.set_yticks([0, 1], ["benign", "malicious"], fontsize=7)
        ax.set_title(name, fontsize=9)
    fig.supxlabel("predicted", fontsize=9)
    fig.supylabel("true", fontsize=9)
    return save_figure(fig, path, title)


def feature_importance_readable(columns: Sequence[str], values: np.ndarray, path: Path, top: int = 25,
                                title: str = "") -> Path:
    """Draw the `top` most important features, with readable names, as horizontal bars to `path`."""
    return feature_importance_png([readable_feature_name(c) for c in columns], values, path, top=top, title=title,
                                  xlabel="importance (model's own measure, normalised to sum 1)")

def latency_bars(labels: Sequence[str], ms: Sequence[float], kinds: Sequence[str], path: Path,
                 reference: Mapping[str, float] | None = None, title: str = "") -> Path:
    """Draw milliseconds per file as horizontal bars on a log scale, coloured by kind, with reference lines."""
    colours = {"model": "#4472c4", "features": "#70ad47", "scanner": "#ed7d31", "end-to-end": "#7030a0"}
    keep = [(lab, v, k) for lab, v, k in zip(labels, ms, kinds, strict=True) if v is not None and v > 0
            and math.isfinite(v)]
    fig, ax = plt.subplots(figsize=(8, 0.32 * max(len(keep), 1) + 1.5))
    for i, (_lab, v, k) in enumerate(keep):
        ax.barh(i, v, color=colours.get(k, "grey"), label=k)
        ax.text(v * 1.08, i, f"{v:.3g}", va="center", fontsize=7)
    ax.set_yticks(range(len(keep)), [lab for lab, _, _ in keep], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("ms per file (median; log scale)")
    for name, v in (reference or {}).items():
        ax.axvline(v, ls="--", color="black", lw=1)
        ax.text(v, len(keep) - 0.4, f" {name}", fontsize=7, va="top")
    handles, names = ax.get_legend_handles_labels()
    uniq = dict(zip(names, handles, strict=True))
    ax.legend(uniq.values(), uniq.keys(), fontsize=8, loc="lower right")
    ax.set_title(title or "latency per file", fontsize=10)
    return save_figure(fig, path)


def learning_curve(series: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float]]], path: Path,
                   reference: Mapping[str, float] | None = None, title: str = "",
                   ylabel: str = "F1") -> Path:
    """Draw F1 against training-set size (name -> (sizes, means, stds)) with horizontal reference lines."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, (sizes, means, stds) in series.items():
        x, m, s = np.asarray(sizes, float), np.asarray(means, float), np.asarray(stds, float)
        ax.plot(x, m, marker="o", lw=1.5, label=name)
        ok = np.isfinite(s)
        if ok.any():
            ax.fill_between(x[ok], (m - s)[ok], (m + s)[ok], alpha=0.15)
    for name, v in (reference or {}).items():
        ax.axhline(v, ls="--", color="grey", lw=1)
        ax.text(ax.get_xlim()[0], v, f" {name}", fontsize=7, va="bottom")
    ax.set(xlabel="training files", ylabel=ylabel, title=title or "learning curve")
    ax.set_ylim(max(0.0, ax.get_ylim()[0]), 1.01)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def grouped_bars(categories: Sequence[str], series: Mapping[str, Sequence[float]], path: Path,
                 ylabel: str = "F1", title: str = "", reference: Mapping[str, float] | None = None) -> Path:
    """Draw grouped vertical bars (one group per category, one bar per series) to `path`."""
    n_cat, n_ser = len(categories), max(1, len(series))
    width = 0.8 / n_ser
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * n_cat * max(1, n_ser) / 1.5 + 2), 4.4))
    x = np.arange(n_cat)
    for k, (name, values) in enumerate(series.items()):
        vals = np.array([np.nan if v is None else float(v) for v in values])
        ax.bar(x + (k - (n_ser - 1) / 2) * width, np.nan_to_num(vals, nan=0.0), width, label=name)
    for name, v in (reference or {}).items():
        ax.axhline(v, ls="--", color="grey", lw=1)
        ax.text(-0.5, v, f" {name}", fontsize=7, va="bottom")
    ax.set_xticks(x, categories, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def recall_vs_padding(table: pd.DataFrame, path: Path) -> Path:
    """Plot recall against padding ratio (none, 1x ... 1000x), one line per method and feature set."""
    pad = table[table["attack"].isin(["none", "padding"])].copy()
    pad["x"] = [0.0 if a == "none" else float(r) for a, r in zip(pad["attack"], pad["ratio"], strict=True)]
    fig, ax = plt.subplots(figsize=(10, 5.5))
    lines = list(pad.groupby(["method", "features"], sort=False))
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(lines), 2)))
    styles = {"opcodes": ("-.", "s"), "all": ("-", "o"), "": (":", "^")}
    for colour, ((method, features), g) in zip(colours, lines, strict=False):
        g = g.sort_values("x")
        label = f"{method} ({features})" if features else f"{method} (scanner)"
        ls, marker = styles.get(features, ("--", "d"))
        ax.plot(g["x"] + 0.1, g["recall"], ls=ls, marker=marker, color=colour, label=label, ms=4)
    ax.set_xscale("log")
    ticks = [0.1, 1.1, 10.1, 100.1, 1000.1]
    ax.set_xticks(ticks, ["none", "1x", "10x", "100x", "1000x"])
    ax.set_xlabel("benign padding (x the payload's opcode count)")
    ax.set_ylabel("recall on attacked malicious files")
    ax.set_ylim(-0.02, 1.02)
    ax.axhline(0.95, color="grey", lw=0.8, ls=":")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title("Recall under benign-opcode padding")
    return save_figure(fig, path)
