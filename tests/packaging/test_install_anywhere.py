"""A non-editable install into a fresh venv runs from any directory and writes only under that directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAYLOAD = b"\x80\x02cposix\nsystem\nX\x07\x00\x00\x00echo hi\x85R."
"""GLOBAL posix.system, 'echo hi', TUPLE1, REDUCE, STOP: inert bytes, only ever analysed."""
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def tracked_copy(dest: Path) -> Path:
    """Copy the repository's tracked files (as they are in the working tree) to `dest`."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def package_files(site: Path) -> dict[str, float]:
    """Return {relative path: mtime} of the files under `site` (bytecode caches aside)."""
    return {str(p.relative_to(site)): p.stat().st_mtime for p in site.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 1800) -> tuple[str, float]:
    """Run a command, fail with its output on a non-zero exit; return (stdout, seconds)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout, time.perf_counter() - start


def test_installed_package_runs_from_a_temp_dir_and_writes_only_under_it(tmp_path):
    src = tracked_copy(tmp_path / "src")
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items()
           if k not in ("SAFEPICKLE_ROOT", "SAFEPICKLE_WILD_DIR", "PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONWARNINGS"] = "ignore"
    # without the venv's own bundled pip/setuptools: the system's (a setuptools that builds wheels) install into it
    run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], tmp_path, env)
    py, cli = venv / "bin" / "python", venv / "bin" / "safepickle-bench"
    _, install_s = run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(src)],
                       tmp_path, env)
    where, _ = run([str(py), "-c", "import safepickle_bench; print(safepickle_bench.__file__)"], tmp_path, env)
    package = Path(where.strip()).parent
    assert package.is_relative_to(venv), f"imported {package}, not the venv's copy"
    assert (package / "conf" / "config.yaml").is_file() and (package / "conf" / "experiment" / "rf_hf.yaml").is_file()
    before, source = package_files(package), package_files(src)

    work = tmp_path / "work"
    work.mkdir()
    (work / "sample.pkl").write_bytes(PAYLOAD)
    out, analyze_s = run([str(cli), "analyze", "sample.pkl"], work, env)
    assert "posix.system" in out
    # the shipped detector is package data: `scan` without --model flags the sample (exit 1) from any cwd
    proc = subprocess.run([str(cli), "scan", "--json", "sample.pkl"], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert '"malicious"' in proc.stdout and "posix.system" in proc.stdout
    # the smallest preset: what matters is where the run writes, not what it learns
    _, train_s = run([str(cli), "experiment=rf_hf", "dataset.size=tiny", "fast=true"], work, env)

    assert package_files(package) == before, "the run wrote into the installed package"
    assert package_files(src) == source, "the run wrote into the source copy"
    assert (work / "data" / "hf" / "tiny" / "manifest.parquet").is_file()
    assert (work / "models" / "rf_hf" / "detector.json").is_file()
    assert (work / "mlflow.db").is_file() and (work / "outputs").is_dir()
    print(f"install {install_s:.1f} s, analyze {analyze_s:.1f} s, rf_hf tiny fast {train_s:.1f} s")
