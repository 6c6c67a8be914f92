"""Read a transcript corpus, split it, and build the character vocabulary.

Formats: the Star Trek transcript CSV (one utterance per cell, `NEXTEPISODE` rows between
episodes; see shared/data/SOURCE.md), or plain UTF-8 text with one utterance per line (a
line reading `NEXTEPISODE` separates episodes there too).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

from charexp.errors import CharexpError

EPISODE_MARKER = "NEXTEPISODE"
EOL = "\n"  # end-of-line symbol: every utterance ends with it, sampling stops at it
UNK = "\ufffd"  # stands for a test character never seen in training


@dataclass(frozen=True)
class Vocab:
    """chars[0] is end-of-line, chars[1] the unknown-character symbol, then sorted characters."""

    chars: tuple[str, ...]

    @classmethod
    def from_texts(cls, texts: list[str]) -> "Vocab":
        seen = set().union(*map(set, texts)) - {EOL, UNK}
        return cls((EOL, UNK, *sorted(seen)))

    @property
    def eol(self) -> int:
        return 0

    @property
    def unk(self) -> int:
        return 1

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.chars)}

    def encode(self, text: str) -> list[int]:
        index = self.index
        return [index.get(c, self.unk) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids if i != self.eol)

    def missing(self, text: str) -> list[str]:
        """Characters of `text` the vocabulary cannot encode, in order of appearance."""
        index = self.index
        return list(dict.fromkeys(c for c in text if c not in index))


@dataclass(frozen=True)
class Corpus:
    train: list[str]
    test: list[str]
    vocab: Vocab
    split: str
    episodes: int
    source: str
    unknown_test_chars: int  # test characters outside the training vocabulary (scored as UNK)
    sha256: str = ""  # of the data file's bytes
    test_fraction: float = 0.0
    split_seed: int = 0  # picks the split (config split_seed); the training seed plays no part in it

    def describe(self) -> str:
        chars = sum(map(len, self.train))
        unknown = ""
        if self.unknown_test_chars:
            unknown = f"; {self.unknown_test_chars} test chars unseen in training are scored as <unk>"
        return (
            f"{self.source}: {len(self.train) + len(self.test):,} utterances in {self.episodes} episode(s); "
            f"split by {self.split}: {len(self.train):,} train ({chars:,} chars) / {len(self.test):,} test; "
            f"vocabulary {len(self.vocab)} symbols{unknown}"
        )


def read_text_file(path: Path) -> str:
    if not path.exists():  # a path the user named: downloading cannot make it exist, so say where it was looked for
        where = "" if path.is_absolute() else f" (relative to the current directory {Path.cwd()})"
        raise CharexpError(f"data file {path} does not exist{where}; check the path, "
                           "or set 'data: startrek' to train on the Star Trek corpus that charexp downloads and caches")
    if path.is_dir():
        raise CharexpError(f"data path {path} is a directory; set 'data:' to a .csv or .txt file inside it")
    raw = path.read_bytes()
    if not raw.strip():
        raise CharexpError(f"data file {path} is empty; point 'data:' at a transcript CSV or a UTF-8 text file")
    if b"\x00" in raw[:65536]:
        raise CharexpError(f"data file {path} looks binary (it holds NUL bytes); "
                           "point 'data:' at a transcript CSV or a UTF-8 text file")
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")  # a byte-order mark (Windows editors) is not text
    except UnicodeDecodeError as err:
        raise CharexpError(
            f"data file {path} is not UTF-8 (bad byte at offset {err.start}); "
            "convert it, e.g. 'iconv -f latin1 -t utf-8'"
        ) from None


def _clean(cell: str) -> str:
    return cell.replace("\r", " ").replace("\n", " ")


def parse_csv(text: str) -> list[list[str]]:
    """Episodes of utterances, the homework's way: csv.reader, drop NEXTEPISODE, keep cells longer than 1."""
    episodes: list[list[str]] = [[]]
    # Old Mac line ends (a bare CR) made csv raise mid-file; cells lose their line breaks anyway (_clean).
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for row in csv.reader(io.StringIO(text)):
        if row and row[0] == EPISODE_MARKER:
            episodes.append([])
            continue
        episodes[-1].extend(_clean(cell) for cell in row if len(cell) > 1)
    return [e for e in episodes if e]


