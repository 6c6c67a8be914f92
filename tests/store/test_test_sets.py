"""best-test-loss end to end: real training runs on different test sets in one directory, then sample.py.

Each run is TINY (a few seconds, in process); sample.py runs as a user runs it.
"""

from __future__ import annotations

import re
from pathlib import Path

from charexp.store.artifacts import ArtifactStore
from charexp.store.best import BEST, best_alias, fingerprint_id

from conftest import PHRASES, SPEAKERS, synthetic_csv_text
from foundation import python_script, run_main, write_config


def train(root: Path, data: Path, name: str, **overrides) -> None:
    code, stderr = run_main(["--config", str(write_config(root / f"{name}.yaml", data, **{"epochs": 2, **overrides}))])
    assert code == 0, stderr


def store(root: Path) -> ArtifactStore:
    return ArtifactStore(root / "artifacts", "charlstm")


def by_test_set(versions) -> dict[str, list]:
    groups: dict[str, list] = {}
    for v in versions:
        groups.setdefault(fingerprint_id(v.meta), []).append(v)
    return groups


def best_in(group) -> str:
    return min(group, key=lambda v: v.meta["test_loss"]).version


def test_a_csv_run_then_a_txt_run_each_keep_their_own_best_and_sample_says_which(tmp_path):
    """The issue's scenario: configs/quick-like runs on a one-episode CSV, then on a small .txt, in one directory."""
    csv = tmp_path / "one-episode.csv"
    csv.write_text(synthetic_csv_text(episodes=1, rows_per_episode=24), encoding="utf-8")
    txt = tmp_path / "lines.txt"
    txt.write_text("\n".join(f"{SPEAKERS[i % 5]}: {PHRASES[(i * 3) % 10]} {PHRASES[i % 7]}" for i in range(200)) + "\n",
                   encoding="utf-8")
    train(tmp_path, csv, "csv")
    after_csv = store(tmp_path).read_index()["aliases"]
    train(tmp_path, txt, "txt")

    versions = store(tmp_path).versions()
    assert len(versions) == 4
    groups = by_test_set(versions)
    assert len(groups) == 2  # two test sets, told apart
    csv_id = fingerprint_id(versions[0].meta)
    txt_id = fingerprint_id(versions[-1].meta)
    assert versions[0].meta["test_set"]["corpus"] == "one-episode.csv"
    assert versions[-1].meta["test_set"]["corpus"] == "lines.txt"
    aliases = store(tmp_path).read_index()["aliases"]
    # the txt run took nothing from the csv run
    assert aliases[best_alias(csv_id)] == best_in(groups[csv_id]) == after_csv[BEST]
    assert aliases[best_alias(txt_id)] == best_in(groups[txt_id])
    assert aliases[BEST] == best_in(groups[txt_id])  # bare: the best of the newest version's test set

    bare = python_script("sample.py", ["--artifact", BEST, "KS", "--seed", "1", "--max-len", "30"], cwd=tmp_path)
    assert bare.returncode == 0, bare.stderr
    assert f"{BEST} = charlstm:{aliases[BEST]} from the local store" in bare.stderr
    assert f"test set {txt_id[:8]} (lines.txt" in bare.stderr and "newest version's test set" in bare.stderr
    assert f"other test sets here: {best_alias(csv_id)}" in bare.stderr  # how to ask for the other one
    other = python_script("sample.py", ["--artifact", best_alias(csv_id), "KS", "--seed", "1", "--max-len", "30"],
                          cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    assert f"charlstm:{aliases[best_alias(csv_id)]}" in other.stderr and "(one-episode.csv" in other.stderr


def test_a_line_split_run_never_takes_the_alias_from_an_episode_split_run(tmp_path, tiny_csv):
    train(tmp_path, tiny_csv, "episode", split="episode")
    train(tmp_path, tiny_csv, "line", split="line")
    versions = store(tmp_path).versions()
    splits = {fingerprint_id(v.meta): v.meta["test_set"]["split"] for v in versions}
    assert sorted(splits.values()) == ["episode", "line"]
    episode_id = next(k for k, s in splits.items() if s == "episode")
    line_id = next(k for k, s in splits.items() if s == "line")
    groups = by_test_set(versions)
    aliases = store(tmp_path).read_index()["aliases"]
    assert aliases[best_alias(episode_id)] == best_in(groups[episode_id])
    assert all(BEST not in v.aliases and best_alias(episode_id) not in v.aliases
               for v in groups[line_id] if v.version != aliases[BEST])
    assert aliases[BEST] == best_in(groups[line_id])
    # init_from best-test-loss says which version and test set it picked
    config = write_config(tmp_path / "init.yaml", tiny_csv, epochs=1, split="line", init_from=BEST)
    code, stderr = run_main(["--config", str(config)])
    assert code == 0, stderr
    picked = rf"init_from {BEST} = charlstm:{aliases[BEST]} from the local store .*test set {line_id[:8]} \(tiny.csv"
    assert re.search(picked, stderr.replace("\n", " ")), stderr


def test_sample_without_the_local_alias_and_without_a_key_gives_todays_error(tmp_path, tiny_csv):
    empty = python_script("sample.py", ["--artifact", BEST, "K"], cwd=tmp_path)
    assert empty.returncode == 2 and empty.stdout == ""
    assert empty.stderr == (f"error: there is no local artifact collection 'charlstm' under artifacts "
                            f"({tmp_path.resolve() / 'artifacts'}, relative to the current directory); train a model "
                            "first, point at another store with --artifacts-dir DIR (artifacts_dir in a config), or "
                            "pass a checkpoint directory\n")
    train(tmp_path, tiny_csv, "run", epochs=1)
    missing = python_script("sample.py", ["--artifact", "epoch-9", "--project", "someone-elses", "K"], cwd=tmp_path)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.startswith("error: 'charlstm' has no version or alias 'epoch-9'; it has: ")
    assert len(missing.stderr.splitlines()) == 1 and "W&B" not in missing.stderr
