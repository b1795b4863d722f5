"""Adaptive-attack benchmark: recall of every model x feature set and every scanner on attacked test files.

Flow: the malicious files of a dataset (default `hf`) are rebuilt as their parts (the benign carrier of the same
group and file name, a fresh payload of the same family, the same injection) -> every attack at every ratio ->
label oracle (an attacked file that does not reach a dangerous event is dropped and counted) -> features ->
stratified group k-fold: each model is trained on the clean training folds and scores the attacked versions of
the held-out fold's malicious files -> recall per (method, features, attack, ratio). Scanners scan a capped
sample of the attacked files (the policy loader learns its allow-lists per fold, like the models).

Hardening measured next to the plain models (clean-data CV F1 reported for each):
- `+rules`: the model's verdict OR the analyzer's records: any import or call in a dangerous taxonomy category
  that no benign file of the training fold uses -> malicious (categories learned per fold).
- `+adv`: adversarial training: each training fold is augmented with the oracle-confirmed attacked versions
  of that fold's own malicious training files (never a test file of the fold).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from safepickle_bench.attacks.registry import ATTACKS, attack_sample
from safepickle_bench.attacks.target import STANDALONE, AttackNotApplicable, MaliciousSample
from safepickle_bench.metrics import f1
from safepickle_bench.reporting.results_figures import recall_vs_padding
from safepickle_bench.reporting.tables import frame_table
from safepickle_bench.splits import fold_ids, group_kfold

log = logging.getLogger(__name__)

MARKER_DIR = "/tmp/safepickle-out/markers"
CSV_COLUMNS: tuple[str, ...] = ("method", "features", "attack", "ratio", "recall")


@dataclass
class RobustnessConfig:
    """Typed view of the `attack` config node plus the run's dataset, paths and seed."""

    dataset: str = "hf"
    size: str = "small"
    data_dir: Path = Path("data")
    results_dir: Path = Path("results")
    seed: int = 0
    attacks: tuple[str, ...] = tuple(ATTACKS)
    ratios: dict[str, tuple[int | None, ...]] = field(default_factory=dict)
    """Per-attack ratio overrides (default: the registry's)."""
    models: dict[str, Any] = field(default_factory=dict)
    """Model name -> config node with `_target_` (conf/model/*.yaml)."""
    feature_sets: dict[str, tuple[str, ...]] = field(default_factory=lambda: {"opcodes": ("opcodes",),
                                                                               "all": ("opcodes", "structure",
                                                                                       "imports", "strings",
                                                                                       "ngrams")})
    hardening: tuple[str, ...] = ("rules", "adv")
    scanners: dict[str, Any] = field(default_factory=dict)
    """Scanner name -> config node with `_target_` (conf/scanner/*.yaml)."""
    scanner_max_files: int = 20
    """Attacked files scanned per (attack, ratio) by each scanner (a deterministic sample)."""
    scanner_caps: dict[str, int] = field(default_factory=dict)
    """Per-scanner overrides of scanner_max_files (slow scanners that spawn a process per file)."""
    n_splits: int = 5
    max_samples: int | None = None
    """Cap on the malicious source files attacked (stratified by fold); None = all."""
    n_jobs: int = 2
    write_results: bool = True


# ----------------------------------------------------------------------------------------------- samples


