"""Matplotlib figures of a run: confusion matrix, ROC and PR curves, feature importance (PNG files)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402


def save_figure(fig: plt.Figure, path: Path, title: str = "") -> Path:
    """Give `fig` its suptitle, lay it out, write it as PNG to `path` and close it."""
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def style_roc_pr_axes(ax_roc: plt.Axes, ax_pr: plt.Axes) -> None:
    """Label and bound a ROC axis and a precision-recall axis, with the ROC chance diagonal."""
    ax_roc.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
    ax_roc.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC", xlim=(0, 1), ylim=(0, 1.02))
    ax_pr.set(xlabel="recall", ylabel="precision", title="precision-recall", xlim=(0, 1), ylim=(0, 1.02))


def confusion_matrix_png(tn: int, fp: int, fn: int, tp: int, path: Path, title: str = "") -> Path:
    """Draw the 2x2 confusion matrix (rows = truth, columns = prediction) to `path`."""
    cm = np.array([[tn, fp], [fn, tp]])
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(int(v)), ha="center", va="center",
                color="white" if v > cm.max() / 2 else "black", fontsize=12)
    ax.set_xticks([0, 1], ["benign", "malicious"])
    ax.set_yticks([0, 1], ["benign", "malicious"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix", fontsize=10)
    return save_figure(fig, path)


def roc_pr_png(y_true: np.ndarray, y_score: np.ndarray, path: Path, title: str = "") -> Path:
    """Draw the ROC curve and the precision-recall curve side by side to `path` (empty with one class)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.6))
    if len(np.unique(y_true)) == 2:
        fpr, tpr, _ = roc_curve(y_true, y_score)
        ax1.plot(fpr, tpr, lw=1.5)
        prec, rec, _ = precision_recall_curve(y_true, y_score)
        ax2.plot(rec, prec, lw=1.5)
        ax2.axhline(float(np.mean(y_true)), ls=":", color="grey", lw=1)
    else:
        for ax in (ax1, ax2):
            ax.text(0.5, 0.5, "one class only: undefined", ha="center", va="center")
    style_roc_pr_axes(ax1, ax2)
    return save_figure(fig, path, title)


def feature_importance_png(names: list[str], values: np.ndarray, path: Path, top: int = 25,
                           title: str = "", xlabel: str = "importance") -> Path:
    """Draw the `top` most important features as horizontal bars to `path`."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(-values)[:top][::-1]
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(order) + 1.3))
    ax.barh([names[i] for i in order], values[order], color="#4472c4")
    ax.set_xlabel(xlabel)
    ax.set_title(title or f"top {len(order)} features", fontsize=10)
    ax.tick_params(axis="y", labelsize=8)
    return save_figure(fig, path)
