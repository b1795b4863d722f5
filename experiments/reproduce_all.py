"""Regenerate every results table and figure in one command (the Python core of reproduce_all.sh).

    bash experiments/reproduce_all.sh                 # full size (see results/reproduce_log.md for the time)
    bash experiments/reproduce_all.sh --small         # small datasets, fast presets: minutes
    python experiments/reproduce_all.py --small --out /tmp/r --tracking-uri sqlite:////tmp/r/mlflow.db \
        --models-dir /tmp/r/models --models rf,lof --feature-sets opcodes,all --scanners picklescan,ours --skip robustness

Each step is one script under experiments/ run as its own process (so one crash never stops the others),
with the shared options passed through; progress is printed as `[k/N] step (elapsed)` and every step's
output goes to <out>/logs/<step>.log. Order matters: Table 1 exports the models the `ours` scanner and
the latency table use; the scanner benchmark runs before the tables that merge its results. At the end
<out>/reproduce_log.md lists each step's status and wall time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from safepickle_bench.reporting.tables import markdown_table

REPO = Path(__file__).resolve().parents[1]
TABLES = REPO / "experiments" / "tables"


@dataclass(frozen=True)
class Step:
    """One script of the reproduction: its name, path, and whether it takes the model list."""

    name: str
    script: Path
    takes_models: bool = False
    kind: str = "table"
    extra: tuple[str, ...] = ()
    """Options of this step's own, passed after the shared ones."""


STEPS: tuple[Step, ...] = (
    Step("generalization", REPO / "experiments" / "run_generalization.py", kind="script"),
    Step("default_detector", REPO / "experiments" / "train_default_detector.py", kind="script",
         extra=("--compare", "--no-install")),
    Step("main_comparison", TABLES / "main_comparison.py", takes_models=True),
    Step("scanners", REPO / "experiments" / "run_scanners.py", kind="scanners"),
    Step("scanners_vs_best", TABLES / "scanners_vs_best.py"),
    Step("ood", TABLES / "ood.py", takes_models=True),
    Step("hide_and_seek", TABLES / "hide_and_seek_matrix.py", takes_models=True),
    Step("joblib", TABLES / "joblib_table.py", takes_models=True),
    Step("wild", TABLES / "wild.py", takes_models=True),
    Step("latency", TABLES / "latency.py", takes_models=True),
    Step("ablation_feature_groups", TABLES / "ablation_feature_groups.py"),
    Step("ablation_train_size", TABLES / "ablation_train_size.py"),
    Step("ablation_split_protocol", TABLES / "ablation_split_protocol.py"),
    Step("ablation_supervised_vs_unsupervised", TABLES / "ablation_supervised_vs_unsupervised.py"),
    Step("robustness", REPO / "experiments" / "run_robustness.py", kind="hydra"),
    Step("notebooks", REPO / "experiments" / "run_notebooks.py", kind="notebooks"),
    Step("readme", TABLES / "readme.py"),
)


def step_command(step: Step, args: argparse.Namespace, out: Path) -> list[str]:
    """Return the command line of one step with the shared options."""
    cmd = [sys.executable, str(step.script)]
    if step.kind == "hydra":  # run_robustness.py takes Hydra overrides
        cmd += [f"dataset.size={'small' if args.small else 'full'}", f"paths.results_dir={out}",
                f"paths.root_dir={REPO}"]
        if args.tracking_uri:
            cmd.append(f"tracking.uri={args.tracking_uri}")
        if args.models_dir:
            cmd.append(f"paths.models_dir={args.models_dir}")
        cmd.append(f"attack.max_samples={20 if args.small else 300}")  # full: as results/robustness.md
        return cmd
    cmd += ["--out", str(out)]
    if args.small:
        cmd.append("--small")
    if args.tracking_uri and step.kind in ("table", "notebooks"):  # notebook 02 reads the run's store
        cmd += ["--tracking-uri", args.tracking_uri]
    if args.models_dir and step.kind == "table":
        cmd += ["--models-dir", args.models_dir]
    if step.takes_models and args.models:
        cmd += ["--models", args.models]
    if step.name == "ablation_split_protocol" and args.models:
        cmd += ["--models", args.models]
    if step.name == "ablation_feature_groups" and args.feature_sets:
        cmd += ["--feature-sets", args.feature_sets]
    cmd += list(step.extra)
    if step.kind == "scanners":  # run_scanners.py takes Hydra overrides after its options
        if args.scanners:
            cmd += ["--scanners", args.scanners]
        if args.tracking_uri:
            cmd.append(f"tracking.uri={args.tracking_uri}")
        if args.models_dir:
            cmd.append(f"paths.models_dir={args.models_dir}")
    return cmd


