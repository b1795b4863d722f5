"""The pre-commit hook: a valid manifest, and `pre-commit try-repo` runs it on a throwaway project, offline.

pre-commit installs a `language: python` hook with `pip install .` into a fresh virtualenv. To stay offline the
test lets that virtualenv see this interpreter's packages (VIRTUALENV_SYSTEM_SITE_PACKAGES) and tells pip not to
fetch anything (PIP_NO_INDEX, PIP_NO_DEPS, no build isolation): the package itself is still built and installed
from the hook repository, as a user's pre-commit would do with network access and its dependencies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BENIGN_PICKLE, PAYLOAD_P2

REPO = Path(__file__).resolve().parents[2]
HOOKS = REPO / ".pre-commit-hooks.yaml"


def test_the_hook_manifest_is_valid_and_scans_every_file_by_content():
    from pre_commit.clientlib import load_manifest

    (hook,) = load_manifest(str(HOOKS))
    assert hook["id"] == "safepickle-scan" and hook["entry"] == "safepickle-bench scan"
    assert hook["language"] == "python" and hook["pass_filenames"] is True and hook["require_serial"] is True
    assert hook["files"] == "" and hook["types"] == ["file"] and "--quiet" in hook["args"]


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=test@example.invalid", "-c", "user.name=test", *args],
                   cwd=cwd, check=True, capture_output=True, timeout=60)


def _hook_repo(dest: Path) -> Path:
    """A git repository holding the package and its hook manifest, as users would point pre-commit at."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "safepickle_bench", dest / "safepickle_bench",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", "hooks")
    return dest


@pytest.mark.slow
def test_pre_commit_try_repo_fails_on_a_malicious_pickle_and_passes_without_it(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    hooks = _hook_repo(tmp_path / "hooks")
    project = tmp_path / "project"
    project.mkdir()
    (project / "evil.pkl").write_bytes(PAYLOAD_P2)
    (project / "weights.bin").write_bytes(BENIGN_PICKLE)
    (project / "README.md").write_text("# a project\n")
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "VIRTUALENV_SYSTEM_SITE_PACKAGES": "1",
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # pip reads this negative option's variable as "disable isolation"
    }
    command = ["pre-commit", "try-repo", str(hooks), "safepickle-scan", "--all-files"]
    if shutil.which("pre-commit") is None:
        pytest.skip("pre-commit is not installed (dev extra)")
    first = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "evil.pkl: MALICIOUS" in first.stdout and "call posix.system" in first.stdout
    assert "summary: scanned 2, flagged 1, clean 1, errors 0, skipped 1" in first.stdout
    _git(project, "rm", "-q", "-f", "evil.pkl")
    second = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Passed" in second.stdout
