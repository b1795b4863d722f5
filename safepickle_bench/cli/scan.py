"""`python -m safepickle_bench scan [options] PATH...`: our detector as a scanner people can drop into CI.

PATH is a file, a directory (walked recursively, every file recognised by its content), a zip/tar archive
(each model file inside scanned as `archive!member`) or `hf://owner/name[@revision]`; `--hf-cache [DIR]`
adds every snapshot in the local Hugging Face cache. Each model file is analysed statically (never loaded),
featurised and scored by the detector shipped with the package, or by `--model DIR`.

Output: a text report (one line per flagged file with the callable, its location and the score, errors,
clean files, then a summary; `--quiet`: flagged files and the summary only), or `--json` JSON Lines (one
record per file, ASCII; the summary goes to stderr); `--sarif FILE` also writes a SARIF 2.1.0 log.
Exit code: 0 every file clean (or nothing to scan), 1 any malicious, 2 any error (errors win).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from safepickle_bench.cli.discover import Entry, Failed, Found, Options, Skipped, discover
from safepickle_bench.cli.reports import JsonLinesReport, SarifReport, Tally, TextReport, VerdictLike

PROGRESS_MIN_FILES = 20
"""A progress bar appears (on a terminal) from this many files on."""
EXIT_ERROR = 2


@dataclass(slots=True)
class LocalVerdict:
    """A verdict made without the engine: an input that could not be read."""

    display: str
    verdict: str
    score: float | None = None
    threshold: float = math.nan
    reasons: list[dict[str, Any]] = field(default_factory=list)
    top_features: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the scan subcommand."""
    p = argparse.ArgumentParser(
        prog="python -m safepickle_bench scan",
        description="Scan pickle-based model files, folders, archives and Hugging Face repos with the "
        "SafePickle detector (static: nothing is loaded). Exit 0 clean, 1 malicious, 2 error.",
    )
    p.add_argument("--model", metavar="DIR", help="exported detector folder (default: the detector shipped with the package)")
    p.add_argument("--json", action="store_true", help="print JSON Lines (path, verdict, score, threshold, reasons, error)")
    p.add_argument("--sarif", metavar="FILE", help="also write a SARIF 2.1.0 log (one result per flagged file)")
    p.add_argument("--jobs", type=int, metavar="N", help="parallel analysis workers (default: all cores)")
    p.add_argument("--backend", choices=("local", "dask"), default="local", help="where files are analysed")
    p.add_argument("--address", metavar="ADDR", help="Dask scheduler, e.g. tcp://host:8786 (with --backend dask)")
    p.add_argument(
        "--explain",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="list the top features of every file (default: of flagged files only; --no-explain: of none)",
    )
    p.add_argument("--top-features", type=int, default=5, metavar="K", help="features listed per file (default 5)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="skip files, folders and archive members whose relative path or name matches (repeatable)")
    p.add_argument("--hf-cache", nargs="?", const="", default=None, metavar="DIR",
                   help="also scan every snapshot in the Hugging Face cache (default $HF_HUB_CACHE or "
                   "~/.cache/huggingface/hub)")
    p.add_argument("--quiet", "-q", action="store_true", help="print only flagged files and the summary")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help=f"progress bar on stderr (default: on a terminal, from {PROGRESS_MIN_FILES} files)")
    p.add_argument("paths", nargs="*", metavar="PATH", help="files, folders, archives or hf://owner/name[@rev]")
    return p


def exit_code(verdicts: Iterable[str]) -> int:
    """Return 2 if any verdict is an error, else 1 if any is malicious, else 0."""
    verdicts = list(verdicts)
    if "error" in verdicts:
        return EXIT_ERROR
    return 1 if "malicious" in verdicts else 0


Scorer = Callable[[Iterator[Any]], Iterable[VerdictLike]]
"""Turns an iterator of engine ScanItems into verdicts, in the same order."""


def merge(entries: Iterable[Entry], score: Scorer) -> Iterator[tuple[Entry, VerdictLike | None]]:
    """Yield every entry in input order with its verdict: the engine's for model files, None otherwise.

    Only model files go to the engine, lazily; skipped and failed inputs wait in a queue and come out between
    the verdicts of the model files around them, so the output keeps the order of the inputs.
    """
    from safepickle_bench.cli.engine import ScanItem

    order: deque[Entry] = deque()

    def items() -> Iterator[Any]:
        for entry in entries:
            order.append(entry)
            if isinstance(entry, Found):
                yield ScanItem(entry.display, path=entry.path, data=entry.data)

    for verdict in score(items()):
        while not isinstance(order[0], Found):
            yield order.popleft(), None
        yield order.popleft(), verdict
    while order:
        yield order.popleft(), None


