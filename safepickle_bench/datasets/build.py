"""Build the generated datasets (hf, pickleball_ood, joblib, hide_and_seek) and the wild manifest.

Flow per generated dataset: benign carriers from real libraries (in parallel) -> label oracle -> malicious
samples (payload injected into confirmed carriers, or stand-alone) -> label oracle -> trim to the preset ->
`data/<name>/<size>/manifest.parquet` + `build_log.json`. A file whose oracle verdict contradicts its intended
label is deleted and counted, never kept with a wrong label.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from safepickle_bench.datasets.manifest import MANIFEST_NAME, sha256_file, to_frame, write_manifest
from safepickle_bench.datasets.oracle import discard_sample

log = logging.getLogger(__name__)

MARKER_DIR = Path("/tmp/safepickle-out/markers")
"""Fixed marker directory embedded in generated payloads (fixed so the bytes do not depend on the machine)."""
_WORKER_ENV = {
    "PYTHONHASHSEED": "0",  # set ordering inside dill/sklearn pickles must not vary between builds
    "PYTHONWARNINGS": "ignore",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
    "OMP_NUM_THREADS": "1",
    "HF_HUB_OFFLINE": "1",
}

@dataclass(frozen=True)
class Preset:
    """Target counts of one dataset size: benign files, malicious files, share of stand-alone payloads."""

    benign: int
    malicious: int
    standalone: float
    families_per_namespace: int = 0
    """Samples of each generalisation family per name namespace (the `generalization` dataset only)."""
    memoized_share: float = 0.0
    """Share of stand-alone payload pickles written with the memo stores `pickle.dumps` would write."""
    optimized_share: float = 0.0
    """Share of one-stream benign pickles rewritten without unused memo stores (`pickletools.optimize`)."""


SIZES_FILE = Path(__file__).with_name("sizes.yaml")
"""The size presets of every generated dataset (the one place they are written)."""


def load_presets(path: Path = SIZES_FILE) -> dict[str, dict[str, Preset]]:
    """Return {dataset: {size: Preset}} read from the size presets YAML."""
    import yaml

    table = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {name: {size: Preset(**counts) for size, counts in sizes.items()} for name, sizes in table.items()}


PRESETS: dict[str, dict[str, Preset]] = load_presets()
GENERATED = tuple(PRESETS)
_PRODUCER_SETS = {"hf": "hf_producers", "pickleball_ood": "ood_producers", "joblib": "joblib_producers",
                  "generalization": "generalization_producers"}

# ---------------------------------------------------------------- small helpers
def _salt(name: str) -> int:
    return zlib.crc32(name.encode())

def _sample_id(*parts: object) -> str:
    """A neutral, deterministic folder id (no label or producer in the path)."""
    return hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()[:12]

def container_of(path: Path) -> str:
    """Name a file's container from its first bytes and suffix (no parsing beyond magic numbers)."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    suffix = path.suffix.lower()
    if head.startswith(b"PK\x03\x04"):
        return "npz" if suffix == ".npz" else "torch_zip"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if ".joblib" in path.name or suffix in {".z", ".gz", ".bz2", ".xz", ".lzma", ".lz4", ".joblib"}:
        return "joblib"
    if head[:1] == b"\x80" or head[:1] in b"(cI]}":
        return "pickle"
    return "other"

def _executor(n_jobs: int) -> Any:
    """Return a private loky pool for the producers (to use as a context manager).

    Not loky's process-wide reusable executor: joblib.Parallel would later pick that one up without the
    temporary-folder manager it expects and fail (AttributeError '_temp_folder_manager').
    """
    from joblib.externals.loky import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=max(1, n_jobs), env=_WORKER_ENV, timeout=60)

def produce(registry: str, producer: str, entropy: Sequence[int], out_dir: str) -> list[dict[str, str]]:
    """Run one producer call in a worker: write its files into `out_dir` and describe them."""
    import warnings

    from safepickle_bench.datasets import carriers

    warnings.filterwarnings("ignore")
    producers = {p.name: p for p in getattr(carriers, registry)()}
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    files = producers[producer].make(np.random.default_rng(list(entropy)), target)
    return [{"name": f.name, "kind": f.kind, "container": f.container, "loader": f.loader} for f in files]


