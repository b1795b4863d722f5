"""Discovery of the files to scan: by content, folders, archives, exclusions, links, limits and read errors."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from safepickle_bench.analysis import analyze_bytes, analyze_path
from safepickle_bench.cli import discover as disc
from safepickle_bench.cli.discover import ArchiveLimits, Failed, Found, Options, Skipped, discover
from tests.cli.conftest import PNG, tar_bytes
from tests.conftest import BENIGN_PICKLE, PAYLOAD_P2, PAYLOAD_P4, torch_like_zip, zip_bytes


def _by_kind(root: Path, options: Options | None = None) -> dict[str, str]:
    """Return {display relative to root: found/skipped/failed} for a discovery of `root`."""
    out = {}
    for e in discover([str(root)], options):
        rel = e.display[len(str(root)) + 1 :]
        out[rel] = {Found: "found", Skipped: "skipped", Failed: "failed"}[type(e)]
    return out


def test_a_mixed_folder_yields_model_files_and_archive_members_and_skips_the_rest(mixed_folder):
    root, expected = mixed_folder
    kinds = _by_kind(root)
    assert kinds == {k: "skipped" if v == "skipped" else "found" for k, v in expected.items()}


def test_files_are_recognised_by_content_not_by_name(tmp_path):
    (tmp_path / "model.pkl").write_bytes(b"just some text pretending to be a pickle\n")
    (tmp_path / "notes.txt").write_bytes(PAYLOAD_P4)
    (tmp_path / "photo.jpg").write_bytes(torch_like_zip(PAYLOAD_P2))
    assert _by_kind(tmp_path) == {"model.pkl": "skipped", "notes.txt": "found", "photo.jpg": "found"}


def test_every_hostile_container_is_scanned_and_its_payload_stays_visible(tmp_path, hostile_container_samples):
    for sample in hostile_container_samples:
        (tmp_path / sample.name).write_bytes(sample.data)
    seen: dict[str, bool] = {}
    for entry in discover([str(tmp_path)]):
        assert not isinstance(entry, Failed), entry
        top = Path(entry.display.split("!")[0]).name
        if isinstance(entry, Found):
            analysis = analyze_path(entry.path) if entry.path else analyze_bytes(entry.data, entry.display)
            seen[top] = seen.get(top, False) or "posix.system" in {c.callable for c in analysis.all_calls()}
    assert seen == {s.name: True for s in hostile_container_samples}


def test_torch_and_numpy_zips_are_one_model_file_and_other_zips_are_opened(tmp_path):
    (tmp_path / "a.pt").write_bytes(torch_like_zip(BENIGN_PICKLE))
    (tmp_path / "b.npz").write_bytes(zip_bytes({"arr_0.npy": b"\x93NUMPY" + b"\x00" * 10}))
    (tmp_path / "c.zip").write_bytes(zip_bytes({"x/data.bin": PAYLOAD_P2, "x/y/": b""}))
    entries = [e for e in discover([str(tmp_path)]) if isinstance(e, Found)]
    names = [e.display[len(str(tmp_path)) + 1 :] for e in entries]
    assert names == ["a.pt", "b.npz", "c.zip!x/data.bin"]
    member = entries[2]
    assert member.path is None and member.data == PAYLOAD_P2
    assert member.container == str(tmp_path / "c.zip") and member.member == "x/data.bin"


def test_plain_and_compressed_tars_are_opened_but_an_old_torch_tar_is_one_file(tmp_path):
    for mode, suffix in (("w", "tar"), ("w:gz", "tgz"), ("w:bz2", "tbz"), ("w:xz", "txz")):
        (tmp_path / f"r.{suffix}").write_bytes(tar_bytes({"m/evil.pkl": PAYLOAD_P2}, mode))
    torch_tar = {"sys_info": BENIGN_PICKLE, "pickle": PAYLOAD_P2, "storages": BENIGN_PICKLE, "tensors": BENIGN_PICKLE}
    (tmp_path / "old.pt").write_bytes(tar_bytes(torch_tar))
    assert _by_kind(tmp_path) == {
        "old.pt": "found",
        "r.tar!m/evil.pkl": "found",
        "r.tbz!m/evil.pkl": "found",
        "r.tgz!m/evil.pkl": "found",
        "r.txz!m/evil.pkl": "found",
    }


def test_exclude_matches_relative_paths_and_base_names_and_prunes_folders(mixed_folder):
    root, _ = mixed_folder
    kinds = _by_kind(root, Options(exclude=("models", "*.zip", "inner/*")))
    assert not any(k.startswith(("models/", "bundle.zip")) for k in kinds)
    assert "release.tar.gz!model/evil.bin" in kinds
    kinds = _by_kind(root, Options(exclude=("models/evil*", "*.md", "model/config.json")))
    assert "models/evil.pkl" not in kinds and "models/evil_torch.pt" not in kinds
    assert "models/weights.bin" in kinds and "README.md" not in kinds
    assert "release.tar.gz!model/config.json" not in kinds and "release.tar.gz!model/evil.bin" in kinds


def test_links_to_files_are_followed_links_to_folders_and_loops_are_not(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "evil.pkl").write_bytes(PAYLOAD_P2)
    (tmp_path / "real" / "loop").symlink_to(tmp_path)
    (tmp_path / "link.pkl").symlink_to(tmp_path / "real" / "evil.pkl")
    (tmp_path / "dangling.pkl").symlink_to(tmp_path / "nowhere")
    (tmp_path / "self").symlink_to(tmp_path / "self")
    kinds = _by_kind(tmp_path)
    assert kinds == {"dangling.pkl": "skipped", "link.pkl": "found", "real/evil.pkl": "found",
                     "real/loop": "skipped", "self": "skipped"}
    named = list(discover([str(tmp_path / "real" / "loop")]))  # a link named on the command line is followed
    assert sum(isinstance(e, Found) for e in named) == 2


def test_missing_paths_fifos_and_unreadable_files_are_errors_in_input_order(tmp_path, monkeypatch):
    (tmp_path / "a.pkl").write_bytes(PAYLOAD_P2)
    (tmp_path / "locked.pkl").write_bytes(PAYLOAD_P2)
    os.mkfifo(tmp_path / "pipe")
    real_open = disc._Source.open

    def refuse(self):
        if self.path is not None and self.path.name == "locked.pkl":
            raise PermissionError(13, "Permission denied")
        return real_open(self)

    monkeypatch.setattr(disc._Source, "open", refuse)
    entries = list(discover([str(tmp_path / "missing.pkl"), str(tmp_path), str(tmp_path / "pipe")]))
    kinds = [(type(e).__name__, Path(e.display).name) for e in entries]
    assert kinds == [("Failed", "missing.pkl"), ("Found", "a.pkl"), ("Failed", "locked.pkl"),
                     ("Skipped", "pipe"), ("Failed", "pipe")]
    assert "Permission denied" in entries[2].error and "not a regular file" in entries[4].error


def test_an_unreadable_folder_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.pkl").write_bytes(PAYLOAD_P2)
    (tmp_path / "closed").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "closed":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    kinds = _by_kind(tmp_path)
    assert kinds == {"closed": "failed", "ok/a.pkl": "found"}


def test_archive_limits_turn_into_errors_never_into_silent_skips(tmp_path):
    (tmp_path / "many.zip").write_bytes(zip_bytes({f"m{i}.pkl": PAYLOAD_P2 for i in range(5)}))
    (tmp_path / "big.zip").write_bytes(zip_bytes({"big.pkl": PAYLOAD_P2 + b"\x00" * 100, "small.pkl": PAYLOAD_P2}))
    limits = ArchiveLimits(max_members=3, max_member_bytes=64, max_total_bytes=10_000)
    entries = list(discover([str(tmp_path)], Options(archive_limits=limits)))
    shown = [(type(e).__name__, e.display[len(str(tmp_path)) + 1 :]) for e in entries]
    assert shown == [("Failed", "big.zip!big.pkl"), ("Found", "big.zip!small.pkl"), ("Found", "many.zip!m0.pkl"),
                     ("Found", "many.zip!m1.pkl"), ("Found", "many.zip!m2.pkl"), ("Failed", "many.zip")]
    assert "limit" in entries[0].error and "more than 3 members" in entries[-1].error


def test_a_member_zipfile_cannot_read_sends_the_whole_archive_to_the_analyzer(tmp_path):
    data = bytearray(zip_bytes({"m/evil.bin": PAYLOAD_P2, "m/notes.txt": b"hello"}))
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set the "encrypted" flag: zipfile refuses
        pos = data.find(sig)
        data[pos + at] |= 0x01
    (tmp_path / "locked.zip").write_bytes(bytes(data))
    entries = list(discover([str(tmp_path)]))
    assert [(type(e).__name__, Path(e.display).name) for e in entries] == [("Found", "locked.zip")]
    calls = {c.callable for c in analyze_path(entries[0].path).all_calls()}
    assert "posix.system" in calls


def test_a_damaged_zip_is_one_model_file_for_the_analyzer(tmp_path):
    whole = zip_bytes({"m/evil.bin": PAYLOAD_P2})
    (tmp_path / "cut.zip").write_bytes(whole[: whole.index(b"PK\x01\x02")])
    assert _by_kind(tmp_path) == {"cut.zip": "found"}


def test_large_files_of_unknown_content_are_judged_on_their_start_and_their_zip_tail(tmp_path, monkeypatch):
    monkeypatch.setattr(disc, "FULL_ANALYSIS_BYTES", 1000)
    monkeypatch.setattr(disc, "PROBE_BYTES", 500)
    (tmp_path / "weights.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}" + b"\x00" * 5000)
    (tmp_path / "padded.pkl").write_bytes(b"S'" + b"x" * 3000 + b"'\n0cposix\nsystem\n(S'echo hi'\ntR.")
    (tmp_path / "polyglot.png").write_bytes(PNG + b"\x00" * 3000 + torch_like_zip(PAYLOAD_P2))
    assert _by_kind(tmp_path) == {"padded.pkl": "found", "polyglot.png": "found", "weights.safetensors": "skipped"}


def test_files_named_explicitly_are_sniffed_for_scan_but_kept_as_given_for_analyze(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_bytes({"evil.pkl": PAYLOAD_P2}))
    assert [type(e) for e in discover([str(text)])] == [Skipped]
    as_given = Options(sniff_explicit=False, open_archives=False)
    assert [(type(e), e.display) for e in discover([str(text), str(archive)], as_given)] == [
        (Found, str(text)), (Found, str(archive))]


def test_progress_counts_files_on_disk_and_entries_carry_their_file_index(mixed_folder):
    root, expected = mixed_folder
    found = discover([str(root)])
    assert len(found) == 10
    sources = [e.source for e in found]
    assert sources == sorted(sources) and sources[-1] == 9


@pytest.mark.parametrize("head", [b"x^hello world", b"x hello world"])
def test_text_that_happens_to_start_like_zlib_is_not_a_model_file(tmp_path, head):
    (tmp_path / "t.txt").write_bytes(head)
    assert _by_kind(tmp_path) == {"t.txt": "skipped"}


def test_a_zip_member_that_is_itself_a_zip_is_one_model_file(tmp_path):
    inner = zip_bytes({"x.pkl": PAYLOAD_P2})
    (tmp_path / "outer.zip").write_bytes(zip_bytes({"inner.zip": inner}, zipfile.ZIP_DEFLATED))
    entries = [e for e in discover([str(tmp_path)]) if isinstance(e, Found)]
    assert [e.member for e in entries] == ["inner.zip"] and entries[0].data == inner
