"""Objects of user-defined classes from packages no list knows, under generated names, pickled at protocols 0-5.

Names come from `craft.gadget_names.generate_names`, the generator of the malicious gadget names, so a
benign file's callables look like an attack's. Each producer call draws ONE namespace (train, validation
or test, uniformly) and takes every name of the file from it: the namespace of any generated name is a
keyed hash of the name (`gadget_names.namespace_of`), so a split that keeps the unseen-names protocol
(test names absent from train) can route benign files exactly like malicious ones, from their imports
alone, and benign and malicious files of a namespace share one name distribution.

The classes are harmless (`craft.benign_package`) and written as a throwaway package into the carrier's
folder (`pkgs/`), with a script module for the `__main__` classes. Loading needs that folder on `sys.path`:
the sidecar `<file>.syspath.json` (`sandbox.sidecar`) says so; the label oracle's child puts the folder on
`sys.path`, exposes the script's classes as `__main__`, then loads the file with the audit hook armed.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import pickle
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from safepickle_bench.craft.benign_package import (
    BenignClass,
    BenignPlan,
    Shape,
    main_script_source,
    plan_benign_package,
    write_benign_package,
)
from safepickle_bench.craft.gadget_names import NAMESPACES, GadgetName, generate_names
from safepickle_bench.datasets.carriers import CarrierFile, Producer
from safepickle_bench.sandbox.sidecar import write_sidecar

PACKAGE_DIR = "pkgs"
"""Folder (inside the carrier's folder) holding the generated packages and the script module."""
MAIN_MODULE = "spb_user_script"
"""Module name of the script whose classes the pickles reference as `__main__` (never named in a pickle)."""
LOADER = "pickle_syspath"
"""The oracle loader these files need (`pickle.load` once their sidecar is applied)."""
TORCH_LOADER = "torch_syspath"
"""The same with `torch.load`, for whole modules of generated packages saved by `torch.save`."""

_FILE_NAMES = ("model.pkl", "pipeline.pkl", "state.pkl", "checkpoint.pkl", "artifacts.pickle", "agent.pkl",
               "config.pkl", "preprocessor.pkl", "env.pkl", "trainer_state.pkl")
_WORDS = ("alpha", "beta", "train", "valid", "token", "label", "score", "window", "layer", "north", "blue",
          "delta", "mean", "max", "cls", "pad", "unk", "eos", "user", "item")


# --------------------------------------------------------------------------- names and package


def free_packages(names: list[GadgetName]) -> list[GadgetName]:
    """Drop names whose top-level package is already importable here (ours must never shadow a real one)."""
    free: dict[str, bool] = {}
    out = []
    for n in names:
        if n.package not in free:
            free[n.package] = n.package not in sys.modules and importlib.util.find_spec(n.package) is None
        if free[n.package]:
            out.append(n)
    return out


def _draw_names(rng: np.random.Generator, namespace: str, n: int, tag: str) -> list[GadgetName]:
    """Return generated names of one namespace for this call (seeded by the rng)."""
    seed = f"benign-{tag}|{int(rng.integers(2**62))}"
    return free_packages(generate_names(seed, n, namespace=namespace))


def _purge(packages: set[str]) -> None:
    """Forget imported modules of the given top-level packages."""
    for name in [m for m in sys.modules if m.split(".", 1)[0] in packages]:
        del sys.modules[name]


@contextlib.contextmanager
def on_sys_path(root: Path, packages: set[str]) -> Iterator[None]:
    """Import from `root` for the duration (then forget its modules, so the next call starts clean)."""
    _purge(packages)
    importlib.invalidate_caches()
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(root))
        _purge(packages)


@contextlib.contextmanager
def _as_main(objects: dict[str, Any]) -> Iterator[None]:
    """Expose classes and functions as attributes of `__main__` (what pickle checks when it saves them)."""
    main = sys.modules["__main__"]
    saved = {k: getattr(main, k) for k in objects if hasattr(main, k)}
    for key, obj in objects.items():
        obj.__module__ = "__main__"
        for member in vars(obj).values() if isinstance(obj, type) else ():
            if callable(member) and getattr(member, "__module__", None) == MAIN_MODULE:
                member.__module__ = "__main__"  # methods referenced as values are saved by their module
        setattr(main, key, obj)
    try:
        yield
    finally:
        for key in objects:
            if key in saved:
                setattr(main, key, saved[key])
            else:
                delattr(main, key)


# --------------------------------------------------------------------------- object graphs


def _scalar(rng: np.random.Generator) -> Any:
    """Return a small data value."""
    r = int(rng.integers(7))
    if r == 0:
        return int(rng.integers(-1000, 10**6))
    if r == 1:
        return float(round(rng.normal(), 5))
    if r == 2:
        return _WORDS[int(rng.integers(len(_WORDS)))]
    if r == 3:
        return [_WORDS[int(i)] for i in rng.integers(0, len(_WORDS), int(rng.integers(1, 6)))]
    if r == 4:
        return {_WORDS[int(i)]: int(rng.integers(100)) for i in rng.integers(0, len(_WORDS), 3)}
    if r == 5:
        return rng.normal(size=int(rng.integers(2, 12))).astype(np.float32).round(4)
    return None if rng.random() < 0.5 else bool(rng.random() < 0.5)


