"""Properties of the corpus reader: any bytes as a .csv or .txt give a usable Corpus or one sentence, and
utterances written in the transcript format are read back as written."""

from __future__ import annotations

import csv
import io

from hypothesis import example, given
from hypothesis import strategies as st

from charexp.data.corpus import EOL, EPISODE_MARKER, UNK, Corpus, load_corpus, parse_csv, parse_lines

from conftest import synthetic_csv_text
from properties import damaged, floats, parsed_or_refused, scratch

SYNTHETIC = synthetic_csv_text(episodes=3, rows_per_episode=2, cells_per_row=3).encode("utf-8")


def load(data: bytes, suffix: str, split: str = "auto", test_fraction: float = 0.1, split_seed: int = 0):
    with scratch() as folder:
        path = folder / f"corpus{suffix}"
        path.write_bytes(data)
        corpus = parsed_or_refused(lambda: load_corpus(path, split, test_fraction, split_seed))
    if corpus is not None:  # usable: both sides non-empty, every training character in the vocabulary
        assert isinstance(corpus, Corpus) and corpus.train and corpus.test
        assert corpus.vocab.chars[:2] == (EOL, UNK) and len(set(corpus.vocab.chars)) == len(corpus.vocab)
        assert not corpus.vocab.missing("".join(corpus.train))
    return corpus


options = st.tuples(st.sampled_from([".csv", ".txt", ".CSV", ""]), st.sampled_from(["auto", "episode", "line"]),
                    floats(0.01, 0.99), st.integers(0, 2**32))


@given(st.binary(max_size=400), options)
@example(b'"' + b"a" * 140_000, (".csv", "auto", 0.1, 0))  # one cell past csv's field limit: _csv.Error
@example(b"KIRK: hi,\"SPOCK: yes\nNEXTEPISODE\n" + b"x" * 140_000, (".csv", "auto", 0.1, 0))  # an unmatched quote
@example(b"KIRK: hi,SPOCK: yes\rNEXTEPISODE\rKIRK: bye,SPOCK: no\r", (".csv", "auto", 0.1, 0))  # old Mac line ends
def test_any_bytes_as_a_corpus_load_or_give_one_sentence(data, opts):
    suffix, split, fraction, seed = opts
    load(data, suffix, split, fraction, seed)


@given(damaged(SYNTHETIC), options)
def test_a_damaged_transcript_csv_loads_or_gives_one_sentence(data, opts):
    suffix, split, fraction, seed = opts
    load(data, suffix, split, fraction, seed)


@given(st.text(max_size=300), st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252", "utf-32"]),
       st.sampled_from([".csv", ".txt"]))
def test_text_in_any_encoding_loads_or_gives_one_sentence(text, encoding, suffix):
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        return
    load(data, suffix)


utterance = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=2, max_size=30)
episodes = st.lists(st.lists(utterance, min_size=1, max_size=5), min_size=1, max_size=4)


@given(episodes, st.integers(0, 3))
def test_utterances_written_as_transcript_csv_read_back_as_written(eps, empty_cells):
    """What csv.writer writes, NEXTEPISODE rows and trailing empty cells included, parse_csv reads back
    (with line breaks inside a cell as spaces, as the reader cleans them)."""
    eps = [[u for u in e if u != EPISODE_MARKER] for e in eps]
    out = io.StringIO()
    writer = csv.writer(out)  # "\r\n" ends lines, so a cell holding either is quoted
    for episode in eps:
        writer.writerow([EPISODE_MARKER] + [""] * empty_cells)
        writer.writerow(episode + [""] * empty_cells)
    expected = [[u.replace("\r", " ").replace("\n", " ") for u in e] for e in eps if e]
    assert parse_csv(out.getvalue()) == expected


line_utterance = utterance.map(lambda u: "".join(c for c in u if c.isprintable() and c not in "\x0b\x0c")).filter(
    lambda u: u.strip() and u.strip() != EPISODE_MARKER)


@given(st.lists(st.lists(line_utterance, min_size=1, max_size=5), min_size=1, max_size=4))
def test_utterances_written_one_per_line_read_back_as_written(eps):
    text = "".join(f"{EPISODE_MARKER}\n" + "".join(f"{u}\n" for u in e) for e in eps)
    assert parse_lines(text) == eps


@given(episodes, st.sampled_from(["\r", "\r\n"]))
@example([["KIRK: hi", "SPOCK: yes"], ["KIRK: bye"]], "\r")  # old Mac line ends: csv raised mid-file
def test_line_ends_do_not_change_what_a_csv_holds(eps, ending):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for episode in eps:
        writer.writerow([EPISODE_MARKER, ""])
        writer.writerow([u.replace("\r", " ").replace("\n", " ") for u in episode])
    text = out.getvalue()
    assert parse_csv(text.replace("\n", ending)) == parse_csv(text)
