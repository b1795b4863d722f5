"""pandas objects and numpy object arrays: `.pkl` via pandas, `.npy`/`.npz` with object dtype, pickled dicts."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from safepickle_bench.datasets.carriers import CarrierFile, Producer

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def random_frame(rng: np.random.Generator) -> Any:
    """A DataFrame with numeric, string, categorical and datetime columns of random length."""
    import pandas as pd

    n = int(rng.integers(5, 300))
    columns: dict[str, Any] = {
        "id": np.arange(n),
        "score": rng.normal(size=n),
        "label": rng.choice(["cat", "dog", "bird", "fish"], size=n),
    }
    if rng.random() < 0.6:
        columns["when"] = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 10**6, size=n), unit="s")
    if rng.random() < 0.6:
        columns["group"] = pd.Categorical(rng.choice(["a", "b", "c"], size=n))
    if rng.random() < 0.4:
        columns["count"] = rng.integers(0, 100, size=n).astype("int32")
    return pd.DataFrame(columns)


def make_pandas_pickle(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """`DataFrame.to_pickle` / `Series.to_pickle` at a random protocol."""
    frame = random_frame(rng)
    obj = frame if rng.random() < 0.7 else frame["score"]
    name = str(rng.choice(["data.pkl", "features.pkl", "train_df.pkl", "embeddings.pkl"]))
    obj.to_pickle(out_dir / name, protocol=int(rng.integers(2, 6)))
    return [CarrierFile(name, "dataframe" if obj.ndim == 2 else "series", "pickle", "pickle")]


def object_array(rng: np.random.Generator) -> np.ndarray:
    """A numpy object array of dicts, strings, ragged arrays or tuples."""
    n = int(rng.integers(2, 40))
    choice = int(rng.integers(4))
    items: list[Any]
    if choice == 0:
        items = [{"text": f"sample {i}", "label": int(rng.integers(3))} for i in range(n)]
    elif choice == 1:
        items = [f"token_{int(v)}" for v in rng.integers(0, 10**5, size=n)]
    elif choice == 2:
        items = [rng.normal(size=int(rng.integers(1, 20))).astype(np.float32) for _ in range(n)]
    else:
        items = [(f"img_{i}.png", float(rng.random()), int(rng.integers(10))) for i in range(n)]
    out = np.empty(n, dtype=object)
    out[:] = items
    return out


def make_npy(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """`np.save(..., allow_pickle=True)` of an object array (the array pickled after the .npy header)."""
    name = str(rng.choice(["data.npy", "labels.npy", "metadata.npy"]))
    np.save(out_dir / name, object_array(rng), allow_pickle=True)
    return [CarrierFile(name, "object_array", "npy", "numpy")]


def write_npz(path: Path, arrays: dict[str, np.ndarray], compress: bool) -> None:
    """`np.savez` with a fixed zip timestamp (np.savez stamps the wall clock, which breaks determinism)."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as archive:
        for key, value in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asanyarray(value), allow_pickle=True)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.compress_type = method
            archive.writestr(info, buffer.getvalue())


def make_npz(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """An `.npz` bundle mixing numeric arrays and at least one object array."""
    arrays = {"weights": rng.normal(size=(int(rng.integers(2, 30)), 8)).astype(np.float32), "meta": object_array(rng)}
    if rng.random() < 0.5:
        arrays["index"] = np.arange(int(rng.integers(3, 50)))
    compress = bool(rng.random() < 0.4)
    name = str(rng.choice(["arrays.npz", "dataset.npz", "cache.npz"]))
    write_npz(out_dir / name, arrays, compress)
    return [CarrierFile(name, "object_arrays", "npz", "numpy")]


def make_numpy_pickle(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A plain `pickle.dump` of a dict of numpy arrays (word vectors, feature matrices, vocabularies)."""
    dim = int(rng.choice([8, 16, 50]))
    words = [f"w{int(v)}" for v in rng.integers(0, 10**6, size=int(rng.integers(5, 100)))]
    obj = {
        "vectors": rng.normal(size=(len(words), dim)).astype(np.float32),
        "vocab": {w: i for i, w in enumerate(words)},
        "dim": dim,
    }
    name = str(rng.choice(["vectors.pkl", "word2vec.pkl", "features.pickle"]))
    (out_dir / name).write_bytes(pickle.dumps(obj, protocol=int(rng.integers(2, 6))))
    return [CarrierFile(name, "array_dict", "pickle", "pickle")]


PRODUCERS = [
    Producer("pandas.to_pickle", make_pandas_pickle, weight=1.0),
    Producer("numpy.save", make_npy, weight=0.8),
    Producer("numpy.savez", make_npz, weight=0.6),
    Producer("numpy.pickle", make_numpy_pickle, weight=0.6),
]
