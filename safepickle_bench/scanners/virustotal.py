"""VirusTotal (the `vt-py` client) behind our Scanner interface: a lookup of the file's sha256, no upload.

Availability: needs an API key in the environment variable named by `api_key_env` (default
`VT_API_KEY`); without one `available()` is False and benchmark tables print "unavailable" instead
of a figure. Files are never uploaded (that would publish hostile samples and our data); only
`GET /api/v3/files/{sha256}` is asked. `host` can point the client at another server (the tests use
a local fake on 127.0.0.1 that speaks the API's JSON). `min_interval_seconds` spaces requests for
rate-limited keys (public keys: 4 per minute -> 15).

Result -> verdict, score (from `data.attributes.last_analysis_stats`):
- `malicious` engines >= `min_detections` (default 1)  -> malicious
- otherwise                                           -> benign
- score = (malicious + suspicious) / engines that answered (malicious, suspicious, undetected, harmless)
- file unknown to VirusTotal (404 NotFoundError)      -> `not_found` (default benign, score 0.0,
  `skipped=True`: no engine looked at it); `not_found: error` makes it an error instead
- any other API error, network error or timeout       -> error
Mode: `in-process` (an HTTP client call; nothing of the file is parsed, only hashed).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from safepickle_bench.scanners.base import Scanner, ScannerUnavailable, ScanResult, register

STAT_KEYS: tuple[str, ...] = ("malicious", "suspicious", "undetected", "harmless")


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verdict_from_stats(stats: dict[str, Any], min_detections: int = 1) -> tuple[str, float, list[str]]:
    """Map `last_analysis_stats` to (verdict, score, findings)."""
    counts = {k: int(stats.get(k, 0) or 0) for k in STAT_KEYS}
    engines = sum(counts.values())
    score = (counts["malicious"] + counts["suspicious"]) / engines if engines else 0.0
    findings = [f"{k}: {v}" for k, v in counts.items()]
    verdict = "malicious" if counts["malicious"] >= min_detections else "benign"
    return verdict, score, findings


@register("virustotal")
class VirusTotalScanner(Scanner):
    """VirusTotal hash lookup via vt-py; unavailable without an API key."""

    modes = ("in-process",)

    def __init__(self, timeout: float = 60.0, mode: str | None = None, api_key_env: str = "VT_API_KEY",
                 host: str | None = None, min_detections: int = 1, not_found: str = "benign",
                 min_interval_seconds: float = 0.0) -> None:
        """Set timeout, the key's environment variable, the API host and how to map results."""
        super().__init__(timeout=timeout, mode=mode)
        if not_found not in ("benign", "error"):
            raise ValueError("not_found must be 'benign' or 'error'")
        self.api_key_env = api_key_env
        self.host = host
        self.min_detections = int(min_detections)
        self.not_found = not_found
        self.min_interval_seconds = float(min_interval_seconds)
        self._client: Any = None
        self._last_request = 0.0

    def available(self) -> tuple[bool, str]:
        """Return whether vt-py is installed and an API key is set."""
        try:
            import vt  # noqa: F401
        except ImportError as exc:
            return False, f"vt-py not installed: {exc}"
        if not os.environ.get(self.api_key_env):
            return False, f"no VirusTotal API key in ${self.api_key_env}"
        return True, f"VirusTotal lookup via {self.host or 'https://www.virustotal.com'}"

    def _get_client(self) -> Any:
        """Return the (lazily created) vt.Client."""
        if self._client is None:
            import vt

            key = os.environ.get(self.api_key_env, "")
            if not key:
                raise ScannerUnavailable(f"no VirusTotal API key in ${self.api_key_env}")
            self._client = vt.Client(key, agent="safepickle-bench", host=self.host, timeout=int(self.timeout))
        return self._client

    def _scan(self, path: Path) -> ScanResult:
        """Look the file's sha256 up and map the analysis stats."""
        import vt

        client = self._get_client()
        sha = sha256_of(path)
        wait = self.min_interval_seconds - (time.monotonic() - self._last_request)
        if wait > 0:
            time.sleep(wait)
        start = time.perf_counter()
        self._last_request = time.monotonic()
        try:
            obj = client.get_object("/files/{}", sha)
        except vt.APIError as exc:
            seconds = time.perf_counter() - start
            if exc.code == "NotFoundError":
                if self.not_found == "error":
                    return ScanResult.failed(f"{sha} not found on VirusTotal", seconds)
                return ScanResult("benign", 0.0, [f"{sha} unknown to VirusTotal"], None, seconds, skipped=True)
            return ScanResult.failed(f"VirusTotal API error {exc.code}: {exc.message}", seconds)
        seconds = time.perf_counter() - start
        stats = obj.get("last_analysis_stats") or {}
        if not stats:
            return ScanResult.failed(f"no last_analysis_stats for {sha}", seconds)
        verdict, score, findings = verdict_from_stats(dict(stats), self.min_detections)
        return ScanResult(verdict, score, findings, None, seconds)  # type: ignore[arg-type]

    def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None
