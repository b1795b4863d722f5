"""ClamAV without a signature database and VirusTotal without a key are unavailable, never "benign";
with a (custom) database / a local fake API they give real verdicts."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from safepickle_bench.scanners.base import ScannerUnavailable
from safepickle_bench.scanners.clamav import ClamAVScanner
from safepickle_bench.scanners.virustotal import VirusTotalScanner, sha256_of

MALICIOUS_PICKLE = b"\x80\x02cposix\nsystem\nq\x00X\x07\x00\x00\x00echo hiq\x01\x85q\x02Rq\x03."


@pytest.fixture()
def files(tmp_path) -> dict[str, Path]:
    (tmp_path / "mal.pkl").write_bytes(MALICIOUS_PICKLE)
    (tmp_path / "ben.pkl").write_bytes(b"\x80\x02}q\x00.")
    return {"mal": tmp_path / "mal.pkl", "ben": tmp_path / "ben.pkl"}


def test_clamav_without_database_is_unavailable(tmp_path, files):
    scanner = ClamAVScanner(database=str(tmp_path / "empty_db"))
    ok, why = scanner.available()
    assert not ok and ("no ClamAV signature database" in why or "not installed" in why)
    with pytest.raises(ScannerUnavailable):
        scanner.scan(files["mal"])


@pytest.mark.skipif(shutil.which("clamscan") is None, reason="clamav not installed (apt-get install clamav)")
def test_clamav_with_custom_signature_detects(tmp_path, files):
    db = tmp_path / "db"
    db.mkdir()
    # a byte-pattern signature for "cposix\nsystem\n" (our own test signature, not ClamAV's database)
    (db / "test.ndb").write_text("SafePickleTest.PosixSystem:0:*:63706f7369780a73797374656d0a\n")
    scanner = ClamAVScanner(database=str(db), timeout=120)
    assert scanner.available()[0]
    mal, ben = scanner.scan(files["mal"]), scanner.scan(files["ben"])
    assert mal.verdict == "malicious" and "SafePickleTest.PosixSystem" in mal.findings[0]
    assert ben.verdict == "benign"


class FakeVirusTotal(BaseHTTPRequestHandler):
    """Speaks GET /api/v3/files/{sha256} like the real API, from a dict of known hashes."""

    known: dict[str, dict[str, int]] = {}
    seen_keys: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.seen_keys.append(self.headers.get("x-apikey", ""))
        sha = self.path.rstrip("/").rsplit("/", 1)[-1]
        if self.path.startswith("/api/v3/files/") and sha in self.known:
            code, body = (
                200,
                {"data": {"type": "file", "id": sha, "attributes": {"last_analysis_stats": self.known[sha]}}},
            )
        else:
            code, body = 404, {"error": {"code": "NotFoundError", "message": f'File "{sha}" not found'}}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        return None


def test_virustotal_without_key_is_unavailable(monkeypatch, files):
    monkeypatch.delenv("VT_API_KEY", raising=False)
    scanner = VirusTotalScanner()
    ok, why = scanner.available()
    assert not ok and "VT_API_KEY" in why
    with pytest.raises(ScannerUnavailable):
        scanner.scan(files["mal"])


def test_virustotal_lookup_against_local_fake_api(monkeypatch, files):
    FakeVirusTotal.known = {
        sha256_of(files["mal"]): {"malicious": 6, "suspicious": 2, "undetected": 52, "harmless": 0}
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeVirusTotal)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("VT_API_KEY", "test-key")
    scanner = VirusTotalScanner(host=f"http://127.0.0.1:{server.server_address[1]}")
    try:
        mal, ben = scanner.scan(files["mal"]), scanner.scan(files["ben"])
        strict = VirusTotalScanner(host=scanner.host, not_found="error")
        unknown = strict.scan(files["ben"])
        strict.close()
    finally:
        scanner.close()
        server.shutdown()
    assert mal.verdict == "malicious" and mal.score == pytest.approx(8 / 60)
    assert "malicious: 6" in mal.findings
    assert ben.verdict == "benign" and ben.skipped and "unknown to VirusTotal" in ben.findings[0]
    assert unknown.verdict == "error"
    assert "test-key" in FakeVirusTotal.seen_keys


def test_clamscan_binary_reports_missing_default_database():
    if shutil.which("clamscan") is None:
        pytest.skip("clamav not installed")
    scanner = ClamAVScanner()
    ok, why = scanner.available()
    if ok:  # a machine with a real database: the wrapper must say it is usable
        assert "signature file" in why
    else:
        proc = subprocess.run(["clamscan", "--version"], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0 and "/var/lib/clamav" in why
