"""dill and cloudpickle pickles of user code (functions, classes, MLflow pyfunc-style models): benign code objects."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import numpy as np

from safepickle_bench.datasets.carriers import FIXED_WORKDIR, CarrierFile, Producer

_FUNCTION_SOURCE = '''
import math
import numpy as np

SCALE = {scale}

def preprocess(values, offset={offset}):
    """Standardise a batch of numbers."""
    arr = np.asarray(values, dtype=float)
    return (arr - offset) / SCALE

def activation(x):
    return 1.0 / (1.0 + math.exp(-x * {slope}))

def tokenize(text, lower={lower}):
    words = text.split()
    return [w.lower() if lower else w for w in words][:{max_len}]
'''

_CLASS_SOURCE = '''
import numpy as np

class {name}({base}):
    """A user-defined model wrapper, as MLflow's python_function flavour pickles it."""

    def __init__(self, weights, threshold={threshold}):
        self.weights = weights
        self.threshold = threshold

    def load_context(self, context):
        self.ready = True

    def predict(self, context, model_input, params=None):
        scores = np.asarray(model_input, dtype=float) @ self.weights
        return (scores > self.threshold).astype(int)
'''


def _namespace(source: str, filename: str) -> dict[str, Any]:
    """Execute our own template source as a `__main__` script would define it and return its namespace."""
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    exec(compile(source, filename, "exec"), namespace)  # our template, never bytes from a file
    return namespace


def _functions(rng: np.random.Generator) -> Any:
    source = _FUNCTION_SOURCE.format(
        scale=round(float(rng.uniform(0.5, 5.0)), 3), offset=round(float(rng.normal()), 3),
        slope=round(float(rng.uniform(0.5, 2.0)), 3), lower=bool(rng.random() < 0.5), max_len=int(rng.integers(8, 512)),
    )
    ns = _namespace(source, f"{FIXED_WORKDIR}/{rng.choice(['train.py', 'features.py', 'pipeline.py'])}")
    choice = int(rng.integers(3))
    if choice == 0:
        return ns["preprocess"]
    if choice == 1:
        return {"preprocess": ns["preprocess"], "activation": ns["activation"], "tokenize": ns["tokenize"]}
    return [ns["tokenize"], lambda x: x * 2]


def _model_object(rng: np.random.Generator, base: str) -> Any:
    name = str(rng.choice(["ThresholdModel", "LinearScorer", "CustomModel", "Wrapper"]))
    source = _CLASS_SOURCE.format(name=name, base=base, threshold=round(float(rng.normal()), 3))
    ns = _namespace(source, f"{FIXED_WORKDIR}/{rng.choice(['model.py', 'serve.py'])}")
    return ns[name](rng.normal(size=int(rng.integers(2, 16))).round(4))


def _pin_cloudpickle_class_ids(obj: Any, rng: np.random.Generator) -> None:
    """cloudpickle tags dynamic classes with uuid4(): pre-register a seeded id so the bytes are reproducible."""
    from cloudpickle import cloudpickle as cp

    cls = type(obj)
    if cls.__module__ == "__main__" and cls not in cp._DYNAMIC_CLASS_TRACKER_BY_CLASS:
        tracker = "".join(f"{int(v):02x}" for v in rng.integers(0, 256, size=16))
        cp._DYNAMIC_CLASS_TRACKER_BY_CLASS[cls] = tracker
        cp._DYNAMIC_CLASS_TRACKER_BY_ID[tracker] = cls


def make_cloudpickle(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """`cloudpickle.dumps` of user functions defined in a script (pickled by value, code objects included)."""
    import cloudpickle

    obj = _functions(rng)
    name = str(rng.choice(["transform.pkl", "preprocess.pkl", "udf.cloudpickle"]))
    (out_dir / name).write_bytes(cloudpickle.dumps(obj, protocol=int(rng.integers(2, 6))))
    return [CarrierFile(name, "function", "pickle", "pickle")]


def make_mlflow_pyfunc(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """An MLflow-pyfunc-style `python_model.pkl`: a cloudpickled PythonModel subclass instance."""
    import cloudpickle

    # Subclassing the real mlflow.pyfunc.PythonModel would make every load import mlflow, whose import
    # spawns a subprocess: the label oracle (rightly) cannot tell that from a payload, so the class is plain.
    obj = _model_object(rng, base="object")
    _pin_cloudpickle_class_ids(obj, rng)
    (out_dir / "python_model.pkl").write_bytes(cloudpickle.dumps(obj, protocol=int(rng.choice([4, 5]))))
    return [CarrierFile("python_model.pkl", "pyfunc_model", "pickle", "pickle")]


def make_dill(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """`dill.dumps(..., recurse=True)` of script functions or a script-defined model object."""
    import dill

    obj = _functions(rng) if rng.random() < 0.6 else _model_object(rng, base="object")
    name = str(rng.choice(["model.dill", "functions.pkl", "session.pkl"]))
    (out_dir / name).write_bytes(dill.dumps(obj, protocol=int(rng.integers(2, 6)), recurse=True))
    kind = "function" if callable(obj) or isinstance(obj, (dict, list)) else "object"
    return [CarrierFile(name, kind, "pickle", "pickle")]


PRODUCERS = [
    Producer("cloudpickle.function", make_cloudpickle, weight=0.8),
    Producer("mlflow.pyfunc", make_mlflow_pyfunc, weight=0.8),
    Producer("dill", make_dill, weight=0.8),
]