def malicious_samples(manifest: pd.DataFrame, seed: int) -> tuple[list[tuple[int, MaliciousSample]], int]:
    """Return (row index, sample) for each malicious row whose carrier is found, and how many were skipped."""
    from safepickle_bench.craft.payloads import build_payload

    benign = manifest[manifest["label"] == 0]
    carriers = {(g, Path(p).name): a for g, p, a in zip(benign["group"], benign["path"], benign["abspath"],
                                                        strict=True)}
    out: list[tuple[int, MaliciousSample]] = []
    skipped = 0
    for idx, row in manifest[manifest["label"] == 1].iterrows():
        prng = random.Random(f"{seed}|{row['path']}")
        injection = str(row.get("injection") or STANDALONE)
        family = str(row["payload_family"])
        if not family:
            skipped += 1
            continue
        carrier = None
        if injection != STANDALONE:
            path = carriers.get((row["group"], Path(row["path"]).name))
            if path is None:
                skipped += 1
                continue
            carrier = Path(path).read_bytes()
        protocol = prng.choice([2, 3, 4, 5]) if carrier is None else 2
        payload = build_payload(family, MARKER_DIR, protocol=protocol, variant=prng.randrange(1000), rng=prng)
        out.append((int(idx), MaliciousSample(payload=payload, carrier=carrier, injection=injection,
                                              name=Path(row["path"]).name, loader=str(row["loader"]))))
    return out, skipped


def _ratio_key(ratio: float | None) -> str:
    """Return a ratio as it appears in file names and tables ('' for none)."""
    if ratio is None or (isinstance(ratio, float) and math.isnan(ratio)):
        return ""
    return f"{ratio:g}"


