"""Run the adaptive-attack benchmark and write results/robustness.{md,csv} and the recall-vs-padding figure.

Usage (Hydra overrides as for `python -m safepickle_bench`):
    python experiments/run_robustness.py                       # experiment=attack_all, dataset.size=full
    python experiments/run_robustness.py dataset.size=small attack.max_samples=40
Equivalent to `python -m safepickle_bench experiment=attack_all ...` (task=attack).
"""

from __future__ import annotations

import logging
import sys


def main(argv: list[str]) -> int:
    """Compose the attack experiment with the given overrides, run it, print the recall table."""
    from hydra import compose, initialize_config_dir

    from safepickle_bench.paths import CONF_DIR
    from safepickle_bench.pipeline.attack_benchmark import run_from_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("matplotlib", "hydra", "numba", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    overrides = list(argv)
    if not any(o.startswith("experiment=") for o in overrides):
        overrides.insert(0, "experiment=attack_all")
    if not any(o.startswith("dataset.size=") for o in overrides):
        overrides.append("dataset.size=full")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    table = run_from_config(cfg)
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
