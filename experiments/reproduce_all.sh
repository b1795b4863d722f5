#!/usr/bin/env bash
# Regenerate every table and figure of results/ (see results/README.md) in one command.
#   bash experiments/reproduce_all.sh            # full size; the wall time lands in results/reproduce_log.md
#   bash experiments/reproduce_all.sh --small    # small datasets and fast model presets, a few minutes
# Other options (--out, --tracking-uri, --models, --skip, --only ...): python experiments/reproduce_all.py -h
set -euo pipefail
cd "$(dirname "$0")/.."
exec python experiments/reproduce_all.py "$@"
