#!/usr/bin/env bash
# Install the third-party scanners benchmarked by `experiment=scanners_*`.
# - main env: picklescan, modelscan, fickling, vt-py (the `scanners` extra; torch stays pinned)
# - .venvs/modelaudit: modelaudit in its own venv (pins numpy<2.5, ~170 MB of deps, telemetry, $HOME writes)
# - ClamAV from Debian (no signature database can be downloaded here: the wrapper reports "unavailable")
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -e ".[scanners]" "torch==2.13.0"
python -m safepickle_bench.scanners.envs modelaudit
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ] && ! command -v clamscan >/dev/null; then
    apt-get update -q && apt-get install -y -q clamav
fi
python -m safepickle_bench.scanners.envs --check
