"""The joblib backend of a run: loky locally, or Dask through a distributed.Client (address or LocalCluster)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import joblib

from safepickle_bench.config import BackendConfig

log = logging.getLogger(__name__)


@contextlib.contextmanager
def joblib_backend(cfg: BackendConfig) -> Iterator[str]:
    """Make `cfg.name` joblib's active backend for the block and yield its name.

    For `dask`, connect a `distributed.Client` to `cfg.address`, or start a small in-process
    `LocalCluster` when no address is given; both are closed when the block ends.
    """
    if cfg.name != "dask":
        with joblib.parallel_config(backend=cfg.name, n_jobs=cfg.n_jobs):
            yield cfg.name
        return
    from distributed import Client, LocalCluster

    cluster = None
    if cfg.address:
        client = Client(cfg.address)
    else:
        cluster = LocalCluster(
            n_workers=cfg.local_workers,
            threads_per_worker=1,
            processes=cfg.local_processes,
            dashboard_address=None,
        )
        client = Client(cluster)
    log.info("joblib on dask: %s", client.scheduler.address if client.scheduler else cfg.address)
    try:
        with joblib.parallel_config(backend="dask", n_jobs=cfg.n_jobs):
            yield "dask"
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
