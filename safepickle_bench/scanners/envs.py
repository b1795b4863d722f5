"""Create the separate virtual environments of scanners whose dependencies conflict with ours.

`python -m safepickle_bench.scanners.envs` creates `.venvs/<name>/` (git-ignored) under the output root
(`paths.venvs_dir`: the current directory unless $SAFEPICKLE_ROOT says otherwise)
for every scanner listed in `SCANNER_VENVS` and pip-installs its pinned requirements there; `--check`
only reports what is present. Our own stack (numpy, torch 2.13.0...) is never touched by these venvs.

- modelaudit: ~170 MB of dependencies (cloud SDKs, grpc), pins numpy<2.5, sends telemetry unless
  PROMPTFOO_DISABLE_TELEMETRY=1, writes under $HOME, and gives different verdicts when torch is already
  imported in its process. Its own venv (without torch) keeps all of that away from us.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from safepickle_bench import paths

SCANNER_VENVS: dict[str, list[str]] = {
    "modelaudit": ["modelaudit==0.2.54"],
}
"""Venv name -> pip requirements installed into it."""

VENV_EXECUTABLES: dict[str, str] = {"modelaudit": "modelaudit"}
"""Venv name -> the console script the scanner wrapper runs."""


def venv_dir(name: str, root: Path | None = None) -> Path:
    """Return the directory of the venv `name`."""
    return (root or paths.venvs_dir()) / name


def venv_executable(name: str, root: Path | None = None) -> Path:
    """Return the path of the venv's console script for its scanner."""
    return venv_dir(name, root) / "bin" / VENV_EXECUTABLES.get(name, name)


def create_venv(name: str, root: Path | None = None, force: bool = False) -> float:
    """Create (or complete) the venv `name` and install its requirements; return the seconds taken."""
    start = time.perf_counter()
    target = venv_dir(name, root)
    if force or not (target / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(target)], check=True)
    subprocess.run(
        [str(target / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
         *SCANNER_VENVS[name]],
        check=True,
    )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Create the scanner venvs (or, with --check, list which are ready)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=sorted(SCANNER_VENVS), help="venvs to create (default: all)")
    parser.add_argument("--check", action="store_true", help="only report which venvs are ready")
    parser.add_argument("--force", action="store_true", help="recreate from scratch")
    parser.add_argument("--root", type=Path, default=None, help="where the venvs live")
    args = parser.parse_args(argv)
    status = 0
    for name in args.names:
        if name not in SCANNER_VENVS:
            print(f"{name}: unknown (known: {sorted(SCANNER_VENVS)})", file=sys.stderr)
            status = 2
            continue
        exe = venv_executable(name, args.root)
        if args.check:
            print(f"{name}: {'ready' if exe.exists() else 'missing'} ({exe})")
            status = status or (0 if exe.exists() else 1)
            continue
        seconds = create_venv(name, args.root, args.force)
        print(f"{name}: ready in {seconds:.0f} s ({exe})")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