def generate_attacked(cfg: RobustnessConfig, manifest: pd.DataFrame, folds: np.ndarray,
                      work_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write every attacked file, confirm each with the oracle; return (confirmed rows, per-attack counts)."""
    from safepickle_bench.datasets.oracle import confirm

    samples, skipped = malicious_samples(manifest, cfg.seed)
    if cfg.max_samples is not None and len(samples) > cfg.max_samples:
        rng = random.Random(cfg.seed)
        samples = sorted(rng.sample(samples, cfg.max_samples), key=lambda s: s[0])
    rows: list[dict[str, Any]] = []
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for attack in cfg.attacks:
        ratios = cfg.ratios.get(attack, ATTACKS[attack].ratios)
        for ratio in ratios:
            key = (attack, _ratio_key(ratio))
            c = counts.setdefault(key, {"samples": 0, "not_applicable": 0, "generated": 0})
            folder = work_dir / "files" / f"{attack}{'_' + _ratio_key(ratio) if ratio is not None else ''}"
            folder.mkdir(parents=True, exist_ok=True)
            for idx, sample in samples:
                c["samples"] += 1
                rng = random.Random(f"{cfg.seed}|{idx}|{attack}|{ratio}")
                try:
                    af = attack_sample(sample, attack, ratio, rng)
                except (AttackNotApplicable, ValueError) as exc:
                    c["not_applicable"] += 1
                    log.debug("%s %s on row %d: %s", attack, ratio, idx, exc)
                    continue
                path = folder / f"{idx:05d}_{sample.name}"
                path.write_bytes(af.data)
                c["generated"] += 1
                rows.append({"path": str(path), "source": idx, "source_path": manifest.at[idx, "path"],
                             "fold": int(folds[idx]), "attack": attack, "ratio": ratio, "loader": af.loader,
                             "payload_family": sample.payload.family, "producer": manifest.at[idx, "producer"],
                             "label": 1, "description": af.description[:200], "bytes": len(af.data)})
            log.info("generated %s %s: %d files (%d not applicable)", attack, _ratio_key(ratio), c["generated"],
                     c["not_applicable"])
    frame = pd.DataFrame(rows)
    log.info("oracle: %d attacked files", len(frame))
    start = time.perf_counter()
    items = [(Path(p), loader) for p, loader in zip(frame["path"], frame["loader"], strict=True)]
    n = max(1, min(cfg.n_jobs, len(items)))
    chunks = [items[k * len(items) // n:(k + 1) * len(items) // n] for k in range(n)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=n) as pool:
        results = [r for part in pool.map(confirm, chunks) for r in part]
    frame["event"] = [r.event for r in results]
    frame["oracle_error"] = [(r.error or "")[:200] for r in results]
    log.info("oracle done in %.0f s", time.perf_counter() - start)
    confirmed = frame[frame["event"] != ""].reset_index(drop=True)
    for (attack, ratio), c in counts.items():
        sel = frame[(frame["attack"] == attack) & (frame["ratio"].map(_ratio_key) == ratio)]
        c["confirmed"] = int((sel["event"] != "").sum())
        c["dropped_by_oracle"] = int((sel["event"] == "").sum())
    count_frame = pd.DataFrame([{"attack": a, "ratio": r, **c} for (a, r), c in counts.items()])
    count_frame.attrs["skipped_sources"] = skipped
    count_frame.attrs["n_malicious"] = int((manifest["label"] == 1).sum())
    count_frame.attrs["n_sources"] = len(samples)
    return confirmed, count_frame


# ----------------------------------------------------------------------------------------------- models


def _instantiate(node: Any, seed: int) -> Any:
    """Instantiate a `_target_` config node whose values may refer to `${seed}`."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from safepickle_bench.config import FAST_KEY

    root = OmegaConf.create({"seed": seed, "node": OmegaConf.to_container(node, resolve=False)
                             if OmegaConf.is_config(node) else dict(node)})
    root.node.pop(FAST_KEY, None)  # a model's fast preset is not a constructor parameter
    return instantiate(root.node, _convert_="all")


def _columns(all_columns: Sequence[str], groups: Sequence[str]) -> list[str]:
    """Return the columns of the given feature groups, in canonical order."""
    return [c for c in all_columns if c.split("__", 1)[0] in groups]


def rule_candidates() -> list[str]:
    """Return the `imports__<category>_present` columns of every dangerous taxonomy category."""
    from safepickle_bench.features.imports import DANGEROUS

    return [f"imports__{c}_present" for c in DANGEROUS]


def rule_categories(benign_train: pd.DataFrame) -> list[str]:
    """Return the dangerous-category columns that no benign training file has (the rule layer's categories).

    Learned from the training fold only: a category some benign library legitimately uses (e.g. the nested
    deserialisation of cloudpickle/dill function pickles) is left to the model instead.
    """
    return [c for c in rule_candidates() if not (benign_train[c].to_numpy() > 0).any()]


def rule_fires(X: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Return 1 where the analyzer found an import or call in any of the rule's categories."""
    if not columns:
        return np.zeros(len(X), dtype=int)
    return (X[list(columns)].to_numpy() > 0).any(axis=1).astype(int)


def evaluate_models(cfg: RobustnessConfig, X_clean: pd.DataFrame, y: np.ndarray, folds: np.ndarray,
                    attacked: pd.DataFrame, X_att: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train per fold on clean data (and augmented data for `+adv`); return (per-file predictions, clean F1)."""
    preds: list[pd.DataFrame] = []
    clean_rows: list[dict[str, Any]] = []
    has_rules = all(c in X_clean for c in rule_candidates())
    att_folds = attacked["fold"].to_numpy()
    for model_name, node in cfg.models.items():
        for fs_name, groups in cfg.feature_sets.items():
            cols = _columns(list(X_clean.columns), groups)
            Xc, Xa = X_clean[cols].to_numpy(np.float64), X_att[cols].to_numpy(np.float64)
            variants = ["plain"] + [h for h in cfg.hardening if h == "adv" or (h == "rules" and has_rules
                                                                              and fs_name == "all")]
            clean_pred = {v: np.zeros(len(y), dtype=int) for v in variants}
            for k in sorted(set(folds.tolist())):
                train, test = folds != k, folds == k
                on_fold = att_folds == k
                fits = {"plain": (Xc[train], y[train])}
                if "adv" in variants:
                    aug = Xa[(att_folds != k) & (attacked["attack"] != "none").to_numpy()]
                    fits["adv"] = (np.vstack([Xc[train], aug]), np.concatenate([y[train], np.ones(len(aug), int)]))
                models = {}
                for v, (Xt, yt) in fits.items():
                    t = time.perf_counter()
                    models[v] = _instantiate(node, cfg.seed).fit(Xt, yt)
                    log.info("%s/%s/%s fold %d fitted in %.1f s", model_name, fs_name, v, k, time.perf_counter() - t)
                for v in variants:
                    m = models["adv" if v == "adv" else "plain"]
                    pc = m.predict(Xc[test])
                    pa = m.predict(Xa[on_fold]) if on_fold.any() else np.zeros(0, int)
                    if v == "rules":
                        cats = rule_categories(X_clean[train & (y == 0)])
                        pc = np.maximum(pc, rule_fires(X_clean[test], cats))
                        pa = np.maximum(pa, rule_fires(X_att[on_fold], cats))
                    clean_pred[v][test] = pc
                    if on_fold.any():
                        part = attacked.loc[on_fold, ["path", "attack", "ratio"]].copy()
                        part["pred"] = pa
                        part["method"] = model_name if v == "plain" else f"{model_name}+{v}"
                        part["features"] = fs_name
                        preds.append(part)
            for v in variants:
                per_fold = [f1(y[folds == k], clean_pred[v][folds == k]) for k in sorted(set(folds.tolist()))]
                clean_rows.append({"method": model_name if v == "plain" else f"{model_name}+{v}",
                                   "features": fs_name, "clean_f1": float(np.mean(per_fold)),
                                   "clean_f1_std": float(np.std(per_fold)),
                                   "clean_recall": float(clean_pred[v][y == 1].mean()),
                                   "clean_fpr": float(clean_pred[v][y == 0].mean())})
    return pd.concat(preds, ignore_index=True), pd.DataFrame(clean_rows)


# ----------------------------------------------------------------------------------------------- scanners


def scanner_sample(attacked: pd.DataFrame, per_cell: int, seed: int) -> pd.DataFrame:
    """Return a deterministic sample of at most `per_cell` attacked files per (attack, ratio)."""
    parts = []
    for _, cell in attacked.groupby(["attack", attacked["ratio"].map(_ratio_key)], sort=False):
        parts.append(cell.sample(n=min(per_cell, len(cell)), random_state=seed))
    return pd.concat(parts) if parts else attacked.iloc[:0]


def evaluate_scanners(cfg: RobustnessConfig, manifest: pd.DataFrame, folds: np.ndarray,
                      attacked: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Scan a sample of the attacked files with every available scanner; return per-file verdicts, notes."""
    rows: list[pd.DataFrame] = []
    notes: dict[str, str] = {}
    for name, node in cfg.scanners.items():
        sample = scanner_sample(attacked, int(cfg.scanner_caps.get(name, cfg.scanner_max_files)), cfg.seed)
        sample = sample.assign(abspath=sample["path"])
        try:
            scanner = _instantiate(node, cfg.seed)
        except Exception as exc:  # a scanner that cannot even be built is reported, the others still run
            notes[name] = f"not built: {type(exc).__name__}: {exc}"
            continue
        if not scanner.learns:
            ok, why = scanner.available()
            if not ok:
                notes[name] = f"unavailable: {why}"
                continue
        start = time.perf_counter()
        try:
            parts = []
            groups = [(None, sample)] if not scanner.learns else [(k, sample[sample["fold"] == k])
                                                                  for k in sorted(set(sample["fold"]))]
            for k, part in groups:
                if scanner.learns:
                    scanner.fit(manifest[folds != k])
                scanner.prepare(part)
                res = [scanner.scan(p) for p in part["path"]]
                parts.append(part.assign(verdict=[r.verdict for r in res],
                                         pred=[int(r.verdict == "malicious") for r in res],
                                         error=[r.error or "" for r in res]))
        except Exception as exc:  # a scanner that breaks is reported, the others still run
            log.exception("scanner %s failed", name)
            notes[name] = f"failed: {type(exc).__name__}: {exc}"
            continue
        finally:
            scanner.close()
        got = pd.concat(parts, ignore_index=True)
        got["method"], got["features"] = name, ""
        n_err = int((got["verdict"] == "error").sum())
        notes[name] = (f"{len(got)} files in {time.perf_counter() - start:.0f} s; {n_err} errors "
                       "(an error counts as not detected)")
        rows.append(got[["path", "attack", "ratio", "pred", "method", "features", "verdict"]])
    return (pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()), notes


# ----------------------------------------------------------------------------------------------- report


def recall_table(preds: pd.DataFrame) -> pd.DataFrame:
    """Return one row per (method, features, attack, ratio) with recall and the number of files."""
    p = preds.assign(ratio_key=preds["ratio"].map(_ratio_key))
    out = (p.groupby(["method", "features", "attack", "ratio_key"], sort=False)["pred"]
           .agg(recall="mean", n="size").reset_index().rename(columns={"ratio_key": "ratio"}))
    return out


def write_results(cfg: RobustnessConfig, table: pd.DataFrame, clean: pd.DataFrame, counts: pd.DataFrame,
                  notes: Mapping[str, str], seconds: float) -> list[Path]:
    """Write results/robustness.{csv,md}, the details CSV and the recall-vs-padding figure."""
    out_dir = cfg.results_dir
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    csv = out_dir / "robustness.csv"
    table[list(CSV_COLUMNS)].to_csv(csv, index=False, float_format="%.4f")
    details = out_dir / "robustness_details.csv"
    table.to_csv(details, index=False, float_format="%.4f")
    clean.to_csv(out_dir / "robustness_clean_f1.csv", index=False, float_format="%.4f")
    counts.to_csv(out_dir / "robustness_oracle_counts.csv", index=False)
    fig = out_dir / "figures" / "robustness_recall_vs_padding.png"
    recall_vs_padding(table, fig)
    md = out_dir / "robustness.md"
    md.write_text(markdown_report(cfg, table, clean, counts, notes, seconds)
                  + hostile_inputs_section(out_dir / "hostile_inputs.csv"))
    return [csv, details, out_dir / "robustness_clean_f1.csv", out_dir / "robustness_oracle_counts.csv", fig, md]


def _cell(attack: str, ratio: str) -> str:
    """Return a column title for an (attack, ratio) cell."""
    return f"{attack} {ratio}x" if ratio else attack


def markdown_report(cfg: RobustnessConfig, table: pd.DataFrame, clean: pd.DataFrame, counts: pd.DataFrame,
                    notes: Mapping[str, str], seconds: float) -> str:
    """Return the robustness report as Markdown."""
    t = table.assign(cell=[_cell(a, r) for a, r in zip(table["attack"], table["ratio"], strict=True)])
    order = list(dict.fromkeys(t["cell"]))
    pivot = t.pivot_table(index=["method", "features"], columns="cell", values="recall", sort=False)[order]
    worst = pivot.min(axis=1)
    lines = [
        "# Robustness against an adaptive attacker",
        "",
        f"Dataset `{cfg.dataset}` at size **{cfg.size}**; {int(counts.attrs.get('n_sources', 0))} of its "
        f"{int(counts.attrs.get('n_malicious', 0))} malicious files attacked (a fixed random sample when "
        f"`attack.max_samples` = {cfg.max_samples} is set; {int(counts.attrs.get('skipped_sources', 0))} skipped: "
        "carrier not found); each is rebuilt from its benign carrier (same group and file name), a fresh payload "
        "of the same family and the same injection before being attacked; "
        f"stratified group {cfg.n_splits}-fold: every model is trained on the clean training folds and scores "
        "the attacked versions of the held-out fold's malicious files. Seed "
        f"{cfg.seed}. Written by `experiments/run_robustness.py` in {seconds / 60:.1f} min.",
        "",
        "Every attacked file was loaded by the label oracle with its real loader (torch.load, pickle, joblib, "
        "numpy) and is kept only when it still reaches its payload's dangerous event. Recall = share of the "
        "confirmed attacked files a method flags malicious. `+rules` = model OR any import/call the analyzer "
        "found in a dangerous taxonomy category that no benign training file uses (categories learned per "
        "fold); `+adv` = trained with attacked copies of the "
        "training folds' own malicious files added (all attacks; the test fold's files are never used).",
        "",
        "## Summary",
        "",
        *summary_lines(t, clean),
        "",
        "Hardening in this version: (1) the import taxonomy covers every gadget of craft/gadgets.yaml "
        "(`distutils.spawn`, `logging.config.dictConfig/fileConfig/listen` were missing; FEATURE_VERSION 2), so "
        "the dilution-proof `imports` counts see a gadget swap; (2) `+rules`; (3) `+adv` (both defined above). "
        "The analyzer's symbolic evaluation already resolves getattr/attrgetter chains, memo-aliased "
        "STACK_GLOBALs and nested pickles to the real callable, which is why `all` holds without them.",
        "",
        "## Attacks",
        "",
        "| attack | what it does |",
        "|---|---|",
        *(f"| {name} | {ATTACKS[name].description} |" for name in cfg.attacks),
        "",
        "## Recall under each attack (ratio = padding x the payload's opcode count)",
        "",
        frame_table(pivot.assign(worst=worst).reset_index()),
        "",
        "## Clean-data cost of each setting (CV on the clean dataset)",
        "",
        frame_table(clean.assign(worst_attacked_recall=[worst.get((m, f), np.nan) for m, f in
                                                      zip(clean["method"], clean["features"], strict=True)])),
        "",
        "## Attacked files per attack (oracle check)",
        "",
        frame_table(counts),
        "",
        "## Scanners",
        "",
        f"Each scanner scanned at most {cfg.scanner_max_files} attacked files per attack and ratio (a fixed "
        f"random sample; per-scanner caps: {dict(cfg.scanner_caps) or 'none'}; an error verdict counts as not "
        "detected). Scanner recall rests on that sample, so one file moves it by 1/n; their clean-data "
        "precision and false-positive rate are in results/scanners/.",
        "",
        *(f"- **{k}**: {v}" for k, v in notes.items()),
        "",
        "![recall vs padding](figures/robustness_recall_vs_padding.png)",
        "",
    ]
    return "\n".join(lines)


def hostile_inputs_section(csv: Path) -> str:
    """Return the Markdown section on hostile inputs (time and peak memory per case) from its measured CSV."""
    lines = ["", "## Hostile inputs: time and peak memory of the analyzer per case", ""]
    if not csv.is_file():
        return "\n".join([*lines, "Not measured yet: run `python experiments/bench_hostile_inputs.py`.", ""])
    frame = pd.read_csv(csv)
    cols = ["case", "wall_s", "cpu_s", "rss_growth_mib", "tracemalloc_peak_mib", "expected", "expected_recorded"]
    lines += [
        "Each case analysed at the default limits in a fresh subprocess by `experiments/bench_hostile_inputs.py` "
        "(details, fuzzing run and method: [hostile_inputs.md](hostile_inputs.md)); `expected_recorded` = the "
        "anomaly that the limit should raise was recorded.",
        "",
        frame_table(frame[[c for c in cols if c in frame.columns]]),
        "",
    ]
    return "\n".join(lines)


def summary_lines(table: pd.DataFrame, clean: pd.DataFrame) -> list[str]:
    """Return bullet lines: the worst attacked recall per method and feature set, with the clean F1 next to it."""
    lines = []
    for (method, features), g in table.groupby(["method", "features"], sort=False):
        worst = g.loc[g["recall"].idxmin()]
        where = f"{worst['attack']} {worst['ratio']}x" if worst["ratio"] else str(worst["attack"])
        c = clean[(clean["method"] == method) & (clean["features"] == features)]
        clean_f1 = f"; clean CV F1 {c['clean_f1'].iloc[0]:.3f} +- {c['clean_f1_std'].iloc[0]:.3f}" if len(c) else ""
        verdict = "holds (>= 0.95 everywhere)" if worst["recall"] >= 0.95 else "breaks"
        name = f"{method} / features={features}" if features else f"{method} (scanner)"
        lines.append(f"- **{name}**: worst recall {worst['recall']:.3f} under {where} (n={int(worst['n'])}), "
                     f"{verdict}{clean_f1}")
    return lines


# ----------------------------------------------------------------------------------------------- entry


def run(cfg: RobustnessConfig) -> pd.DataFrame:
    """Run the whole benchmark and return the recall table (written to results/ when configured)."""
    from safepickle_bench.datasets import ensure_dataset, read_manifest
    from safepickle_bench.features import GROUPS, extract

    started = time.perf_counter()
    ensure_dataset(cfg.dataset, cfg.size, cfg.data_dir, seed=cfg.seed)
    manifest = read_manifest(cfg.dataset, cfg.size, cfg.data_dir).reset_index(drop=True)
    folds = fold_ids(group_kfold(cfg.n_splits, cfg.seed), manifest["label"].to_numpy(), manifest["group"].to_numpy())
    work_dir = cfg.data_dir / "attacks" / cfg.dataset / cfg.size
    attacked, counts = generate_attacked(cfg, manifest, folds, work_dir)
    attacked.to_csv(work_dir / "attacked.csv", index=False)
    cache_dir = str(cfg.data_dir / "feature_cache")
    X_clean = extract(manifest["abspath"].tolist(), groups=GROUPS, n_jobs=cfg.n_jobs, cache_dir=cache_dir,
                      progress=False)
    X_att = extract(attacked["path"].tolist(), groups=GROUPS, n_jobs=cfg.n_jobs, cache_dir=cache_dir,
                    progress=False)
    y = manifest["label"].astype(int).to_numpy()
    preds, clean = evaluate_models(cfg, X_clean, y, folds, attacked, X_att)
    scans, notes = evaluate_scanners(cfg, manifest, folds, attacked) if cfg.scanners else (pd.DataFrame(), {})
    all_preds = pd.concat([preds, scans], ignore_index=True) if not scans.empty else preds
    table = recall_table(all_preds)
    seconds = time.perf_counter() - started
    if cfg.write_results:
        for path in write_results(cfg, table, clean, counts, notes, seconds):
            log.info("wrote %s", path)
    table.attrs["clean"] = clean
    table.attrs["counts"] = counts
    return table


def config_from_hydra(cfg: Any) -> RobustnessConfig:
    """Build the typed benchmark config from the composed Hydra config (`attack` node plus dataset/paths)."""
    from omegaconf import OmegaConf

    node = cfg.attack
    raw_ratios = node.get("ratios")
    ratios = {k: tuple(v) for k, v in (OmegaConf.to_container(raw_ratios, resolve=True) if raw_ratios else {}).items()}
    feature_sets = {k: tuple(v) for k, v in OmegaConf.to_container(node.feature_sets, resolve=True).items()}
    return RobustnessConfig(
        dataset=str(cfg.dataset.name), size=str(cfg.dataset.get("size", "small")),
        data_dir=Path(str(cfg.paths.data_dir)), results_dir=Path(str(cfg.paths.results_dir)),
        seed=int(cfg.get("seed", 0)), attacks=tuple(node.attacks), ratios=ratios,
        models=dict(node.get("models") or {}), feature_sets=feature_sets,
        hardening=tuple(node.get("hardening") or ()), scanners=dict(cfg.get("scanners") or {}),
        scanner_max_files=int(node.get("scanner_max_files", 20)),
        scanner_caps={str(k): int(v) for k, v in (node.get("scanner_caps") or {}).items()}, n_splits=int(node.get("n_splits", 5)),
        max_samples=node.get("max_samples"), n_jobs=int(node.get("n_jobs", 2)),
        write_results=bool(node.get("write_results", True)),
    )


def run_from_config(cfg: Any) -> pd.DataFrame:
    """Hydra entry for `task=attack`."""
    return run(config_from_hydra(cfg))
