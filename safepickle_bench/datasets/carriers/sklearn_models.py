"""scikit-learn estimators and pipelines fitted on random data, saved with pickle or joblib."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from safepickle_bench.datasets.carriers import CarrierFile, Producer


def random_xy(rng: np.random.Generator, classification: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A random (X, y) problem of random size."""
    n, d = int(rng.integers(40, 200)), int(rng.integers(3, 20))
    x = rng.normal(size=(n, d))
    if classification:
        y = (x[:, 0] + rng.normal(scale=0.5, size=n) > 0).astype(int) + (rng.random() < 0.4) * (x[:, 1] > 1)
        return x, y
    return x, x @ rng.normal(size=d) + rng.normal(size=n)


def fitted_estimator(rng: np.random.Generator) -> tuple[str, Any]:
    """Fit one of many sklearn estimators/pipelines on random data; return (kind, estimator)."""
    from sklearn import (
        cluster,
        decomposition,
        ensemble,
        linear_model,
        naive_bayes,
        neighbors,
        neural_network,
        svm,
        tree,
    )
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    seed = int(rng.integers(2**31))
    choice = int(rng.integers(13))
    x, y = random_xy(rng, classification=choice not in (9, 10))
    makers = [
        lambda: linear_model.LogisticRegression(C=float(rng.choice([0.1, 1.0, 10.0])), max_iter=200),
        lambda: ensemble.RandomForestClassifier(n_estimators=int(rng.integers(2, 8)), max_depth=3, random_state=seed),
        lambda: ensemble.GradientBoostingClassifier(n_estimators=int(rng.integers(2, 8)), random_state=seed),
        lambda: tree.DecisionTreeClassifier(max_depth=int(rng.integers(2, 6)), random_state=seed),
        lambda: neighbors.KNeighborsClassifier(n_neighbors=int(rng.integers(1, 8))),
        lambda: make_pipeline(StandardScaler(), svm.SVC(C=float(rng.choice([0.5, 1.0])), random_state=seed)),
        lambda: make_pipeline(
            StandardScaler(), decomposition.PCA(n_components=2, random_state=seed), linear_model.LogisticRegression()
        ),
        lambda: naive_bayes.GaussianNB(),
        lambda: neural_network.MLPClassifier(hidden_layer_sizes=(int(rng.integers(4, 16)),), max_iter=30, random_state=seed),
        lambda: linear_model.Ridge(alpha=float(rng.choice([0.1, 1.0]))),
        lambda: make_pipeline(MinMaxScaler(), ensemble.RandomForestRegressor(n_estimators=3, max_depth=3, random_state=seed)),
        lambda: cluster.KMeans(n_clusters=int(rng.integers(2, 5)), n_init=1, random_state=seed),
        lambda: ensemble.IsolationForest(n_estimators=int(rng.integers(3, 10)), random_state=seed),
    ]
    estimator = makers[choice]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(x, y)
    kind = "pipeline" if hasattr(estimator, "steps") else "estimator"
    return kind, estimator


def make_sklearn_pickle(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """`pickle.dump(estimator)` at a random protocol (2-5)."""
    kind, estimator = fitted_estimator(rng)
    name = str(rng.choice(["model.pkl", "classifier.pkl", "pipeline.pickle", "clf.pkl"]))
    (out_dir / name).write_bytes(pickle.dumps(estimator, protocol=int(rng.integers(2, 6))))
    return [CarrierFile(name, kind, "pickle", "pickle")]


def make_sklearn_joblib(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """`joblib.dump(estimator)` uncompressed or zlib-compressed, as most sklearn users share models."""
    kind, estimator = fitted_estimator(rng)
    name = str(rng.choice(["model.joblib", "model.pkl", "pipeline.joblib"]))
    compress = int(rng.choice([0, 0, 3]))
    joblib.dump(estimator, out_dir / name, compress=compress)
    return [CarrierFile(name, kind, "joblib" if compress == 0 else "joblib_zlib", "joblib")]


PRODUCERS = [
    Producer("sklearn.pickle", make_sklearn_pickle, weight=1.5),
    Producer("sklearn.joblib", make_sklearn_joblib, weight=1.5),
]
