"""`python sample.py` as a user runs it (subprocesses), on the reference run's artifacts."""

from __future__ import annotations

import json
import shutil

import pytest

from foundation import python_script, reference  # noqa: F401

FLAGS = ["--artifact", "--checkpoint", "--prime", "--num", "--temperature", "--top-k", "--max-len", "--device",
         "--seed"]


def stdout_lines(out) -> list[str]:
    assert out.returncode == 0, out.stderr
    assert out.stdout.endswith("\n")
    return out.stdout[:-1].split("\n")


def test_one_line_per_starting_character_reproducible_with_seed(reference):
    args = ["--artifact", "best-test-loss", "KSKS", "--seed", "3", "--max-len", "60"]
    first = python_script("sample.py", args, cwd=reference.root)
    lines = stdout_lines(first)
    assert len(lines) == 4
    for char, line in zip("KSKS", lines):
        assert line.startswith(char) and len(line) <= 60
    again = python_script("sample.py", args, cwd=reference.root)
    assert again.stdout == first.stdout
    assert "v1" in first.stderr  # says which checkpoint it used (best-test-loss is the epoch-2 version)


def test_prime_with_num_from_a_checkpoint_directory(reference):
    out = python_script("sample.py", ["--checkpoint", str(reference.artifacts / "charlstm" / "v0"), "--prime", "KIRK: ",
                                      "--num", "3", "--max-len", "12", "--temperature", "0.8", "--top-k", "5",
                                      "--seed", "1"], cwd=reference.root)
    lines = stdout_lines(out)
    assert len(lines) == 3 and all(line.startswith("KIRK: ") and len(line) <= 12 for line in lines)
    assert "v0" in out.stderr