def is_progress(step: Step, line: str) -> bool:
    """Return True for the lines shown on the console: `[...]` progress, and the scanner/attack steps' own."""
    text = line.strip()
    if line.startswith("[") and "]" in line[:60]:
        return True
    if step.kind == "table" or not text or len(text) > 160:
        return False
    return not text.startswith(("|", "warn", "Traceback")) and "Warning" not in text and " INFO " not in text


def step_env() -> dict[str, str]:
    """Return the environment of the step processes: unbuffered output, the project root."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["SAFEPICKLE_ROOT"] = str(REPO)
    return env


def run_step(step: Step, cmd: list[str], log_path: Path, env: dict[str, str]) -> tuple[int, float]:
    """Run one step, streaming its progress lines (`[...]`) to the console and everything to its log."""
    t0 = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if is_progress(step, line):
                print(f"      {line.rstrip()}", flush=True)
        rc = proc.wait()
    return rc, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    """Run every step in order, show progress, write reproduce_log.md; exit 1 when a step failed."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="small datasets and fast presets (minutes)")
    ap.add_argument("--out", default=str(REPO / "results"))
    ap.add_argument("--tracking-uri", default=None, help="MLflow store (default: the project's mlflow.db)")
    ap.add_argument("--models-dir", default=None, help="where Table 1 exports models (default: models/)")
    ap.add_argument("--models", default=None, help="restrict every model table to these models (comma list)")
    ap.add_argument("--feature-sets", default=None, help="restrict the feature-group ablation (comma list)")
    ap.add_argument("--skip", default="", help="steps to skip (comma list of step names)")
    ap.add_argument("--only", default="", help="run only these steps (comma list of step names)")
    ap.add_argument("--scanners", default=None, help="restrict the scanner benchmark (comma list of scanners)")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    skip = {s for s in args.skip.split(",") if s}
    only = {s for s in args.only.split(",") if s}
    steps = [s for s in STEPS if s.name not in skip and (not only or s.name in only)]
    env = step_env()
    started = time.perf_counter()
    size = "small" if args.small else "full"
    print(f"reproduce_all: {len(steps)} steps, size={size}, results -> {out}", flush=True)
    results = []
    for k, step in enumerate(steps, 1):
        elapsed = time.perf_counter() - started
        if not step.script.is_file():
            print(f"[{k}/{len(steps)}] {step.name}: MISSING {step.script.relative_to(REPO)}", flush=True)
            results.append((step, "missing script", 0.0))
            continue
        print(f"[{k}/{len(steps)}] {step.name} (started at +{elapsed / 60:.1f} min)", flush=True)
        cmd = step_command(step, args, out)
        rc, seconds = run_step(step, cmd, out / "logs" / f"{step.name}.log", env)
        status = "ok" if rc == 0 else f"exit {rc}"
        print(f"[{k}/{len(steps)}] {step.name}: {status} in {seconds:.0f} s", flush=True)
        results.append((step, status, seconds))
    total = time.perf_counter() - started
    lines = [
        "# Reproduction log",
        "",
        f"`python experiments/reproduce_all.py{' --small' if args.small else ''}` "
        f"({' '.join(argv if argv is not None else sys.argv[1:])}) on {dt.date.today().isoformat()}, "
        f"{os.cpu_count()} cores: {total / 60:.1f} min wall in total. Per-step logs: `logs/<step>.log`.",
        "",
        markdown_table([{"step": s.name, "script": f"`{s.script.relative_to(REPO)}`", "status": st,
                         "wall s": f"{sec:.0f}"} for s, st, sec in results], ["step", "script", "status", "wall s"]),
        "",
    ]
    (out / "reproduce_log.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines), flush=True)
    return 0 if all(st == "ok" for _, st, _ in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