class _Builder:
    """Builds instances of the generated classes with data fields (sometimes other instances, nested)."""

    def __init__(self, rng: np.random.Generator, classes: list[tuple[BenignClass, Any]], protocol: int) -> None:
        self.rng = rng
        # default reduction of __slots__ needs protocol 2 (CPython refuses lower ones)
        self.classes = [(c, obj) for c, obj in classes if c.shape != Shape.SLOTS or protocol >= 2]

    def instance(self, depth: int = 0) -> Any:
        """Return one instance of a random generated class."""
        if not self.classes:
            return _scalar(self.rng)
        spec, cls = self.classes[int(self.rng.integers(len(self.classes)))]
        if spec.shape == Shape.ENUM:
            members = list(cls)
            return members[int(self.rng.integers(len(members)))]
        values = [self.value(depth + 1) for _ in spec.fields]
        if spec.shape == Shape.NAMEDTUPLE:
            return cls(*values)
        return cls(**dict(zip(spec.fields, values, strict=True)))

    def value(self, depth: int) -> Any:
        """Return a field value: data, or (not too deep) another instance or a list of them."""
        r = self.rng.random()
        if depth < 3 and r < 0.25:
            return self.instance(depth)
        if depth < 2 and r < 0.35:
            return [self.instance(depth + 1) for _ in range(int(self.rng.integers(1, 4)))]
        return _scalar(self.rng)


def _references(rng: np.random.Generator, classes: list[tuple[BenignClass, Any]], functions: list[Any],
                instances: list[Any]) -> dict[str, Any]:
    """Return classes, functions, methods and bound methods referenced as values (GLOBAL without a call)."""
    refs: dict[str, Any] = {}
    if classes:
        spec, cls = classes[int(rng.integers(len(classes)))]
        refs["model_class"] = cls
        with_methods = [(s, c) for s, c in classes if s.methods]
        if with_methods:
            spec, cls = with_methods[int(rng.integers(len(with_methods)))]
            refs["hook"] = getattr(cls, spec.methods[0])  # a dotted qualname: STACK_GLOBAL or getattr(cls, name)
            bound = [i for i in instances if type(i) is cls]
            if bound:  # a bound method: getattr on the rebuilt instance
                refs["callback"] = getattr(bound[0], spec.methods[0])
    if functions:
        fn = functions[int(rng.integers(len(functions)))]
        refs["transform"] = fn
        if rng.random() < 0.5:
            refs["collate_fn"] = functools.partial(fn, **{_WORDS[int(rng.integers(len(_WORDS)))]: int(rng.integers(9))})
    return refs


def _resolve(plan: BenignPlan, module_of: Any) -> tuple[list[tuple[BenignClass, Any]], list[Any]]:
    """Return (spec, class object) pairs and function objects of a plan, looked up with `module_of(path)`."""
    classes = [(c, getattr(module_of(c.module_path), c.class_name)) for c in plan.classes]
    functions = [getattr(module_of(f.module_path), f.top_attr) for f in plan.functions]
    return classes, functions


def _document(rng: np.random.Generator, classes: list[tuple[BenignClass, Any]], functions: list[Any],
              protocol: int) -> dict[str, Any]:
    """Return a model-file-like dict of generated-class instances and references."""
    builder = _Builder(rng, classes, protocol)
    instances = [builder.instance() for _ in range(int(rng.integers(1, 5)))]
    doc: dict[str, Any] = {"format_version": int(rng.integers(1, 4)), "config": instances[0]}
    if len(instances) > 1:
        doc["components"] = instances[1:]
    if rng.random() < 0.4:
        doc["weights"] = {f"layer{i}": rng.normal(size=(2, 3)).astype(np.float32) for i in range(2)}
    doc.update(_references(rng, builder.classes, functions, instances))
    return doc


# --------------------------------------------------------------------------- producer


def _plan(rng: np.random.Generator, namespace: str, n: int, tag: str) -> BenignPlan:
    """Return a harmless plan over freshly drawn names of the namespace."""
    names = _draw_names(rng, namespace, n, tag)
    return plan_benign_package(names, random.Random(int(rng.integers(2**62))))


def make_user_objects(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """Pickle user-defined objects of generated packages (and `__main__` classes) with their sidecar."""
    namespace = NAMESPACES[int(rng.integers(len(NAMESPACES)))]
    plan = _plan(rng, namespace, int(rng.integers(4, 12)), "package")
    main_plan = _plan(rng, namespace, int(rng.integers(2, 5)), "main") if rng.random() < 0.4 else None
    root = out_dir / PACKAGE_DIR
    write_benign_package(root, plan)
    if main_plan is not None:
        (root / f"{MAIN_MODULE}.py").write_text(main_script_source(main_plan), encoding="utf-8")
    protocol = int(rng.integers(0, 6))
    name = _FILE_NAMES[int(rng.integers(len(_FILE_NAMES)))]
    packages = {c.name.package for c in plan.classes} | {f.package for f in plan.functions} | {MAIN_MODULE}
    with on_sys_path(root, packages):
        classes, functions = _resolve(plan, importlib.import_module)
        main_objects: dict[str, Any] = {}
        if main_plan is not None:
            script = importlib.import_module(MAIN_MODULE)
            main_plan.classes = [c for c in main_plan.classes if hasattr(script, c.class_name)]
            main_classes, main_functions = _resolve(main_plan, lambda _: script)
            classes += main_classes
            functions += main_functions
            main_objects = {c.class_name: obj for c, obj in main_classes}
            main_objects |= {f.__name__: f for f in main_functions}
        with _as_main(main_objects):
            data = pickle.dumps(_document(rng, classes, functions, protocol), protocol=protocol)
    (out_dir / name).write_bytes(data)
    write_sidecar(out_dir / name, [PACKAGE_DIR], MAIN_MODULE if main_plan else None, namespace)
    return [CarrierFile(name, f"user_objects_p{protocol}", "pickle", LOADER)]


PRODUCERS = [Producer("user_classes.objects", make_user_objects, weight=1.0)]