def test_out_of_vocabulary_prime_is_a_clear_error_naming_it(reference):
    out = python_script("sample.py", ["--artifact", "latest", "--prime", "KIRK: \u20ac5"], cwd=reference.root)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("error:") and "'\u20ac'" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_unknown_alias_and_corrupt_checkpoint_are_clear_errors(reference, tmp_path):
    unknown = python_script("sample.py", ["--artifact", "epoch-7", "K"], cwd=reference.root)
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert "epoch-1" in unknown.stderr and "best-test-loss" in unknown.stderr
    broken = tmp_path / "broken"
    shutil.copytree(reference.artifacts / "charlstm" / "v0", broken)
    (broken / "checkpoint.json").write_text(json.dumps({"format": "nope"}))
    out = python_script("sample.py", ["--checkpoint", str(broken), "K"], cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.startswith("error:") and "Traceback" not in out.stderr


def test_help_explains_every_flag():
    out = python_script("sample.py", ["--help"], cwd=".")
    assert out.returncode == 0
    for flag in FLAGS:
        assert flag in out.stdout, flag
    assert "KSKS" in out.stdout


def store_where_best_is_not_latest(reference, tmp_path) -> str:
    """A copy of the reference store with best-test-loss moved to v0 (latest stays v1), and v0's config
    asking for other default starting characters than the run's (KS): defaults can only come from v0."""
    shutil.copytree(reference.artifacts, tmp_path / "artifacts")
    store = tmp_path / "artifacts" / "charlstm"
    index = json.loads((store / "index.json").read_text())
    index["aliases"]["best-test-loss"] = "v0"
    assert index["aliases"]["latest"] == "v1"
    (store / "index.json").write_text(json.dumps(index))
    meta = json.loads((store / "v0" / "checkpoint.json").read_text())
    assert meta["config"]["sample_chars"] == "KS"
    meta["config"]["sample_chars"] = "SKS"
    (store / "v0" / "checkpoint.json").write_text(json.dumps(meta))
    return "SKS"


def test_defaults_best_test_loss_and_the_checkpoints_starting_characters(reference, tmp_path):
    chars = store_where_best_is_not_latest(reference, tmp_path)
    out = python_script("sample.py", ["--seed", "3", "--max-len", "30"], cwd=tmp_path)  # no --artifact, no CHARS
    lines = stdout_lines(out)
    assert [line[0] for line in lines] == list(chars)
    assert "charlstm/v0" in out.stderr and "charlstm/v1" not in out.stderr
    explicit = python_script("sample.py",
                             ["--checkpoint", "artifacts/charlstm/v0", chars, "--seed", "3", "--max-len", "30"],
                             cwd=tmp_path)
    assert stdout_lines(explicit) == lines  # the very same checkpoint, primes and draws


def test_checkpoint_overrides_artifact(reference, tmp_path):
    store_where_best_is_not_latest(reference, tmp_path)
    args = ["KK", "--seed", "5", "--max-len", "40"]
    alone = python_script("sample.py", ["--checkpoint", "artifacts/charlstm/v1", *args], cwd=tmp_path)
    both = python_script("sample.py", ["--artifact", "best-test-loss", "--checkpoint", "artifacts/charlstm/v1", *args],
                         cwd=tmp_path)
    assert stdout_lines(both) == stdout_lines(alone)
    assert "charlstm/v1" in both.stderr and "charlstm/v0" not in both.stderr
    unknown = python_script("sample.py", ["--artifact", "epoch-7", "--checkpoint", "artifacts/charlstm/v1", *args],
                            cwd=tmp_path)
    assert stdout_lines(unknown) == stdout_lines(alone)  # --artifact is not even resolved


def test_a_runs_id_alias_and_directory_all_sample_its_newest_version(reference, monkeypatch):
    from charexp.errors import CharexpError
    from charexp.store.references import resolve_artifact

    args = ["--seed", "5", "--max-len", "30", "KS"]
    rid = reference.run_id
    newest = python_script("sample.py", ["--artifact", "v1", *args], cwd=reference.root)
    by_id = python_script("sample.py", ["--artifact", rid, *args], cwd=reference.root)
    assert newest.returncode == 0 and by_id.returncode == 0, (newest.stderr, by_id.stderr)
    assert stdout_lines(by_id) == stdout_lines(newest) and "charlstm:v1" in by_id.stderr
    # the other spellings, resolved in-process as sample.py does (each subprocess costs a torch import)
    monkeypatch.chdir(reference.root)
    for ref in (f"run-{rid}", f"runs/{rid}", f"{rid}:latest", f"{rid}:epoch-2"):
        resolved = resolve_artifact(ref)
        assert resolved.path.name == "v1" and "charlstm:v1" in resolved.note, (ref, resolved)
    first = resolve_artifact(f"run-{rid}:epoch-1")
    assert first.path.name == "v0" and first.note.startswith(f"run-{rid}:epoch-1 = charlstm:v0 of run {rid} (epoch 1)")
    with pytest.raises(CharexpError, match=rf"versions by run: {rid} \(v0, v1\)"):
        resolve_artifact("nosuch")


def test_a_word_of_lowercase_starting_characters_gets_a_prime_hint_and_is_still_sampled(reference):
    out = python_script("sample.py", ["--artifact", "latest", "--seed", "1", "--max-len", "20", "kirk"],
                        cwd=reference.root)
    assert out.returncode == 0, out.stderr
    assert [line[0] for line in stdout_lines(out)] == list("kirk")
    assert ("# note: 'kirk' starts 4 lines, one per character (k, i, r, k); to start from a whole string use "
            "--prime 'KIRK: ...'\n") in out.stderr
    plain = python_script("sample.py", ["--artifact", "latest", "--seed", "1", "--max-len", "20", "KSKS"],
                          cwd=reference.root)
    assert "--prime" not in plain.stderr


def test_help_documents_the_reference_grammar():
    out = python_script("sample.py", ["--help"], cwd=".")
    text = " ".join(out.stdout.split())
    for form in ("run-RUN_ID", "RUN_ID:ALIAS", "runs/RUN_ID", "NAME:ALIAS", "ENTITY/PROJECT/NAME:ALIAS"):
        assert form in text, form
