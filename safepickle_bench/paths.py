"""Where things live: the package's own files (read only) and the output root every run writes under.

Outputs (data/, models/, results/, mlflow.db, mlartifacts/, outputs/, .venvs/) always go under one root: the
current directory by default, `$SAFEPICKLE_ROOT` or the `paths.root_dir` config key to change it; never under
the installed package. Inputs read in place (the wild corpus, the PickleBall artifact) default to
`../shared/...` beside that root, each overridable by its own environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT_ENV = "SAFEPICKLE_ROOT"
"""Environment variable naming the output root (default: the current directory)."""
WILD_ENV = "SAFEPICKLE_WILD_DIR"
"""Environment variable naming the wild corpus folder (default: `<root>/../shared/corpus/wild`)."""
PICKLEBALL_ENV = "SAFEPICKLE_PICKLEBALL_DIR"
"""Environment variable naming the PickleBall artifact folder (default: `<root>/../shared/pickleball`)."""

PACKAGE_DIR = Path(__file__).resolve().parent
"""The installed `safepickle_bench` package (read only: nothing is ever written here)."""
IMPORT_ROOT = PACKAGE_DIR.parent
"""The folder that holds the package: child processes put it on `sys.path` to import us."""
CONF_DIR = PACKAGE_DIR / "conf"
"""The Hydra config tree shipped inside the package."""


def _absolute(path: str | os.PathLike[str]) -> Path:
    """Return `path` with `~` expanded, made absolute against the current directory."""
    return Path(path).expanduser().absolute()


def root_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the output root: `root` when given, else `$SAFEPICKLE_ROOT`, else the current directory."""
    chosen = root if root not in (None, "") else os.environ.get(ROOT_ENV) or "."
    return _absolute(chosen)


def data_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the datasets folder under the output root."""
    return root_dir(root) / "data"


def models_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the exported-models folder under the output root."""
    return root_dir(root) / "models"


def results_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the results folder (tables, figures) under the output root."""
    return root_dir(root) / "results"


def feature_cache_dir(data: str | os.PathLike[str] | None = None) -> Path:
    """Return the per-file feature cache folder inside the datasets folder `data` (default: the root's)."""
    return (_absolute(data) if data is not None else data_dir()) / "feature_cache"


def venvs_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder of the scanners' own virtual environments under the output root."""
    return root_dir(root) / ".venvs"


def mlflow_uri(root: str | os.PathLike[str] | None = None) -> str:
    """Return the default MLflow store: an SQLite file `mlflow.db` under the output root."""
    return f"sqlite:///{root_dir(root) / 'mlflow.db'}"


def mlflow_artifact_location(root: str | os.PathLike[str] | None = None) -> str:
    """Return the default MLflow artifact location (`mlartifacts/` under the output root) as a URI."""
    return (root_dir(root) / "mlartifacts").as_uri()


def wild_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the wild corpus folder: `$SAFEPICKLE_WILD_DIR`, else `../shared/corpus/wild` beside the root."""
    env = os.environ.get(WILD_ENV)
    if env:
        return _absolute(env)
    return (root_dir(root).parent / "shared" / "corpus" / "wild").resolve()


def pickleball_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the PickleBall artifact folder: `$SAFEPICKLE_PICKLEBALL_DIR`, else `../shared/pickleball`."""
    env = os.environ.get(PICKLEBALL_ENV)
    if env:
        return _absolute(env)
    return (root_dir(root).parent / "shared" / "pickleball").resolve()


def is_inside_package(path: str | os.PathLike[str]) -> bool:
    """Return True when `path` lies inside the installed package's own tree (where outputs must never go)."""
    return Path(path).resolve().is_relative_to(PACKAGE_DIR)
