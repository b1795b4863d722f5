"""ClamAV (`clamscan`, Debian package `clamav`) behind our Scanner interface.

Mode: `cli`, one `clamscan --no-summary -d DB PATH` per file (archives, including PyTorch zips, are
unpacked by ClamAV itself). `clamscan` loads its whole signature database at every start: with the
official database that is seconds per file, and those seconds are what we report.

Availability: ClamAV needs a signature database (`main.cvd`, `daily.cvd`... normally fetched by
`freshclam`, which cannot reach its mirrors here). When the database directory holds no signature file,
`available()` is False with that reason, and benchmark tables print "unavailable (reason)" instead of
any figure. A custom database (`.hdb` hashes, `.ndb` byte patterns...) can be given as `database`;
the tests use one to exercise the real wrapper, but numbers from it are not "ClamAV's".

Result -> verdict, score:
- exit 1 with "<path>: <signature> FOUND" -> malicious, score 1.0 (the signature names are the findings)
- exit 0 ("OK", "Empty file")             -> benign, score 0.0
- exit 2 or anything else, a timeout      -> error
Size limits are raised to `max_filesize_mb` (default 4000) so large checkpoints are actually read:
by default ClamAV reports files over 100 MB as clean without scanning them.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from safepickle_bench.scanners.base import Scanner, ScannerUnavailable, ScanResult, register
from safepickle_bench.scanners.isolation import ScanTimeout, run_cli

DEFAULT_DATABASE = "/var/lib/clamav"
SIGNATURE_SUFFIXES: tuple[str, ...] = (
    ".cvd", ".cld", ".cud", ".hdb", ".hsb", ".hdu", ".hsu", ".mdb", ".msb", ".ndb", ".ndu", ".ldb", ".ldu",
    ".cdb", ".idb", ".ign2", ".ftm", ".yar", ".yara", ".pdb", ".gdb", ".wdb", ".cbc", ".crb", ".sfp", ".fp",
)


def signature_files(database: str | Path) -> list[Path]:
    """Return the signature files of a database directory (or the file itself)."""
    db = Path(database)
    if db.is_file():
        return [db] if db.suffix in SIGNATURE_SUFFIXES else []
    if db.is_dir():
        return sorted(p for p in db.iterdir() if p.is_file() and p.suffix in SIGNATURE_SUFFIXES)
    return []


@register("clamav")
class ClamAVScanner(Scanner):
    """clamscan with a signature database; unavailable without one."""

    modes = ("cli",)

    def __init__(self, timeout: float = 300.0, mode: str | None = None, database: str = DEFAULT_DATABASE,
                 executable: str | None = None, max_filesize_mb: int = 4000) -> None:
        """Set timeout, the database (dir or file), the clamscan path and the size limit."""
        super().__init__(timeout=timeout, mode=mode)
        self.database = str(database)
        self.executable = executable or shutil.which("clamscan") or "/usr/bin/clamscan"
        self.max_filesize_mb = int(max_filesize_mb)

    def available(self) -> tuple[bool, str]:
        """Return whether clamscan is installed and a signature database is present."""
        if not Path(self.executable).exists():
            return False, "clamscan not installed (apt-get install -y clamav)"
        sigs = signature_files(self.database)
        if not sigs:
            return False, (f"no ClamAV signature database in {self.database} "
                           "(freshclam cannot download it here)")
        return True, f"clamscan with {len(sigs)} signature file(s) from {self.database}"

    def _scan(self, path: Path) -> ScanResult:
        """Run clamscan on one file and map its exit code and output."""
        ok, why = self.available()
        if not ok:
            raise ScannerUnavailable(why)
        limit = f"{self.max_filesize_mb}M"
        cmd = [self.executable, "--no-summary", "-d", self.database, f"--max-filesize={limit}",
               f"--max-scansize={limit}", str(path.resolve())]
        try:
            proc, seconds = run_cli(cmd, self.timeout)
        except ScanTimeout as exc:
            return ScanResult.failed(f"timeout: {exc}", self.timeout)
        found = re.findall(r": (\S+) FOUND$", proc.stdout, flags=re.MULTILINE)
        if proc.returncode == 1 and found:
            return ScanResult("malicious", 1.0, [f"signature: {s}" for s in found], None, seconds)
        if proc.returncode == 0:
            notes = [ln.split(": ", 1)[-1] for ln in proc.stdout.splitlines() if ln.strip()]
            return ScanResult("benign", 0.0, notes[:5], None, seconds)
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        return ScanResult.failed(f"clamscan exit {proc.returncode}: {tail[0][:300]}", seconds)
