"""The package's layering contracts (pyproject.toml [tool.importlinter]) hold: `lint-imports` passes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _lint_imports() -> list[str]:
    """Return the command that runs import-linter in this interpreter's environment."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports not found: install the dev extra (pip install -e '.[dev]')")
    return [exe, "--config", str(REPO / "pyproject.toml")]


def test_every_import_contract_is_kept():
    done = subprocess.run(_lint_imports(), cwd=REPO, capture_output=True, text=True, timeout=300)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "0 broken" in report and "BROKEN" not in report, report
