"""Training, evaluation, latency and MLflow tracking of detectors, driven by Hydra."""
