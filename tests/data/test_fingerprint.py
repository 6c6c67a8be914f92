"""The test-set fingerprint: equal exactly when two test losses were measured on the same test set."""

from __future__ import annotations

from charexp.data.corpus import Vocab, fingerprint_test_set, load_corpus

from conftest import synthetic_csv_text


def fingerprint(path, **kwargs):
    return fingerprint_test_set(load_corpus(path, **kwargs))


def test_same_file_and_settings_give_the_same_fingerprint_and_it_names_its_parts(tiny_csv, tmp_path):
    copy = tmp_path / "renamed.csv"
    copy.write_bytes(tiny_csv.read_bytes())
    a, b = fingerprint(tiny_csv), fingerprint(copy)
    assert a["id"] == b["id"] and len(a["id"]) == 64  # the bytes count, not the file name
    assert a["split"] == "episode" and a["test_fraction"] == 0.1 and a["seed"] == 0 and a["corpus"] == "tiny.csv"
    import hashlib

    assert a["corpus_sha256"] == hashlib.sha256(tiny_csv.read_bytes()).hexdigest()
    assert a["vocab_size"] == len(load_corpus(tiny_csv).vocab)


def test_any_change_of_data_split_fraction_seed_or_vocabulary_changes_it(tiny_csv, tmp_path):
    base = fingerprint(tiny_csv)["id"]
    other = tmp_path / "other.csv"
    other.write_text(synthetic_csv_text(seed=1), encoding="utf-8")
    corpus = load_corpus(tiny_csv)
    wider = Vocab((*corpus.vocab.chars, "\u00e9"))  # an init_from checkpoint's vocabulary
    changed = {
        "data": fingerprint(other)["id"],
        "split": fingerprint(tiny_csv, split="line")["id"],
        "test_fraction": fingerprint(tiny_csv, test_fraction=0.2)["id"],
        "split_seed": fingerprint(tiny_csv, split_seed=1)["id"],
        "vocabulary": fingerprint(tiny_csv, vocab=wider)["id"],
    }
    assert base not in changed.values() and len(set(changed.values())) == len(changed), changed
    assert fingerprint(tiny_csv, split="auto")["id"] == base  # auto resolves to episode here: the same test set
