"""Fetch the reference corpus into a cache directory: checksum-verified, atomic, clear offline."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from charexp.errors import CharexpError


@dataclass(frozen=True)
class KnownCorpus:
    name: str
    filename: str
    url: str
    sha256: str
    size: int


STARTREK = KnownCorpus(
    name="startrek",
    filename="star_trek_transcripts_all_episodes.csv",
    url="https://github.com/chiayewken/sutd-materials/releases/download/v0.1.0/star_trek_transcripts_all_episodes.csv",
    sha256="f467ee6f6ed32b023675bd1cf22bc46943cbd7163ba2705bb889100a34a6c242",
    size=3_120_410,
)
KNOWN = {STARTREK.name: STARTREK}


def cache_dir() -> Path:
    """$CHAREXP_CACHE_DIR, else $XDG_CACHE_HOME/charexp, else ~/.cache/charexp."""
    if os.environ.get("CHAREXP_CACHE_DIR"):
        return Path(os.environ["CHAREXP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "charexp"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def corpus_url(corpus: KnownCorpus) -> str:
    """The public URL, or a mirror named by $CHAREXP_CORPUS_URL (any urllib URL, file:// too)."""
    return os.environ.get("CHAREXP_CORPUS_URL") or corpus.url


def download(
    corpus: KnownCorpus = STARTREK,
    url: str | None = None,
    dest_dir: Path | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Download `corpus` into the cache (unless a verified copy is there) and return its path."""
    dest_dir = Path(dest_dir or cache_dir())
    dest = dest_dir / corpus.filename
    if dest.exists() and not force and sha256_of(dest) == corpus.sha256:
        return dest
    url = url or corpus_url(corpus)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CharexpError(f"cannot create the corpus cache {dest_dir} ({err.strerror}); "
                           "set CHAREXP_CACHE_DIR to a writable directory") from None
    fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{corpus.filename}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=30)
            except (urllib.error.URLError, OSError, ValueError) as err:
                reason = getattr(err, "reason", err)
                raise CharexpError(
                    f"could not download the {corpus.name} corpus from {url} ({reason}); if this machine is offline, "
                    f"copy {corpus.filename} here by other means and set 'data: /path/to/{corpus.filename}' "
                    "in your config (or pass --data=PATH)"
                ) from None
            with response:
                total = int(response.headers.get("Content-Length") or corpus.size)
                done = 0
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != corpus.sha256:
            raise CharexpError(
                f"the file downloaded from {url} has sha256 {digest.hexdigest()[:12]}…, "
                f"not the expected {corpus.sha256[:12]}…; "
                "the mirror holds a different file, so nothing was saved"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def resolve_data_path(data: str, fetch: bool = True) -> Path:
    """A config's `data:` value as a file path: a known corpus name is looked up in (or fetched into) the cache."""
    if data in KNOWN:
        corpus = KNOWN[data]
        cached = cache_dir() / corpus.filename
        if cached.exists() and sha256_of(cached) == corpus.sha256:  # a damaged or foreign copy is never trained on
            return cached
        if not fetch:
            state = "does not match its checksum" if cached.exists() else "is not in the cache"
            raise CharexpError(f"the {data} corpus {state} ({cached}); run 'charexp data download --force'")
        return download(corpus, force=True)
    return Path(data).expanduser()
