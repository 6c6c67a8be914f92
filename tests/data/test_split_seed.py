"""split_seed picks the test set alone: runs that differ only in seed are replicates on one test set and compete
for best-test-loss; states, checkpoints and stores written when seed also picked the split keep their split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from charexp.config import load_config, replicate_group, stored_config
from charexp.data.corpus import load_corpus
from charexp.store.artifacts import ArtifactStore
from charexp.store.best import BEST, best_alias
from charexp.tracking.rundir import RunDir

from foundation import run_main

TINY_RUN = {"epochs": 1, "steps_per_epoch": 4, "sample_every": 0, "checkpoint_every": 2, "wandb_mode": "disabled"}


def train(tiny_config, name: str, **overrides) -> str:
    """One tiny in-process run; its run id."""
    before = set(p.name for p in Path("runs").iterdir()) if Path("runs").is_dir() else set()
    code, log = run_main(["--config", str(tiny_config(name, **{**TINY_RUN, **overrides}))])
    assert code == 0, log
    (run_id,) = set(p.name for p in Path("runs").iterdir()) - before
    return run_id


def versions_by_run(store: ArtifactStore) -> dict[str, list]:
    out: dict[str, list] = {}
    for version in store.versions():
        out.setdefault(version.meta["run_id"], []).append(version)
    return out


def test_the_split_is_a_function_of_split_seed_alone(tiny_csv):
    base = load_corpus(tiny_csv, split_seed=0)
    assert load_corpus(tiny_csv, split_seed=0).test == base.test
    assert load_corpus(tiny_csv, split_seed=1).test != base.test  # the control: split_seed does move it
    cfg = load_config(None, {"seed": 7})
    assert cfg.split_seed == 0 and cfg.seed == 7  # a new seed keeps the default test set


def test_runs_that_differ_only_in_seed_share_a_test_set_and_the_better_holds_best(tiny_config, tmp_path):
    first, second = train(tiny_config, "a.yaml", seed=0), train(tiny_config, "b.yaml", seed=1)
    store = ArtifactStore(tmp_path / "artifacts", "charlstm")
    mine = versions_by_run(store)
    ids = {v.meta["test_set"]["id"] for run in (first, second) for v in mine[run]}
    assert len(ids) == 1  # one test set, so one competition
    (test_set,) = ids
    best = min((v for run in (first, second) for v in mine[run]), key=lambda v: v.meta["test_loss"])
    index = store.read_index()
    assert index["aliases"][BEST] == index["aliases"][best_alias(test_set)] == best.version
    assert {v.meta["run_id"] for v in store.versions()} == {first, second}
    # both runs are one replicate group in W&B and in charexp report
    configs = [RunDir(tmp_path / "runs", run).read_config() for run in (first, second)]
    assert configs[0]["seed"] != configs[1]["seed"] and replicate_group(configs[0]) == replicate_group(configs[1])

    third = train(tiny_config, "c.yaml", seed=0, split_seed=1)  # the control: another split is another test set
    other = {v.meta["test_set"]["id"] for v in versions_by_run(store)[third]}
    assert other and test_set not in other
    assert store.read_index()["aliases"][best_alias(test_set)] == best.version  # untouched by the other test set
    assert replicate_group(RunDir(tmp_path / "runs", third).read_config()) != replicate_group(configs[0])


def test_a_config_saved_before_split_seed_keeps_the_split_its_seed_made():
    old = load_config(None, {"seed": 3}).to_dict()
    del old["split_seed"]  # what a resume state or checkpoint.json held before split_seed existed
    assert stored_config(old, source="old state", fix="-").split_seed == 3
    # a new one is read as is
    assert stored_config({**old, "split_seed": 0}, source="new state", fix="-").split_seed == 0


def test_an_old_resume_state_resumes_on_its_own_split(tiny_config, tmp_path):
    # as an old run with seed 3 was split; keep_state: its finished state is edited into an old unfinished one
    run_id = train(tiny_config, "old.yaml", seed=3, split_seed=3, keep_state=True)
    run = RunDir(tmp_path / "runs", run_id)
    state = torch.load(run.state_path, map_location="cpu", weights_only=True)
    del state["config"]["split_seed"]  # ...and saved
    torch.save(state, run.state_path)
    summary = json.loads(run.summary_path.read_text())
    run.summary_path.write_text(json.dumps({**summary, "state": "preempted"}))

    code, log = run_main(["--resume", run_id])
    assert code == 0, log
    assert run.read_config()["split_seed"] == 3 and run.read_config()["seed"] == 3


@pytest.mark.parametrize("explicit", [False, True])
def test_init_from_an_old_checkpoint_keeps_its_split_unless_the_config_sets_one(tiny_config, tmp_path, explicit):
    first = train(tiny_config, "phase1.yaml", seed=3, split_seed=3)
    store = ArtifactStore(tmp_path / "artifacts", "charlstm")
    (version,) = versions_by_run(store)[first]
    old = tmp_path / "old-checkpoint"
    shutil.copytree(version.path, old)
    meta = json.loads((old / "checkpoint.json").read_text())
    del meta["config"]["split_seed"]  # a checkpoint written when seed 3 also picked the split
    (old / "checkpoint.json").write_text(json.dumps(meta))

    extra = {"split_seed": 0} if explicit else {}
    code, log = run_main(["--config", str(tiny_config("phase2.yaml", **TINY_RUN, init_from=str(old), seed=0, **extra))])
    assert code == 0, log
    (second,) = set(versions_by_run(store)) - {first}
    config = yaml.safe_load((tmp_path / "runs" / second / "config.yaml").read_text())
    phase2_set = {v.meta["test_set"]["id"] for v in versions_by_run(store)[second]}
    if explicit:  # the user's split wins, and the run says its test set is not the checkpoint's
        assert config["split_seed"] == 0 and phase2_set != {version.meta["test_set"]["id"]}
        assert "trained beside another test set" in log
    else:
        assert config["split_seed"] == 3 and phase2_set == {version.meta["test_set"]["id"]}
        assert "another test set" not in log


def test_an_old_stores_test_set_ids_are_unchanged(tiny_csv):
    """The id as the code before split_seed computed it (the split's seed under "seed"): old versions keep their
    best-test-loss-<id> and compete with new runs on the same split."""
    import hashlib

    corpus = load_corpus(tiny_csv, split_seed=4)
    vocab = "".join(corpus.vocab.chars)
    old_fields = {"corpus_sha256": hashlib.sha256(tiny_csv.read_bytes()).hexdigest(), "split": "episode",
                  "test_fraction": 0.1, "seed": 4, "vocab_sha256": hashlib.sha256(vocab.encode("utf-8")).hexdigest(),
                  "vocab_size": len(corpus.vocab)}
    old_id = hashlib.sha256(json.dumps(old_fields, sort_keys=True).encode("utf-8")).hexdigest()
    from charexp.data.corpus import fingerprint_test_set

    assert fingerprint_test_set(corpus)["id"] == old_id
