"""The oracle honours `<file>.syspath.json` for every loader, forgets it between files, and records find_class."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import pickle
import sys
import zipfile
from pathlib import Path

from safepickle_bench.craft.gadget_names import GadgetKind, GadgetName
from safepickle_bench.craft.gadget_package import Action, GadgetSpec, write_gadget_package
from safepickle_bench.datasets import oracle
from safepickle_bench.sandbox.sidecar import SIDECAR_SUFFIX, read_sidecar

PKG = "spbsidecarfixture"
HOLDER = '''
class Holder:
    """A plain data holder."""

    def __init__(self, value=None):
        self.value = value
'''


def _write_sidecar(path: Path, folder: str = "pkgs", main_module: str | None = None) -> None:
    sidecar = {"sys_path": [folder], "main_module": main_module, "namespace": "test"}
    Path(f"{path}{SIDECAR_SUFFIX}").write_text(json.dumps(sidecar), encoding="utf-8")


@contextlib.contextmanager
def _importable(root: Path):
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield importlib.import_module(PKG)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.split(".")[0] == PKG]:
            del sys.modules[name]


def _npy(array) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def _benign_files(tmp_path: Path) -> list[tuple[Path, str]]:
    """One file per loader, each holding an instance of a class that only the sidecar's package defines."""
    import dill
    import joblib
    import numpy as np
    import py7zr
    import torch

    root = tmp_path / "pkgs"
    (root / PKG).mkdir(parents=True)
    (root / PKG / "__init__.py").write_text(HOLDER, encoding="utf-8")
    items: list[tuple[Path, str]] = []
    with _importable(root) as module:
        obj = {"config": module.Holder([1, 2, 3])}
        data = pickle.dumps(obj, protocol=2)
        writers = {
            "pickle": lambda p: p.write_bytes(data),
            "pickle_syspath": lambda p: p.write_bytes(pickle.dumps(obj, protocol=0)),
            "pickle_multi": lambda p: p.write_bytes(data + pickle.dumps(obj, protocol=4)),
            "torch": lambda p: torch.save(obj, p),
            "torch_syspath": lambda p: torch.save(obj, p),
            "joblib": lambda p: joblib.dump(obj, p),
            "numpy": lambda p: p.write_bytes(_npy(np.array([obj["config"], None], dtype=object))),
            "dill": lambda p: p.write_bytes(dill.dumps(obj)),
        }
        for loader, write in writers.items():
            path = tmp_path / f"{loader}.bin"
            write(path)
            items.append((path, loader))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as archive:
            archive.writestr("archive/data.pkl", data)
        (tmp_path / "zip.bin").write_bytes(buf.getvalue())
        items.append((tmp_path / "zip.bin", "zip_pickle"))
        member = tmp_path / "data.pkl"
        member.write_bytes(data)
        with py7zr.SevenZipFile(tmp_path / "sz.bin", "w") as archive:
            archive.write(member, "archive/data.pkl")
        member.unlink()
        items.append((tmp_path / "sz.bin", "7z_pickle"))
    for path, _ in items:
        _write_sidecar(path)
    return items


def test_every_loader_imports_the_sidecar_package_and_loads_benign(tmp_path):
    items = _benign_files(tmp_path)
    assert {loader for _, loader in items} == set(oracle.LOADERS)
    results = oracle.confirm(items)
    for (_path, loader), res in zip(items, results, strict=True):
        assert res.loaded and res.event == "" and res.error is None, (loader, res)
        assert res.label == 0
        if loader != "numpy":  # numpy's own pickle starts with its reconstruct call
            assert [PKG, "Holder"] in [list(pair) for pair in res.find_class], (loader, res.find_class)


def test_the_child_forgets_a_files_package_before_the_next_file(tmp_path):
    with_sidecar = tmp_path / "a" / "model.pkl"
    with_sidecar.parent.mkdir()
    root = with_sidecar.parent / "pkgs"
    (root / PKG).mkdir(parents=True)
    (root / PKG / "__init__.py").write_text(HOLDER, encoding="utf-8")
    with _importable(root) as module:
        data = pickle.dumps(module.Holder(7), protocol=4)
    with_sidecar.write_bytes(data)
    _write_sidecar(with_sidecar)
    without = tmp_path / "b.pkl"
    without.write_bytes(data)
    first, second, third = oracle.confirm([(with_sidecar, "pickle"), (without, "pickle"), (with_sidecar, "pickle")])
    assert first.loaded and first.label == 0
    assert not second.loaded and "ModuleNotFoundError" in second.error and second.label is None
    assert third.loaded and third.label == 0


def test_a_generated_gadget_reached_through_the_sidecar_is_blocked_with_find_class_in_order(tmp_path):
    name = GadgetName("spbfixturegadget", "spbfixturegadget.runtime", "run_batch", GadgetKind.FUNCTION)
    folder = tmp_path / "s"
    write_gadget_package(folder / "pkgs", [GadgetSpec(name, Action.RUN_SHELL)])
    marker = tmp_path / "ran.txt"
    path = folder / "model.pkl"
    # {'a': str(1), 'b': run_batch('echo x > marker')}: builtins.str first, then the gadget
    path.write_bytes(b"\x80\x02}(X\x01\x00\x00\x00acbuiltins\nstr\nK\x01\x85RX\x01\x00\x00\x00b"
                     + b"c" + name.module_path.encode() + b"\n" + name.attr_path.encode() + b"\n"
                     + b"X" + len(f"echo x > {marker}").to_bytes(4, "little") + f"echo x > {marker}".encode()
                     + b"\x85Ru.")
    _write_sidecar(path)
    nt = tmp_path / "nt.pkl"
    nt.write_bytes(b"\x80\x02cbuiltins\nstr\n)Rcnt\nsystem\nX\x04\x00\x00\x00echo\x85R.")
    res, nt_res = oracle.confirm([(path, "pickle"), (nt, "pickle")])
    assert res.event == "os.system" and res.label == 1
    assert res.find_class == (("builtins", "str"), (name.module_path, name.attr_path))
    assert not marker.exists()
    if sys.platform != "win32":  # the blocked find_class itself is the last one recorded
        assert nt_res.event == "find_class:nt.system"
        assert nt_res.find_class == (("builtins", "str"), ("nt", "system"))


def test_discard_sample_removes_the_file_its_sidecar_and_packages_no_other_sidecar_names(tmp_path):
    folder = tmp_path / "sample"
    for sub in ("pkgs", "shared"):
        (folder / sub / "pkgx").mkdir(parents=True)
        (folder / sub / "pkgx" / "__init__.py").write_text("", encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    first, second = folder / "a.pkl", folder / "b.pkl"
    for path in (first, second):
        path.write_bytes(pickle.dumps(1))
    Path(f"{first}{SIDECAR_SUFFIX}").write_text(json.dumps({"sys_path": ["pkgs", "shared", "../outside"]}))
    _write_sidecar(second, "shared")
    assert read_sidecar(first).sys_path[0] == str((folder / "pkgs").resolve())
    oracle.discard_sample(first)
    assert not first.exists() and not Path(f"{first}{SIDECAR_SUFFIX}").exists()
    assert not (folder / "pkgs").exists()
    assert (folder / "shared").is_dir() and outside.is_dir()  # still named by b.pkl's sidecar / outside the folder
    oracle.discard_sample(second)
    assert not (folder / "shared").exists() and not second.exists()
    oracle.discard_sample(folder / "missing.pkl")  # a missing file is no error
