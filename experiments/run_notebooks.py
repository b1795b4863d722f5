"""Execute every notebook of notebooks/ top to bottom and save its outputs and figures into the .ipynb.

    python experiments/run_notebooks.py                  # full size: the data, results/ and mlflow.db reproduce_all left
    python experiments/run_notebooks.py --small          # the small datasets and the small runs of the store
    python experiments/run_notebooks.py --only 03_never_seen_gadget

Each notebook runs in a fresh `python3` kernel whose working directory is notebooks/ (the notebooks find the
project root from there) and reads its parameters from the environment this script sets: dataset size,
datasets folder, MLflow store. With the default `--out` (the project's results/) the notebooks are rewritten
in place with their outputs, as committed; with any other `--out` (a trial reproduction into a temporary
folder) the executed copies go to <out>/notebooks/ and the committed notebooks are left alone. A notebook that
fails is never written over: its partly executed copy goes to <out>/logs/notebooks/ for reading.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from safepickle_bench import paths

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"


def notebook_env(small: bool, tracking_uri: str | None) -> dict[str, str]:
    """Return the environment variables the notebooks read their parameters from."""
    return {
        "SAFEPICKLE_NB_DATASET": "hf",
        "SAFEPICKLE_NB_SIZE": "small" if small else "full",
        "SAFEPICKLE_DATA_DIR": str(paths.data_dir(REPO)),
        "SAFEPICKLE_TRACKING_URI": tracking_uri or paths.mlflow_uri(REPO),
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "PYTHONWARNINGS": "ignore:IProgress not found",  # tqdm's note that a batch kernel has no widgets
    }


def execute_notebook(nb: nbformat.NotebookNode, folder: Path, timeout: int) -> None:
    """Run a notebook in a fresh kernel from `folder`, filling its outputs in place (raises when a cell fails)."""
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(folder)}}).execute()


def main(argv: list[str] | None = None) -> int:
    """Execute the notebooks (in place for the project's results/), one line each; exit 1 when one failed."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="the small datasets and the store's small runs")
    ap.add_argument("--out", default=str(paths.results_dir(REPO)),
                    help="results folder of the run: the project's results/ rewrites the notebooks in place, "
                         "another folder receives executed copies in <out>/notebooks/")
    ap.add_argument("--tracking-uri", default=None, help="MLflow store (default: the project's mlflow.db)")
    ap.add_argument("--only", default="", help="run only these notebooks (comma list of names without .ipynb)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    args = ap.parse_args(argv)
    only = {s.removesuffix(".ipynb") for s in args.only.split(",") if s}
    notebooks = [p for p in sorted(NOTEBOOK_DIR.glob("*.ipynb")) if not only or p.stem in only]
    out = Path(args.out).resolve()
    target = NOTEBOOK_DIR if out == paths.results_dir(REPO).resolve() else out / "notebooks"
    target.mkdir(parents=True, exist_ok=True)
    os.environ.update(notebook_env(args.small, args.tracking_uri))  # the kernels inherit this environment
    failed = []
    for k, path in enumerate(notebooks, 1):
        print(f"[{k}/{len(notebooks)}] {path.name}", flush=True)
        t0 = time.perf_counter()
        nb = nbformat.read(path, as_version=4)
        try:
            execute_notebook(nb, path.parent, args.timeout)
        except Exception as exc:  # a failing cell, a timeout or a dead kernel: record it, go on
            failed.append(path.name)
            keep = out / "logs" / "notebooks" / path.name
            keep.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, keep)
            print(f"[{k}/{len(notebooks)}] {path.name}: FAILED after {time.perf_counter() - t0:.0f} s "
                  f"({type(exc).__name__}), left unchanged; executed part in {keep}\n{str(exc)[-2000:]}",
                  flush=True)
            continue
        nbformat.write(nb, target / path.name)
        print(f"[{k}/{len(notebooks)}] {path.name}: executed in {time.perf_counter() - t0:.0f} s -> "
              f"{target / path.name}", flush=True)
    print(f"{len(notebooks) - len(failed)} of {len(notebooks)} notebooks executed"
          + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