def _confirm(
    rows: list[dict[str, Any]], root: Path, desc: str, n_jobs: int = 1
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run the label oracle on rows; return (kept rows with oracle_event, dropped records). Deletes dropped files.

    With n_jobs > 1 the rows are split into contiguous chunks confirmed concurrently (each chunk runs its own
    sandbox children, so the threads only wait on subprocesses).
    """
    from safepickle_bench.datasets.oracle import confirm

    if not rows:
        return [], []
    log.info("oracle: %s (%d files)", desc, len(rows))
    items = [(root / r["path"], r["loader"]) for r in rows]
    n_jobs = max(1, min(n_jobs, len(items)))
    chunks = [items[k * len(items) // n_jobs: (k + 1) * len(items) // n_jobs] for k in range(n_jobs)]
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        results = [res for part in pool.map(confirm, chunks) for res in part]
    kept, dropped = [], []
    for row, res in zip(rows, results, strict=True):
        ok = bool(res.event) if row["label"] == 1 else (bool(res.loaded) and not res.event)
        if ok:
            kept.append({**row, "oracle_event": res.event or ""})
        else:
            dropped.append({"path": row["path"], "label": row["label"], "producer": row["producer"],
                            "injection": row.get("injection", ""), "event": res.event or "",
                            "loaded": bool(res.loaded), "error": (res.error or "")[:300]})
            discard_sample(root / row["path"])
    for record in dropped:
        log.warning("oracle dropped %s (label %d): event=%r loaded=%s error=%s", record["path"], record["label"],
                    record["event"], record["loaded"], record["error"])
    return kept, dropped

# ---------------------------------------------------------------- benign carriers
def build_benign(name: str, target: int, root: Path, seed: int, n_jobs: int) -> list[dict[str, Any]]:
    """Generate at least `target` benign files (a small margin for oracle drops) in parallel; return rows."""
    from safepickle_bench.datasets import carriers

    registry = _PRODUCER_SETS[name]
    producers = getattr(carriers, registry)()
    weights = np.array([p.weight for p in producers], dtype=float)
    rng = np.random.default_rng([seed, _salt(name)])
    tasks, expected, goal = [], 0.0, target * 1.03 + 3
    while expected < goal:
        producer = producers[int(rng.choice(len(producers), p=weights / weights.sum()))]
        index = len(tasks)
        tasks.append((producer.name, [seed, _salt(name), index], _sample_id(name, seed, "carrier", index)))
        expected += producer.files_per_call
    results: dict[int, list[dict[str, str]]] = {}
    failures = 0
    with _executor(n_jobs) as executor:
        futures = {
            executor.submit(produce, registry, prod, entropy, str(root / "files" / folder)): i
            for i, (prod, entropy, folder) in enumerate(tasks)
        }
        for future in tqdm(as_completed(futures), total=len(futures), desc=f"{name}: benign carriers", unit="call"):
            i = futures[future]
            try:
                results[i] = future.result()
            except Exception as exc:  # a producer bug must not lose the whole build: record and go on
                failures += 1
                log.warning("producer %s (task %d) failed: %s", tasks[i][0], i, exc)
                results[i] = []
    rows = []
    for i, (prod, _entropy, folder) in enumerate(tasks):
        for f in results[i]:
            rel = f"files/{folder}/{f['name']}"
            rows.append({"path": rel, "label": 0, "group": f"{name}:{folder}", "producer": prod, "kind": f["kind"],
                         "container": f["container"], "payload_family": "", "injection": "", "evasion_technique": "",
                         "loader": f["loader"], "seed": seed, "task": i})
    if failures:
        log.warning("%s: %d producer calls failed", name, failures)
    return rows

ONE_STREAM_LOADERS = frozenset({"pickle", "pickle_syspath"})
"""Loaders that read exactly one pickle stream from the file (what `pickletools.optimize` keeps)."""


def optimize_benign(rows: list[dict[str, Any]], root: Path, share: float, seed: int) -> int:
    """Rewrite a `share` of the one-stream benign pickles without unused memo stores; return how many.

    The oracle confirms them afterwards like every benign file (an optimised file that no longer loads is
    dropped, never kept)."""
    from safepickle_bench.craft.writer_style import strip_unused_memo

    if share <= 0:
        return 0
    rng = random.Random(f"optimize|{seed}")
    done = 0
    for row in sorted(rows, key=lambda r: r["path"]):
        if row["container"] != "pickle" or row["loader"] not in ONE_STREAM_LOADERS or rng.random() >= share:
            continue
        path = root / row["path"]
        try:
            path.write_bytes(strip_unused_memo(path.read_bytes()))
        except Exception as exc:  # a file pickletools cannot re-read stays as its producer wrote it
            log.warning("could not optimise %s: %s", row["path"], exc)
            continue
        row["kind"] = f"{row['kind']}+optimized"
        done += 1
    return done


# ---------------------------------------------------------------- malicious samples
def _injectable(name: str, carriers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The carriers payloads may be injected into: all of them, except (in `generalization`) files that load
    only with their own throwaway package (a sidecar), which an injected copy would not carry, and TorchScript
    archives (torch.load refuses them, so no injected payload would run)."""
    if name != "generalization":
        return carriers
    return [c for c in carriers if not c["loader"].endswith("_syspath") and c["container"] != "torchscript"]


def _loader_after_injection(carrier_loader: str, injection: str) -> str | None:
    """The loader that reaches a payload placed by `injection`, or None when the carrier's loader never would.

    A second pickle stream after STOP runs only under a reader of several streams (`pickle_multi`); joblib
    and numpy read one stream, so that combination would give a file whose payload never runs.
    """
    if injection != "second_stream" or carrier_loader == "torch":  # torch: injection uses the storage-keys pickle
        return carrier_loader
    return "pickle_multi" if carrier_loader == "pickle" else None


def build_malicious(
    name: str, preset: Preset, carriers: list[dict[str, Any]], root: Path, seed: int
) -> list[dict[str, Any]]:
    """Inject payloads into confirmed carriers (and write stand-alone payload pickles); return rows."""
    from safepickle_bench.craft.injection import INJECTIONS, inject
    from safepickle_bench.craft.payloads import PAYLOAD_FAMILIES, build_payload
    from safepickle_bench.craft.writer_style import memoize_like_pickler

    rng = np.random.default_rng([seed, _salt(name), 1])
    prng = random.Random(int(rng.integers(2**63)))  # the payload/injection API draws from random.Random
    families = list(PAYLOAD_FAMILIES)
    injections = [i for i in INJECTIONS if i != "standalone"]
    count = int(round(preset.malicious * 1.08)) + 2  # margin for oracle drops, trimmed afterwards
    n_standalone = int(round(count * preset.standalone))
    carriers = sorted(carriers, key=lambda r: r["path"])
    rows: list[dict[str, Any]] = []
    impossible = Counter()
    for index in tqdm(range(count), desc=f"{name}: malicious", unit="file"):
        family = families[index % len(families)] if index < len(families) else str(rng.choice(families))
        protocol = int(rng.choice([2, 3, 4, 5], p=[0.55, 0.15, 0.15, 0.15]))
        payload = build_payload(family, str(MARKER_DIR), protocol=protocol, variant=int(rng.integers(1000)), rng=prng)
        folder = _sample_id(name, seed, "sample", index)
        if index < n_standalone or not carriers:
            fname = str(rng.choice(["pytorch_model.bin", "model.pkl", "model.pt", "model.ckpt", "data.pkl"]))
            out = root / "files" / folder / fname
            out.parent.mkdir(parents=True, exist_ok=True)
            data = payload.stream(protocol)
            memoize = preset.memoized_share > 0 and prng.random() < preset.memoized_share  # no draw when 0: hf stays
            out.write_bytes(memoize_like_pickler(data) if memoize else data)
            loader = "pickle" if fname.endswith(".pkl") else "torch"
            rows.append({"path": f"files/{folder}/{fname}", "label": 1, "group": f"{name}:{folder}",
                         "producer": "payload", "kind": "standalone_payload", "container": "pickle",
                         "payload_family": payload.family, "injection": "standalone", "evasion_technique": "",
                         "loader": loader, "seed": seed, "carrier": ""})
            continue
        for _attempt in range(10):
            carrier = carriers[int(rng.integers(len(carriers)))]
            carrier_bytes = (root / carrier["path"]).read_bytes()
            data = injection = None
            for injection in rng.permutation(injections):
                loader = _loader_after_injection(carrier["loader"], str(injection))
                if loader is None:
                    continue
                try:
                    data = inject(carrier_bytes, payload, str(injection), rng=prng)
                    break
                except ValueError:
                    impossible[(carrier["container"], str(injection))] += 1
            if data is None:
                continue
            fname = Path(carrier["path"]).name
            out = root / "files" / folder / fname
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            rows.append({"path": f"files/{folder}/{fname}", "label": 1, "group": carrier["group"],
                         "producer": carrier["producer"], "kind": carrier["kind"], "container": carrier["container"],
                         "payload_family": payload.family, "injection": str(injection), "evasion_technique": "",
                         "loader": loader, "seed": seed, "carrier": carrier["path"]})
            break
        else:
            log.warning("%s: no injectable carrier found for sample %d", name, index)
    if impossible:
        log.info("%s: impossible (container, injection) combinations skipped: %s", name, dict(impossible))
    return rows

def build_hide_and_seek(preset: Preset, root: Path, seed: int) -> list[dict[str, Any]]:
    """Run the evasive-sample builder `preset.malicious` times (different seeds); return rows."""
    from safepickle_bench.craft.evasions import build_evasive_samples

    rows: list[dict[str, Any]] = []
    for round_ in range(preset.malicious):
        sub = root / "files" / _sample_id("hide_and_seek", seed, "round", round_)
        sub.mkdir(parents=True, exist_ok=True)
        for sample in build_evasive_samples(sub, str(MARKER_DIR), seed=seed + round_):
            path = Path(sample.path)
            path = path if path.is_absolute() else sub / path
            rows.append({"path": path.relative_to(root).as_posix(), "label": 1,
                         "group": f"hide_and_seek:{sample.technique}:{seed + round_}", "producer": "hide_and_seek",
                         "kind": "evasive", "container": container_of(path), "payload_family": sample.payload_family,
                         "injection": "", "evasion_technique": sample.technique, "loader": sample.loader,
                         "seed": seed + round_, "description": sample.description})
    return rows

# ---------------------------------------------------------------- orchestration
def _trim(benign: list[dict], malicious: list[dict], preset: Preset,
          kept_malicious: Sequence[dict] = ()) -> tuple[list[dict], list[dict], list[str]]:
    """Cut the oracle-confirmed rows down to the preset's counts, never removing a carrier still in use
    (by `malicious` or by `kept_malicious`, rows kept whole)."""
    malicious = malicious[: preset.malicious] if preset.benign else malicious
    used = {m.get("carrier") for m in [*malicious, *kept_malicious]}
    surplus = max(0, len(benign) - preset.benign)
    removable = [r for r in reversed(benign) if r["path"] not in used][:surplus]
    cut = {r["path"] for r in removable}
    return [r for r in benign if r["path"] not in cut], malicious, sorted(cut)

def build_dataset(name: str, size: str, data_dir: Path, seed: int = 0, n_jobs: int | None = None,
                  root: Path | None = None) -> Path:
    """Build dataset `name` at `size` into `data_dir/name/size/` and return the manifest path."""
    data_dir = Path(data_dir)
    out = data_dir / name / size
    if name == "wild":
        from safepickle_bench.datasets.wild import build_wild

        return build_wild(out, root)
    if name == "pickleball":
        from safepickle_bench.datasets.pickleball import build_pickleball

        return build_pickleball(out, root)
    if name == "hf_hub":  # `root` names the user's source list (else $SAFEPICKLE_HF_HUB_MANIFEST)
        from safepickle_bench.datasets.hf_hub import build_hf_hub

        return build_hf_hub(out, root, seed=seed)
    if name not in PRESETS or size not in PRESETS[name]:
        known = {k: sorted(v) for k, v in PRESETS.items()}
        raise ValueError(f"unknown dataset/size {name}/{size}; known: {known}, wild and pickleball")
    preset = PRESETS[name][size]
    n_jobs = n_jobs or min(2, os.cpu_count() or 1)
    staging = out.with_name(f".{size}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    dropped: list[dict[str, Any]] = []
    benign: list[dict[str, Any]] = []
    if name == "hide_and_seek":
        t = time.perf_counter()
        candidates = build_hide_and_seek(preset, staging, seed)
        timings["generate_malicious"] = time.perf_counter() - t
    else:
        t = time.perf_counter()
        generated = build_benign(name, preset.benign, staging, seed, n_jobs)
        optimize_benign(generated, staging, preset.optimized_share, seed)
        timings["generate_benign"] = time.perf_counter() - t
        t = time.perf_counter()
        benign, lost = _confirm(generated, staging, f"{name} benign", n_jobs)
        dropped += lost
        timings["oracle_benign"] = time.perf_counter() - t
        t = time.perf_counter()
        candidates = build_malicious(name, preset, _injectable(name, benign), staging, seed)
        timings["generate_malicious"] = time.perf_counter() - t
    t = time.perf_counter()
    malicious, lost = _confirm(candidates, staging, f"{name} malicious", n_jobs)
    dropped += lost
    timings["oracle_malicious"] = time.perf_counter() - t
    families: list[dict[str, Any]] = []  # proven generalisation-family samples, kept whole (never trimmed)
    if preset.families_per_namespace:
        from safepickle_bench.datasets.generalization_build import annotate_namespaces, build_family_rows

        annotate_namespaces(benign, staging)
        t = time.perf_counter()
        families, lost = build_family_rows(name, preset.families_per_namespace, _injectable(name, benign),
                                           staging, seed, preset.memoized_share)
        dropped += lost
        timings["generate_and_prove_families"] = time.perf_counter() - t
    benign, duplicates = _drop_duplicate_benign(benign, [*malicious[: preset.malicious or None], *families],
                                                staging)
    benign, malicious, trimmed = _trim(benign, malicious, preset, families)
    malicious = [*malicious, *families]
    for rel in trimmed:
        discard_sample(staging / rel)
    if name != "hide_and_seek":
        kept = {r["path"] for r in benign + malicious}
        for rel in {m["path"] for m in candidates} - kept:
            discard_sample(staging / rel)
    rows = [{**r, "sha256": sha256_file(staging / r["path"])} for r in benign + malicious]
    frame = to_frame(rows)
    timings["total"] = time.perf_counter() - started
    descriptions = {r["evasion_technique"]: r["description"] for r in malicious if r.get("description")}
    build_log = {
        "dataset": name, "size": size, "seed": seed, "n_jobs": n_jobs, "seconds": timings,
        "target": {"benign": preset.benign, "malicious": preset.malicious},
        "counts": {"benign": int((frame.label == 0).sum()), "malicious": int((frame.label == 1).sum())},
        "dropped_by_oracle": {"benign": sum(d["label"] == 0 for d in dropped),
                              "malicious": sum(d["label"] == 1 for d in dropped), "files": dropped},
        "trimmed_surplus": len(trimmed),
        "duplicate_benign_removed": duplicates,
        "technique_descriptions": descriptions,
    }
    if preset.benign and (build_log["counts"]["benign"] < preset.benign
                          or build_log["counts"]["malicious"] < preset.malicious):
        log.warning("%s/%s: short of the preset after oracle drops: %s", name, size, build_log["counts"])
    write_manifest(frame, staging / MANIFEST_NAME, {"dataset": name, "size": size, "seed": seed,
                                                     "technique_descriptions": descriptions})
    (staging / "build_log.json").write_text(json.dumps(build_log, indent=2, sort_keys=True))
    _remove_empty_dirs(staging / "files")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    log.info("%s/%s built in %.1fs: %s, dropped %d", name, size, timings["total"], build_log["counts"], len(dropped))
    return out / MANIFEST_NAME

def _drop_duplicate_benign(benign: list[dict], malicious: list[dict], root: Path) -> tuple[list[dict], int]:
    """Remove benign files whose bytes equal an earlier one (e.g. identical scheduler states), keeping carriers."""
    used = {m.get("carrier") for m in malicious}
    seen: set[str] = set()
    kept, removed = [], 0
    for row in sorted(benign, key=lambda r: (r["path"] not in used, r["path"])):
        digest = sha256_file(root / row["path"])
        if digest in seen and row["path"] not in used:
            discard_sample(root / row["path"])
            removed += 1
            continue
        seen.add(digest)
        kept.append(row)
    return sorted(kept, key=lambda r: r["path"]), removed


def _remove_empty_dirs(top: Path) -> None:
    for folder in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()

def build_from_config(cfg: Any) -> Path:
    """Hydra entry for `task=build_data`: build cfg.dataset.{name,size,seed} under cfg.paths.data_dir."""
    dataset = cfg.dataset
    if str(dataset.name) == "hf_hub":
        from safepickle_bench.datasets.hf_hub import build_from_config as build_hf_hub_from_config

        return build_hf_hub_from_config(cfg)
    root = dataset.get("root") if hasattr(dataset, "get") else None
    if not root and str(dataset.name) in ("wild", "pickleball"):  # read in place, found beside the output root
        from safepickle_bench import paths

        locate = paths.wild_dir if str(dataset.name) == "wild" else paths.pickleball_dir
        root = locate(cfg.paths.get("root_dir"))
    return build_dataset(
        str(dataset.name), str(dataset.size), Path(str(cfg.paths.data_dir)), seed=int(dataset.get("seed", 0)),
        n_jobs=dataset.get("n_jobs"), root=Path(str(root)) if root else None,
    )