class _Progress:
    """A tqdm bar on stderr counting files on disk; text written meanwhile goes through tqdm.write."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.bar = tqdm(total=total, unit="file", file=sys.stderr, dynamic_ncols=True, leave=False)

    def advance(self, source: int) -> None:
        """Move the bar to file `source` (0-based) done."""
        if source + 1 > self.bar.n:
            self.bar.update(source + 1 - self.bar.n)

    def writer(self, out: TextIO) -> TextIO:
        """Return a stream that prints above the bar."""
        bar = self._tqdm

        class _Above:
            def write(self, s: str) -> int:
                bar.write(s.rstrip("\n"), file=out)
                return len(s)

            def flush(self) -> None:
                out.flush()

        return _Above()  # type: ignore[return-value]

    def close(self) -> None:
        """Remove the bar."""
        self.bar.close()


def _want_progress(flag: bool | None, total: int) -> bool:
    if flag is not None:
        return flag
    return total >= PROGRESS_MIN_FILES and sys.stderr.isatty()


def _engine(args: argparse.Namespace) -> Scorer:
    """Return the engine call with the command-line options bound."""
    from safepickle_bench.cli.engine import scan_items

    explain = {None: "flagged", True: "all", False: "none"}[args.explain]

    def score(items: Iterator[Any]) -> Iterable[VerdictLike]:
        return scan_items(
            items,
            model_dir=Path(args.model) if args.model else None,
            jobs=args.jobs,
            backend=args.backend,
            address=args.address,
            explain=explain,
            top_k=args.top_features,
        )

    return score


def run(args: argparse.Namespace, out: TextIO, err: TextIO, score: Scorer | None = None) -> int:
    """Discover the inputs, scan the model files, print the reports and return the exit code."""
    start = time.perf_counter()
    hf_cache = None
    if args.hf_cache is not None:
        from safepickle_bench.cli.hub import default_cache_dir

        hf_cache = Path(args.hf_cache) if args.hf_cache else default_cache_dir()
    found = discover(args.paths, Options(exclude=tuple(args.exclude)), hf_cache=hf_cache)
    progress = _Progress(len(found)) if _want_progress(args.progress, len(found)) else None
    stdout = progress.writer(out) if progress else out
    report: TextReport | JsonLinesReport = (
        JsonLinesReport(stdout, top_features=args.top_features)
        if args.json
        else TextReport(stdout, quiet=args.quiet, top_features=args.top_features)
    )
    sarif = SarifReport(Path(args.sarif)) if args.sarif else None
    tally = Tally()
    failure: str | None = None
    try:
        for entry, verdict in merge(found, score or _engine(args)):
            if progress:
                progress.advance(entry.source)
            if isinstance(entry, Skipped):
                tally.skipped += 1
                continue
            if isinstance(entry, Failed):
                verdict = LocalVerdict(entry.display, "error", error=entry.error)
            assert verdict is not None
            tally.add(verdict)
            report.add(verdict)
            if sarif is not None:
                container = entry.container if isinstance(entry, Found) else ""
                member = entry.member if isinstance(entry, Found) else ""
                sarif.add(verdict, container=container, member=member)
    except Exception as exc:  # the model cannot be loaded, a worker died: say so, keep what was reported
        failure = f"{type(exc).__name__}: {exc}"
        tally.errors += 1
    finally:
        if progress:
            progress.close()
    tally.seconds = time.perf_counter() - start
    if failure:
        err.write(f"error: scan stopped: {failure}\n")
    if sarif is not None:
        sarif.write(tally)
    if args.json:
        err.write(tally.line() + "\n")
    else:
        report.finish(tally)
    return tally.exit_code()


def main(argv: list[str] | None = None) -> int:
    """Scan the inputs named in argv, print the report, and return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.paths and args.hf_cache is None:
        parser.error("give at least one PATH or hf://owner/name, or --hf-cache")
    if args.address and args.backend != "dask":
        parser.error("--address needs --backend dask")
    if args.model and not (Path(args.model) / "detector.json").is_file():
        print(f"error: cannot load detector from {args.model}: no detector.json there", file=sys.stderr)
        return EXIT_ERROR
    return run(args, sys.stdout, sys.stderr)