def parse_lines(text: str) -> list[list[str]]:
    episodes: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip() == EPISODE_MARKER:
            episodes.append([])
        elif line.strip():
            episodes[-1].append(line)
    return [e for e in episodes if e]


def read_episodes(path: str | Path) -> list[list[str]]:
    path = Path(path)
    text = read_text_file(path)
    try:
        episodes = parse_csv(text) if path.suffix.lower() == ".csv" else parse_lines(text)
    except csv.Error as err:  # with line ends normalised, only a cell past csv's 128 KiB limit: an unmatched quote
        raise CharexpError(f"data file {path} is not a readable CSV ({err}); look for an unmatched double quote, "
                           "or rename it to .txt to read it as one utterance per line") from None
    if not episodes:
        raise CharexpError(f"data file {path} holds no utterances after parsing; "
                           "expected CSV cells like 'KIRK: Hello' or one utterance per line")
    return episodes


def split_corpus(episodes: list[list[str]], split: str, test_fraction: float,
                 split_seed: int) -> tuple[list[str], list[str], str]:
    """Deterministic train/test split by whole episodes, or by utterance: a function of `split_seed` alone."""
    if split == "auto":
        split = "episode" if len(episodes) > 1 else "line"
    if split == "episode":
        if len(episodes) < 2:
            raise CharexpError("split: episode needs at least 2 episodes (NEXTEPISODE markers); "
                               "use split: line for this file")
        order = list(range(len(episodes)))
        random.Random(split_seed).shuffle(order)
        n_test = min(len(order) - 1, max(1, round(len(order) * test_fraction)))
        test_ids = set(order[:n_test])
        train = [u for i, e in enumerate(episodes) if i not in test_ids for u in e]
        test = [u for i, e in enumerate(episodes) if i in test_ids for u in e]
    else:
        utterances = [u for e in episodes for u in e]
        if len(utterances) < 2:
            raise CharexpError("the corpus needs at least 2 utterances to split into train and test")
        random.Random(split_seed).shuffle(utterances)
        n_train = min(len(utterances) - 1, max(1, int(len(utterances) * (1 - test_fraction))))
        train, test = utterances[:n_train], utterances[n_train:]
    return train, test, split


def load_corpus(path: str | Path, split: str = "auto", test_fraction: float = 0.1, split_seed: int = 0,
                vocab: Vocab | None = None) -> Corpus:
    """Read, split and (unless a checkpoint's vocabulary is given) build the vocabulary from train."""
    episodes = read_episodes(path)
    train, test, split = split_corpus(episodes, split, test_fraction, split_seed)
    vocab = vocab or Vocab.from_texts(train)
    index = vocab.index
    unknown = sum(1 for u in test for c in u if c not in index)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return Corpus(train, test, vocab, split, len(episodes), Path(path).name, unknown, digest, test_fraction, split_seed)


def fingerprint_test_set(corpus: Corpus) -> dict:
    """What makes two test losses comparable: the same file (sha256), the same split of it (split,
    test_fraction, split_seed) and the same vocabulary. `id` is the sha256 of the rest, as canonical JSON;
    checkpoint versions with equal ids compete for best-test-loss, others never do.

    The split's seed is recorded under the key "seed", as it was when the training seed also picked the
    split: a version written then with seed S was split exactly as one written now with split_seed S, so
    both get the same id and compete, and no old id changes."""
    vocab = "".join(corpus.vocab.chars)
    fields = {
        "corpus_sha256": corpus.sha256,
        "split": corpus.split,
        "test_fraction": float(corpus.test_fraction),
        "seed": int(corpus.split_seed),  # the split's seed (see above)
        "vocab_sha256": hashlib.sha256(vocab.encode("utf-8")).hexdigest(),
        "vocab_size": len(corpus.vocab),
    }
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()
    return {"id": digest, "corpus": corpus.source, **fields}
