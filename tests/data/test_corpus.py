"""Corpus: the transcript CSV and plain text, the deterministic split, and the train vocabulary."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest

from charexp.data.corpus import EOL, UNK, Vocab, load_corpus, parse_csv, read_episodes, split_corpus
from charexp.errors import CharexpError

# A hand-written file in the real format: NEXTEPISODE rows padded with empty fields, quoted cells
# holding commas (and a doubled quote), stage directions, one-character and empty cells, a quoted
# cell with a line break inside, trailing empty fields, and a file that starts and ends with a marker.
REAL_FORMAT = (
    "NEXTEPISODE" + "," * 40 + "\n"
    'SPOCK: Check the circuit.,"TYLER: All operating, sir.",X,,"KIRK: He said ""warp"", Spock.",,,\n'
    "(Kirk enters),MCCOY: He's dead, ,\n"
    '"UHURA: Hailing frequencies,\nopen.",.,,,,,,,,\n'
    "NEXTEPISODE" + "," * 40 + "\n"
    '"PIKE: Drop by my cabin, Doctor.",BOYCE [OC]: Boyce here.\n'
    "NEXTEPISODE" + "," * 40 + "\n"
)
EXPECTED = [
    ["SPOCK: Check the circuit.", "TYLER: All operating, sir.", 'KIRK: He said "warp", Spock.', "(Kirk enters)",
     "MCCOY: He's dead", "UHURA: Hailing frequencies, open."],
    ["PIKE: Drop by my cabin, Doctor.", "BOYCE [OC]: Boyce here."],
]


def test_csv_in_the_real_format(tmp_path):
    path = tmp_path / "mini.csv"
    path.write_text(REAL_FORMAT, encoding="utf-8")
    assert read_episodes(path) == EXPECTED


def test_cells_of_one_character_or_less_are_dropped():
    episodes = parse_csv('A,BC,,"",D,"E F"\n')
    assert episodes == [["BC", "E F"]]


def test_synthetic_corpus_from_the_fixture(tiny_csv):
    episodes = read_episodes(tiny_csv)
    assert len(episodes) == 6 and all(len(e) == 32 for e in episodes)  # 4 rows x 8 cells each
    cells = [c for e in episodes for c in e]
    assert "(Kirk enters, looking tired)" in cells  # a quoted cell with a comma stays whole
    assert all(len(c) > 1 and c != "NEXTEPISODE" for c in cells)


def test_plain_text_format(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("KIRK: One.\nSPOCK: Two, three.\n\nNEXTEPISODE\nMCCOY: Four.\r\nNEXTEPISODE\n", encoding="utf-8")
    assert read_episodes(path) == [["KIRK: One.", "SPOCK: Two, three."], ["MCCOY: Four."]]
    corpus = load_corpus(path, split="line", test_fraction=0.34, split_seed=0)
    assert sorted(corpus.train + corpus.test) == sorted(["KIRK: One.", "SPOCK: Two, three.", "MCCOY: Four."])


def test_the_real_file_gives_36339_utterances_in_102_episodes(real_csv):
    episodes = read_episodes(real_csv)
    assert len(episodes) == 102
    assert sum(map(len, episodes)) == 36339
    cells = [c for e in episodes for c in e]
    assert cells[0] == "SPOCK: Check the circuit." and cells[1] == "TYLER: All operating, sir."
    assert sum(c.startswith("KIRK:") or c.startswith("KIRK [") for c in cells) == 10145
    corpus = load_corpus(real_csv)
    assert corpus.split == "episode" and corpus.episodes == 102
    assert len(corpus.train) + len(corpus.test) == 36339
    assert len(corpus.vocab) == 81  # 79 characters + end-of-line + unknown


# --- the split ---------------------------------------------------------------------------------

def tagged_episodes(n: int = 20, per: int = 7) -> list[list[str]]:
    """Every utterance names its episode, so each can be traced back."""
    return [[f"KIRK: episode {e} line {i}." for i in range(per)] for e in range(n)]


def episode_of(utterance: str) -> int:
    return int(utterance.split()[2])


def assert_whole_episodes(episodes: list[list[str]], train: list[str], test: list[str]) -> set[int]:
    """train and test are each the concatenation (in file order) of whole episodes, and together all of them."""
    test_ids, position = set(), 0
    for i, episode in enumerate(episodes):
        if test[position : position + len(episode)] == episode:
            test_ids.add(i)
            position += len(episode)
    assert position == len(test), "test is not made of whole episodes"
    assert train == [u for i, e in enumerate(episodes) if i not in test_ids for u in e]
    return test_ids


def test_episode_split_is_deterministic_and_keeps_episodes_whole():
    episodes = tagged_episodes()
    train, test, split = split_corpus(episodes, "episode", 0.2, split_seed=5)
    assert split == "episode"
    assert split_corpus(episodes, "episode", 0.2, split_seed=5) == (train, test, split)
    assert not {episode_of(u) for u in train} & {episode_of(u) for u in test}
    assert len(assert_whole_episodes(episodes, train, test)) == 4  # 20 episodes x 0.2


def test_split_differs_across_seeds():
    episodes = tagged_episodes()
    test_sets = {tuple(split_corpus(episodes, "episode", 0.2, seed)[1]) for seed in range(6)}
    assert len(test_sets) > 1
    line_sets = {tuple(split_corpus(episodes, "line", 0.2, seed)[1]) for seed in range(6)}
    assert len(line_sets) > 1


def test_auto_split_is_by_episode_when_there_are_markers(tiny_csv, tmp_path):
    assert load_corpus(tiny_csv).split == "episode"
    path = tmp_path / "one.txt"
    path.write_text("".join(f"KIRK: line {i}.\n" for i in range(30)), encoding="utf-8")
    corpus = load_corpus(path)
    assert corpus.split == "line" and len(corpus.test) == 3


def test_line_split_is_the_anchor_recipe():
    """DESIGN.md: random.Random(seed).shuffle of the utterance list, then 90/10."""
    episodes = tagged_episodes(10, 10)
    train, test, _ = split_corpus(episodes, "line", 0.1, split_seed=0)
    shuffled = [u for e in episodes for u in e]
    random.Random(0).shuffle(shuffled)
    assert train == shuffled[:90] and test == shuffled[90:]


def test_real_file_episode_split(real_csv):
    episodes = read_episodes(real_csv)
    train, test, _ = split_corpus(episodes, "episode", 0.1, split_seed=0)
    test_ids = assert_whole_episodes(episodes, train, test)
    assert len(test_ids) == 10
    assert split_corpus(episodes, "episode", 0.1, split_seed=0)[1] == test
    assert split_corpus(episodes, "episode", 0.1, split_seed=1)[1] != test


# --- vocabulary ----------------------------------------------------------------------------------

def test_vocabulary_comes_from_train_and_unseen_test_chars_are_counted(tmp_path):
    """Episode e uses its own Greek letter; the letters of the test episodes are never seen in training."""
    episodes = ["\n".join(f"KIRK: {chr(0x3B1 + e)}{chr(0x3B1 + e)} line {i}" for i in range(3)) for e in range(10)]
    text = "\nNEXTEPISODE\n".join(episodes)
    path = tmp_path / "greek.txt"
    path.write_text(text, encoding="utf-8")
    corpus = load_corpus(path, split="episode", test_fraction=0.3, split_seed=0)
    vocab = corpus.vocab
    assert vocab.chars[vocab.eol] == EOL and vocab.chars[vocab.unk] == UNK
    assert set("".join(corpus.train)) <= set(vocab.chars)
    unseen = set("".join(corpus.test)) - set("".join(corpus.train))
    assert len(unseen) == 3 and not unseen & set(vocab.chars)
    assert corpus.unknown_test_chars == 3 * 3 * 2  # 3 episodes x 3 lines x 2 letters
    sample = corpus.test[0]
    ids = vocab.encode(sample)
    assert ids[6] == vocab.unk and ids[7] == vocab.unk and vocab.decode(ids) == sample.replace(sample[6], UNK)
    assert "unseen" in corpus.describe()


def test_vocabulary_has_end_of_line_and_is_deterministic():
    a = Vocab.from_texts(["KIRK: b", "SPOCK: a"])
    b = Vocab.from_texts(["SPOCK: a", "KIRK: b"])
    assert a == b and a.chars[0] == EOL and a.chars[1] == UNK and list(a.chars[2:]) == sorted(set("KIRK: bSPOCK: a"))
    assert a.encode("ab") == [a.index["a"], a.index["b"]] and a.decode(a.encode("KIRK") + [a.eol]) == "KIRK"


def test_a_given_vocabulary_is_kept(tiny_csv):
    vocab = Vocab.from_texts(["KIRK: only these"])
    corpus = load_corpus(tiny_csv, vocab=vocab)
    assert corpus.vocab is vocab and corpus.unknown_test_chars > 0


# --- bad files ----------------------------------------------------------------------------------

def bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "missing": tmp_path / "missing.csv",
        "empty": tmp_path / "empty.csv",
        "blank": tmp_path / "blank.txt",
        "binary": tmp_path / "binary.csv",
        "latin1": tmp_path / "latin1.txt",
        "no utterances": tmp_path / "markers.csv",
        "directory": tmp_path / "adir",
    }
    files["empty"].write_bytes(b"")
    files["blank"].write_bytes(b"  \n\n \t\n")
    files["binary"].write_bytes(b"KIRK: hi\x00\x01\x02\xff" * 20)
    files["latin1"].write_bytes("KIRK: caf\u00e9 au lait\n".encode("latin-1"))
    out = io.StringIO()
    writer = csv.writer(out)
    for _ in range(3):
        writer.writerow(["NEXTEPISODE"] + [""] * 10)
        writer.writerow(["a", "", "b"])
    files["no utterances"].write_text(out.getvalue(), encoding="utf-8")
    files["directory"].mkdir()
    return files


@pytest.mark.parametrize("kind", ["missing", "empty", "blank", "binary", "latin1", "no utterances", "directory"])
def test_bad_data_file_is_one_clear_error(tmp_path, kind):
    path = bad_files(tmp_path)[kind]
    with pytest.raises(CharexpError) as err:
        load_corpus(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message


def test_bad_data_file_stops_training_before_a_run_starts(tmp_path, tiny_config):
    from foundation import run_main

    with pytest.raises(CharexpError, match="not UTF-8"):
        run_main(["--config", str(tiny_config(data=str(bad_files(tmp_path)["latin1"])))])
    assert not (tmp_path / "runs").exists() and not list(tmp_path.glob("wandb/*run-*"))


def test_byte_order_mark_and_crlf_line_ends_are_handled(tmp_path):
    """A file saved by a Windows editor: UTF-8 with a BOM, CRLF line ends."""
    path = tmp_path / "windows.csv"
    path.write_bytes(b"\xef\xbb\xbf" + REAL_FORMAT.replace("\n", "\r\n").encode("utf-8"))
    episodes = read_episodes(path)
    assert len(episodes) == 2 and episodes[1] == EXPECTED[1]
    assert [u.replace("  ", " ") for u in episodes[0]] == EXPECTED[0]  # the CR LF inside a quoted cell becomes blanks
    assert not any("\ufeff" in u or "\r" in u for e in episodes for u in e)
    text = tmp_path / "windows.txt"
    text.write_bytes(b"\xef\xbb\xbfKIRK: One.\r\nNEXTEPISODE\r\nSPOCK: Two.\r\n")
    assert read_episodes(text) == [["KIRK: One."], ["SPOCK: Two."]]
