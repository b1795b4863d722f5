"""TorchScript archives (`torch.jit.script` / `torch.jit.trace`, then `torch.jit.save`) of small modules whose
classes live in generated packages (names from `craft.gadget_names`, one namespace per call, as in
`user_classes`).

A TorchScript archive holds the module's code and its pickles (`data.pkl`, `constants.pkl`), which name
the classes as `__torch__.<module>.<Class>`; it loads without the Python package. The module sources are
compiled from a template under a fixed fake path (registered in `linecache` for TorchScript's frontend),
so no path of the build machine enters the archive's debug information.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import linecache
import sys
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from safepickle_bench.craft.gadget_names import (
    NAMESPACES,
    GadgetKind,
    GadgetName,
    generate_names,
    namespace_of,
)
from safepickle_bench.datasets.carriers import (
    FIXED_WORKDIR,
    CarrierFile,
    Producer,
    seed_everything,
    user_classes,
)
from safepickle_bench.datasets.carriers.torch_format import save_torch
from safepickle_bench.sandbox.sidecar import write_sidecar

_SOURCE = '''
import torch
from torch import nn


class {block}(nn.Module):
    """A residual feed-forward block."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.norm = nn.LayerNorm(dim)
        self.scale = {scale}

    def forward(self, x):
        return self.norm(x + self.fc2(torch.relu(self.fc1(x))) * self.scale)


class {model}(nn.Module):
    """A stack of blocks with a classification head."""

    def __init__(self, dim: int, hidden: int, depth: int, classes: int):
        super().__init__()
        self.embed = nn.Linear({features}, dim)
        self.blocks = nn.ModuleList([{block}(dim, hidden) for _ in range(depth)])
        self.head = nn.Linear(dim, classes)
        self.labels = {labels}

    def forward(self, x):
        h = self.embed(x)
        for block in self.blocks:
            h = block(h)
        return self.head(h)
'''


def _names(rng: np.random.Generator) -> tuple[str, str, str]:
    """Return (module path, block class, model class) drawn from one namespace of the gadget-name generator."""
    namespace = NAMESPACES[int(rng.integers(len(NAMESPACES)))]
    names: list[GadgetName] = []
    while len(names) < 2:  # never a package that exists here (its classes would be the real ones)
        names = user_classes.free_packages(generate_names(f"benign-torchscript|{int(rng.integers(2**62))}", 2,
                                                          namespace=namespace, kinds=(GadgetKind.CLASS,)))
    block, model = (n.top_attr for n in names)
    return names[1].module_path, block, model


@contextlib.contextmanager
def _template_module(module_path: str, source: str) -> Iterator[types.ModuleType]:
    """Compile `source` as module `module_path` under a fixed fake file name; forget it afterwards."""
    filename = f"{FIXED_WORKDIR}/{module_path.replace('.', '/')}.py"
    module = types.ModuleType(module_path)
    module.__file__ = filename
    lines = source.splitlines(keepends=True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    sys.modules[module_path] = module
    try:
        exec(compile(source, filename, "exec"), module.__dict__)  # our own template, never bytes from a file
        yield module
    finally:
        sys.modules.pop(module_path, None)
        linecache.cache.pop(filename, None)


@contextlib.contextmanager
def _fresh_torchscript_state() -> Iterator[None]:
    """Compile into a fresh compilation unit and type store, as a fresh process would.

    TorchScript numbers the variants of a class (`___torch_mangle_N`) with a counter of the process-wide
    compilation unit: without a fresh one the names, hence the bytes, would depend on earlier calls.
    """
    import torch
    import torch.jit._recursive as recursive
    import torch.jit._state as state

    saved = state._python_cu, recursive.concrete_type_store
    state._python_cu, recursive.concrete_type_store = torch._C.CompilationUnit(), recursive.ConcreteTypeStore()
    try:
        yield
    finally:
        state._python_cu, recursive.concrete_type_store = saved


def _seeded_serialization_id(data: bytes, rng: np.random.Generator) -> bytes:
    """Return the archive with its random `.data/serialization_id` record replaced by a seeded one."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename.endswith("/.data/serialization_id"):
                body = "".join(str(int(d)) for d in rng.integers(0, 10, len(body))).encode()
            record = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            record.compress_type, record.external_attr = info.compress_type, info.external_attr
            dst.writestr(record, body)
    return out.getvalue()


def make_torchscript(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A TorchScript archive of a generated-package model, scripted or traced, written by `torch.jit.save`."""
    import torch

    seed_everything(int(rng.integers(2**31)))
    module_path, block, model_name = _names(rng)
    features = int(rng.choice([4, 8, 16]))
    labels = [f"class_{i}" for i in range(int(rng.integers(2, 6)))]
    source = _SOURCE.format(block=block, model=model_name, scale=round(float(rng.uniform(0.1, 1.0)), 3),
                            features=features, labels=labels)
    with _template_module(module_path, source) as module, _fresh_torchscript_state():
        model: Any = getattr(module, model_name)(int(rng.choice([8, 16])), int(rng.choice([16, 32])),
                                                 int(rng.integers(1, 4)), len(labels)).eval()
        traced = rng.random() < 0.4
        scripted = torch.jit.trace(model, torch.zeros(1, features)) if traced else torch.jit.script(model)
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
    name = ("model.pt", "traced_model.pt", "scripted.pt", "model.torchscript")[int(rng.integers(4))]
    (out_dir / name).write_bytes(_seeded_serialization_id(buffer.getvalue(), rng))
    kind = "torchscript_traced" if traced else "torchscript_scripted"
    return [CarrierFile(name, kind, "torchscript", "torch")]


def make_whole_module(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """`torch.save` of a whole model object whose classes live in a generated package (written beside it).

    Loading needs the package: the sidecar `<file>.syspath.json` names its folder, as for `user_classes`.
    """
    module_path, block, model_name = _names(rng)
    features = int(rng.choice([4, 8, 16]))
    labels = [f"class_{i}" for i in range(int(rng.integers(2, 6)))]
    source = _SOURCE.format(block=block, model=model_name, scale=round(float(rng.uniform(0.1, 1.0)), 3),
                            features=features, labels=labels)
    root = out_dir / user_classes.PACKAGE_DIR
    parts = module_path.split(".")
    for i in range(1, len(parts) + 1):
        directory = root.joinpath(*parts[:i])
        directory.mkdir(parents=True, exist_ok=True)
        init = directory / "__init__.py"
        init.write_text(source if i == len(parts) else '"""Generated package."""\n', encoding="utf-8")
    seed_everything(int(rng.integers(2**31)))
    name = ("model.pt", "model.pth", "pytorch_model.bin", "best.pt")[int(rng.integers(4))]
    with user_classes.on_sys_path(root, {parts[0]}):
        module = importlib.import_module(module_path)
        model = getattr(module, model_name)(int(rng.choice([8, 16])), int(rng.choice([16, 32])),
                                            int(rng.integers(1, 4)), len(labels)).eval()
        container = save_torch({"model": model, "epoch": int(rng.integers(1, 99))} if rng.random() < 0.5 else model,
                               out_dir / name, "zip", rng)
    write_sidecar(out_dir / name, [user_classes.PACKAGE_DIR], None, namespace_of(parts[0]))
    return [CarrierFile(name, "whole_module_generated_package", container, user_classes.TORCH_LOADER)]


PRODUCERS = [
    Producer("torchscript.archive", make_torchscript, weight=1.0),
    Producer("torch.generated_package_module", make_whole_module, weight=0.7),
]
