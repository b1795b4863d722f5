"""User-defined objects under generated names: reproducible, one namespace per file, load cleanly with sys.path."""

from __future__ import annotations

import json
import random
import re

from safepickle_bench.analysis import analyze_path
from safepickle_bench.craft.benign_package import Shape, plan_benign_package
from safepickle_bench.craft.gadget_names import generate_names, namespace_of
from safepickle_bench.datasets.carriers import user_classes
from safepickle_bench.sandbox.runner import run_sandboxed
from safepickle_bench.sandbox.sidecar import SIDECAR_SUFFIX

_KNOWN_MODULES = {"builtins", "__builtin__", "copyreg", "copy_reg", "functools", "collections", "numpy", "__main__",
                  "_codecs", "codecs"}


def test_user_object_files_are_reproducible_and_load_with_their_sys_path_and_no_dangerous_event(
    produced, analyzer_reads
):
    files = produced(user_classes.PRODUCERS, 12)
    assert all(f.loader == user_classes.LOADER for _, f in files)
    analyzer_reads([p for p, _ in files])
    # the oracle's child: the sidecar's folder on sys.path, the audit hook armed, then pickle.load
    results = run_sandboxed([(p, f.loader) for p, f in files], "safepickle_bench.datasets.oracle",
                            timeout=60)
    for result in results:
        assert result.event == "", (result.path, result.event, result.detail)
        assert result.loaded, (result.path, result.error)


def test_every_generated_name_of_a_file_belongs_to_the_namespace_its_sidecar_names(produced):
    for path, _ in produced(user_classes.PRODUCERS, 10):
        sidecar = json.loads(path.with_name(path.name + SIDECAR_SUFFIX).read_text())
        packages = {rec.module.split(".", 1)[0] for rec in analyze_path(path).all_imports()} - _KNOWN_MODULES
        packages = {p for p in packages if not p.startswith("numpy")}
        assert packages, path
        assert {namespace_of(p) for p in packages} == {sidecar["namespace"]}, (path, packages)


def test_files_cover_the_pickling_shapes_of_user_classes(produced):
    paths = [p for p, _ in produced(user_classes.PRODUCERS, 30)]
    data = b"".join(p.read_bytes() for p in paths)
    assert b"copy_reg\n_reconstructor\n" in data  # protocols 0-1 (fix_imports spelling)
    assert b"\x81" in data and b"b" in data  # NEWOBJ and BUILD
    assert b"__main__" in data
    assert b"getattr" in data  # a bound method or a Class.method below protocol 4
    calls = [c for p in paths for c in analyze_path(p).all_calls()]
    # a generated rebuild function called with a class name and a dict: the shape of an unknown gadget call
    assert any(c.opcode == "REDUCE" and re.match(r"\('_?[A-Z]\w*', \{", c.args or "") for c in calls)
    shapes = set()
    for seed in range(40):
        plan = plan_benign_package(generate_names(f"shapes|{seed}", 10, namespace="train"), random.Random(seed))
        shapes |= {c.shape for c in plan.classes}
        assert all(c.factory is not None for c in plan.classes if c.shape == Shape.FACTORY)
    assert shapes == set(Shape)
