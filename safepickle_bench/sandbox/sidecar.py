"""Sidecars of samples that need a throwaway package: `<file>.syspath.json` says which folders go on sys.path.

Format: `{"sys_path": [folders relative to the file's folder], "main_module": str | null, "namespace": str}`.
`main_module`, when set, names a script module (found on those folders) whose public definitions the
pickle references as `__main__` attributes. The sandbox child applies a file's sidecar before it arms the
audit hook and forgets it (sys.path entries, the modules imported from those folders, the `__main__`
names) once the file is done, so files never see each other's packages.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

SIDECAR_SUFFIX = ".syspath.json"
"""Suffix appended to a sample's file name to find its sidecar."""


@dataclass(frozen=True)
class Sidecar:
    """A parsed sidecar: absolute sys.path folders, the script module, the name namespace."""

    sys_path: tuple[str, ...]
    main_module: str | None = None
    namespace: str | None = None


def sidecar_path(path: str | Path) -> Path:
    """Return where the sidecar of a sample file lives."""
    return Path(f"{path}{SIDECAR_SUFFIX}")


def write_sidecar(path: str | Path, sys_path: list[str], main_module: str | None, namespace: str | None) -> Path:
    """Write the sidecar of a sample file (folders relative to the file's folder); return where it went."""
    where = sidecar_path(path)
    record = {"sys_path": sys_path, "main_module": main_module, "namespace": namespace}
    where.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return where


def read_sidecar(path: str | Path) -> Sidecar | None:
    """Return the sample's sidecar with folders resolved against the file's folder, or None without one.

    Raises ValueError for a sidecar that is not the expected JSON object.
    """
    where = sidecar_path(path)
    if not where.is_file():
        return None
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable sidecar {where}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("sys_path", []), list):
        raise ValueError(f"sidecar {where} must be an object with a list 'sys_path'")
    folder = Path(path).parent
    entries = tuple(str((folder / str(p)).resolve()) for p in data.get("sys_path", []))
    main = data.get("main_module")
    namespace = data.get("namespace")
    return Sidecar(entries, str(main) if main else None, str(namespace) if namespace else None)


@dataclass
class SysPathSession:
    """What one file's sidecar added to the process, so it can be taken back."""

    paths: list[str] = field(default_factory=list)
    main_names: list[str] = field(default_factory=list)

    def enter(self, path: str) -> Sidecar | None:
        """Forget the previous file, then apply this file's sidecar (if any); return it."""
        self.leave()
        sidecar = read_sidecar(path)
        if sidecar is None:
            return None
        for entry in reversed(sidecar.sys_path):
            sys.path.insert(0, entry)
        self.paths = list(sidecar.sys_path)
        importlib.invalidate_caches()
        if sidecar.main_module:
            script = importlib.import_module(sidecar.main_module)
            main = sys.modules["__main__"]
            public = {k: v for k, v in vars(script).items()
                      if not (k.startswith("__") and k.endswith("__")) and not k.startswith("_spb_")}
            for key, value in public.items():
                setattr(main, key, value)
            self.main_names = list(public)
        return sidecar

    def leave(self) -> None:
        """Remove the sys.path entries, the modules imported from them and the `__main__` names added."""
        roots = tuple(os.path.join(entry, "") for entry in self.paths)
        for entry in self.paths:
            with contextlib.suppress(ValueError):
                sys.path.remove(entry)
        if roots:
            for name, module in list(sys.modules.items()):
                if str(getattr(module, "__file__", "") or "").startswith(roots):
                    del sys.modules[name]
            importlib.invalidate_caches()
        main = sys.modules["__main__"]
        for key in self.main_names:
            with contextlib.suppress(AttributeError):
                delattr(main, key)
        self.paths, self.main_names = [], []
