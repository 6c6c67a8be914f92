"""Corpus download: sha256-verified, atomic into the cache, and a clear sentence when offline."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from charexp.data.download import STARTREK, KnownCorpus, cache_dir, download, resolve_data_path
from charexp.errors import CharexpError

CONTENT = b'NEXTEPISODE,,,,\n"KIRK: Mister Spock, report.",SPOCK: Fascinating.\nNEXTEPISODE,,,,\n'


def mirror(tmp_path: Path, content: bytes = CONTENT) -> tuple[KnownCorpus, str]:
    """A small corpus served from a file:// URL, with its real checksum."""
    source = tmp_path / "mirror" / "mini.csv"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(content)
    corpus = KnownCorpus(name="mini", filename="mini.csv", url=source.as_uri(),
                         sha256=hashlib.sha256(content).hexdigest(), size=len(content))
    return corpus, source.as_uri()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_download_from_file_url_verifies_and_writes_into_the_cache(tmp_path):
    corpus, url = mirror(tmp_path)
    progress = []
    path = download(corpus, progress=lambda done, total: progress.append((done, total)))
    assert path == cache_dir() / "mini.csv" and cache_dir() == tmp_path / "cache"  # CHAREXP_CACHE_DIR
    assert path.read_bytes() == CONTENT
    assert leftovers(path.parent) == ["mini.csv"]  # no temp file left behind
    assert progress and progress[-1] == (len(CONTENT), len(CONTENT))


def test_a_verified_copy_is_reused_and_force_fetches_again(tmp_path):
    corpus, url = mirror(tmp_path)
    path = download(corpus)
    offline = KnownCorpus(corpus.name, corpus.filename, "file:///nonexistent/mini.csv", corpus.sha256, corpus.size)
    assert download(offline) == path  # nothing fetched: the cached copy matches the checksum
    with pytest.raises(CharexpError):
        download(offline, force=True)
    assert path.read_bytes() == CONTENT  # the failed fetch left the verified copy alone


def test_wrong_checksum_leaves_no_file_and_no_temp_file(tmp_path):
    corpus, url = mirror(tmp_path)
    wrong = KnownCorpus(corpus.name, corpus.filename, url, "0" * 64, corpus.size)
    dest = tmp_path / "elsewhere"
    with pytest.raises(CharexpError) as err:
        download(wrong, dest_dir=dest)
    assert "sha256" in str(err.value) and "\n" not in str(err.value)
    assert leftovers(dest) == []


def test_wrong_checksum_never_replaces_a_good_copy(tmp_path):
    corpus, url = mirror(tmp_path)
    path = download(corpus)
    _, bad_url = mirror(tmp_path / "bad", b"something else entirely\n")
    with pytest.raises(CharexpError, match="sha256"):
        download(corpus, url=bad_url, force=True)
    assert path.read_bytes() == CONTENT and leftovers(path.parent) == ["mini.csv"]


@pytest.mark.parametrize("url", ["file:///nonexistent/dir/mini.csv", "http://127.0.0.1:9/mini.csv"])
def test_offline_or_unreachable_url_says_how_to_use_a_local_file(tmp_path, url):
    corpus, _ = mirror(tmp_path)
    with pytest.raises(CharexpError) as err:
        download(corpus, url=url)
    message = str(err.value)
    assert "\n" not in message and url in message
    assert "data:" in message and "mini.csv" in message
    assert leftovers(cache_dir()) == []


def test_mirror_from_the_environment(tmp_path, monkeypatch):
    corpus, url = mirror(tmp_path)
    monkeypatch.setenv("CHAREXP_CORPUS_URL", url)
    unreachable = KnownCorpus(corpus.name, corpus.filename, "http://127.0.0.1:9/mini.csv", corpus.sha256, corpus.size)
    assert download(unreachable).read_bytes() == CONTENT


def test_the_real_corpus_through_file_url(real_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("CHAREXP_CORPUS_URL", real_csv.as_uri())
    path = resolve_data_path("startrek")
    assert path == tmp_path / "cache" / STARTREK.filename
    assert path.stat().st_size == STARTREK.size
    assert hashlib.sha256(path.read_bytes()).hexdigest() == STARTREK.sha256
    assert resolve_data_path(str(real_csv)) == real_csv  # a path is used as it is


def test_charexp_data_download_command(real_csv, tmp_path):
    # the console script; without it (not pip-installed) the same entry point
    script = Path(sys.executable).with_name("charexp")
    charexp = [str(script)] if script.exists() else [sys.executable, "-c", "from charexp.cli import main; main()"]
    out = subprocess.run([*charexp, "data", "download", "--url", real_csv.as_uri()], capture_output=True, text=True,
                         env=os.environ.copy(), timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "cache" / STARTREK.filename).stat().st_size == STARTREK.size
    bad = subprocess.run([*charexp, "data", "download", "--force", "--url", "file:///nonexistent/x.csv"],
                         capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "data:" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_damaged_cached_copy_is_not_used(tmp_path, monkeypatch):
    """A cached corpus that no longer matches its checksum (copied by hand, disk trouble) is fetched again."""
    from charexp.data import download as download_module

    corpus, url = mirror(tmp_path)
    monkeypatch.setitem(download_module.KNOWN, "mini", corpus)
    path = download(corpus)
    path.write_bytes(CONTENT[:10])
    assert resolve_data_path("mini") == path
    assert path.read_bytes() == CONTENT
    path.write_bytes(CONTENT[:10])
    unreachable = KnownCorpus(corpus.name, corpus.filename, "file:///nonexistent/mini.csv", corpus.sha256, corpus.size)
    monkeypatch.setitem(download_module.KNOWN, "mini", unreachable)
    with pytest.raises(CharexpError, match="data:"):
        resolve_data_path("mini")
