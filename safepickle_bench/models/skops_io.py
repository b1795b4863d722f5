"""Save and load scikit-learn objects with skops (no pickle), trusting only an explicit allow-list of types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import skops.io as sio

# Types our exported sklearn models contain beyond those skops trusts by default (found with
# `skops.io.get_untrusted_types` on every detector). Loading refuses any
# other type, so a tampered .skops file cannot name an arbitrary callable.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "sklearn.tree._tree.Tree",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    }
)


class UntrustedSkopsFile(ValueError):
    """A .skops file names a type outside the allow-list."""


def save_skops(obj: Any, path: Path) -> Path:
    """Write `obj` to `path` with skops and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(obj, path)
    return path


def load_skops(path: Path, extra_trusted: frozenset[str] = frozenset()) -> Any:
    """Load a .skops file after checking every type it names against the allow-list."""
    untrusted = set(sio.get_untrusted_types(file=path))
    refused = sorted(untrusted - TRUSTED_TYPES - extra_trusted)
    if refused:
        raise UntrustedSkopsFile(f"{path}: refusing types outside the allow-list: {refused}")
    return sio.load(path, trusted=sorted(untrusted))
