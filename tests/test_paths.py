"""One paths module: outputs under one root (cwd, $SAFEPICKLE_ROOT or paths.root_dir), never the package's tree."""

from __future__ import annotations

import re
from pathlib import Path

from hydra import compose, initialize_config_dir

from safepickle_bench import paths
from safepickle_bench.config import run_config

PACKAGE = paths.PACKAGE_DIR
REPO = PACKAGE.parent


def composed(*overrides: str):
    """Compose the packaged config with overrides."""
    with initialize_config_dir(config_dir=str(paths.CONF_DIR), version_base="1.3"):
        return compose("config", overrides=["experiment=rf_hf", *overrides])


def test_root_is_the_cwd_unless_the_environment_or_an_argument_names_one(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.ROOT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert paths.root_dir() == tmp_path
    assert paths.data_dir() == tmp_path / "data" and paths.models_dir() == tmp_path / "models"
    assert paths.results_dir() == tmp_path / "results" and paths.venvs_dir() == tmp_path / ".venvs"
    assert paths.mlflow_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert paths.feature_cache_dir() == tmp_path / "data" / "feature_cache"
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path / "elsewhere"))
    assert paths.root_dir() == tmp_path / "elsewhere"
    assert paths.root_dir(tmp_path / "given") == tmp_path / "given"


def test_wild_corpus_is_the_env_var_else_shared_beside_the_root(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.WILD_ENV, raising=False)
    root = tmp_path / "checkout"
    assert paths.wild_dir(root) == tmp_path / "shared" / "corpus" / "wild"
    monkeypatch.setenv(paths.WILD_ENV, str(tmp_path / "corpus"))
    assert paths.wild_dir(root) == tmp_path / "corpus"


def test_composed_config_puts_every_output_under_the_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.ROOT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    rc = run_config(composed())
    for folder in (rc.paths.root_dir, rc.paths.data_dir, rc.paths.models_dir, rc.paths.results_dir):
        assert folder.is_relative_to(tmp_path) and not paths.is_inside_package(folder)
    assert rc.tracking.uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert rc.tracking.artifact_location == (tmp_path / "mlartifacts").as_uri()


def test_root_dir_override_moves_every_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = run_config(composed(f"paths.root_dir={tmp_path / 'out'}"))
    assert rc.paths.data_dir == tmp_path / "out" / "data"
    assert rc.tracking.uri == f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}"


def test_hydra_ships_inside_the_package():
    assert paths.CONF_DIR.is_relative_to(PACKAGE) and (paths.CONF_DIR / "config.yaml").is_file()
    assert not (REPO / "conf").exists()


def test_no_module_locates_project_folders_from_its_own_file():
    """Only paths.py may derive locations from `__file__`; modules may read files beside themselves."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "paths.py":
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"parents\[\d\]|environ(\.get)?[(\[]\s*[\"']SAFEPICKLE_(ROOT|WILD_DIR)|[\"']shared[\"']\s*/", text):
            offenders.append(str(path.relative_to(REPO)))
    assert not offenders, f"locate folders through safepickle_bench.paths instead: {offenders}"


def test_package_data_lists_every_yaml_the_package_holds():
    import tomllib

    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = globs["safepickle_bench"]
    for data in [*PACKAGE.rglob("*.yaml"), *PACKAGE.rglob("*.json")]:
        rel = data.relative_to(PACKAGE)
        assert any(rel.match(p.replace("**/", "")) or Path(rel).match(p) for p in patterns), rel
