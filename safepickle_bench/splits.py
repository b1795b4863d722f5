"""Cross-validation folds, assigned one way for model evaluation, the scanner benchmark and the attack benchmark.

A splitter is any scikit-learn splitter (the `split` config group instantiates one; `group_kfold` builds the
default). Fold k holds the rows of the k-th test set of `splitter.split`, so a row's fold id is the same
wherever it is computed. The feature values never influence the assignment: only the labels, the groups and
the splitter's seed do.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

log = logging.getLogger(__name__)


def group_kfold(n_splits: int = 5, seed: int = 0) -> StratifiedGroupKFold:
    """Return the default splitter: stratified group k-fold, shuffled with `seed` (conf/split/group_kfold)."""
    return StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)


def effective_splits(splitter: Any, y: np.ndarray, groups: np.ndarray) -> Any:
    """Return the splitter, or a copy with fewer folds when a class has fewer groups than folds."""
    n_groups_per_class = min(len(np.unique(groups[y == c])) for c in (0, 1))
    wanted = int(getattr(splitter, "n_splits", 5))
    possible = max(2, min(wanted, n_groups_per_class))
    if possible < wanted:
        log.warning("only %d groups in the smaller class: using %d folds instead of %d",
                    n_groups_per_class, possible, wanted)
        splitter = copy.copy(splitter)  # scikit-learn splitters have no set_params
        splitter.n_splits = possible
    return splitter


def split_indices(splitter: Any, y: np.ndarray, groups: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return the (train rows, test rows) index pairs of every fold, in fold order."""
    y = np.asarray(y)
    return list(splitter.split(np.zeros((len(y), 1)), y, groups))


def fold_ids(splitter: Any, y: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """Return each row's test fold (0 .. n_splits-1) under the splitter."""
    folds = np.full(len(y), -1)
    for k, (_, test) in enumerate(split_indices(splitter, y, groups)):
        folds[test] = k
    return folds
