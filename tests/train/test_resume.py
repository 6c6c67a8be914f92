"""Exact resume after SIGKILL, same W&B run id and step numbering; init_from (two-phase training)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

from charexp.errors import CharexpError
from charexp.store.artifacts import ArtifactStore
from charexp.store.checkpoint import load_state, save_state
from charexp.tracking.rundir import RunDir
from charexp.tracking.wandb_files import RunFile, find_run_files, read_run

from conftest import REPO, synthetic_csv_text, write_tiny_csv
from foundation import (  # noqa: F401
    SUBPROCESS_ENV,
    assert_same_tensors,
    isolate_env,
    leet_records,
    read_tensors,
    reference,
    run_main,
    wait_for,
    without_timing,
    write_config,
)

RUN_ID = "resume01"
# 4 epochs x 20 batches. log_every 1 and checkpoint_every 7: a saved state is never at an epoch end, and
# every saved step is also a logged step, so the resumed run's logged rows equal the straight run's.
# keep_state: the final resume states of the straight and the resumed run are compared.
RESUME_CONFIG = {"layers": 2, "dropout": 0.1, "epochs": 4, "log_every": 1, "checkpoint_every": 7, "sample_every": 0,
                 "eval_every": 0, "device": "cpu", "keep_state": True}
TOTAL = 80


def state_step(path: Path) -> int | None:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["position"]["step"])
    except Exception:  # not there yet, or being replaced
        return None


# The second segment runs slowly (a 50 ms pause before every step, from the fault suite's injector) and
# flushes its .wandb file every 0.1 s, so that it is killed only once W&B has recorded some of its steps.
SLOW_AND_FLUSHED = {"CHAREXP_FAULTS": json.dumps([{"target": "charexp.train.trainer:Trainer.train_step", "call": 1,
                                                   "from_call": True, "when": "before", "action": "sleep",
                                                   "seconds": 0.05}]),
                    "WANDB__TRANSACTION_LOG_FLUSH_INTERVAL": "0.1"}
FAULT_PROGRAM = REPO / "tests" / "faults" / "train_with_faults.py"


def start_train(args: list[str], cwd: Path, log: Path, env: dict | None = None,
                program: Path = REPO / "train.py") -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if k != "WANDB_RUN_ID"}
    return subprocess.Popen([sys.executable, str(program), *args], cwd=cwd,
                            env={**environ, **SUBPROCESS_ENV, **(env or {})}, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT)


def wandb_steps(root: Path, segment: int) -> list[int]:
    """The steps the run's `segment`-th .wandb file holds so far."""
    files = find_run_files(root / "wandb", RUN_ID)
    return [row["_step"] for row in RunFile(files[segment]).poll().history] if len(files) > segment else []


def kill_after_a_state(proc: subprocess.Popen, state: Path, after_step: int, log: Path, also=lambda: True) -> int:
    """SIGKILL the run as soon as it has saved a state beyond `after_step` (and `also()` holds); return that
    state's step."""
    wait_for(lambda: proc.poll() is not None
             or ((s := state_step(state)) is not None and s > after_step and also() and s), timeout=240)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(60)
    assert proc.returncode == -signal.SIGKILL, \
        f"the run ended before it could be killed (rc {proc.returncode}):\n{log.read_text()[-3000:]}"
    saved = state_step(state)
    assert saved is not None and after_step < saved < TOTAL
    return saved


@dataclass
class Resumed:
    root: Path
    straight: RunDir
    resumed: RunDir
    first_kill: int  # step of the state the first resume started from
    second_kill: int


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> Resumed:
    """The same run twice: straight through, and SIGKILLed twice and resumed (--resume last, then --resume ID)."""
    root = tmp_path_factory.mktemp("resume")
    with pytest.MonkeyPatch.context() as mp:
        isolate_env(mp, root)
        data = write_tiny_csv(root)
        config = write_config(root / "resume.yaml", data, **RESUME_CONFIG)

        code, log = run_main(["--config", str(config), "--runs_dir=straight/runs",
                              "--artifacts_dir=straight/artifacts"])
        assert code == 0, log
        (straight_id,) = [p.name for p in (root / "straight" / "runs").iterdir()]

        run = RunDir(root / "runs", RUN_ID)
        proc = start_train(["--config", str(config)], root, root / "first.log", env={"WANDB_RUN_ID": RUN_ID})
        first = kill_after_a_state(proc, run.state_path, 0, root / "first.log")
        assert run.read_summary().get("state") != "finished"

        # what a kill during a write leaves behind: temp files next to state.pt, newer than it, never to be used
        good = load_state(run.state_path)
        good["model"] = {k: v + 1.0 for k, v in good["model"].items()}
        good["position"]["step"] += 3
        save_state(run.path / "decoy.pt", good)
        (run.path / "decoy.pt").rename(run.path / ".state.pt.zzzzzzzz.tmp")
        (run.path / ".state.pt.yyyyyyyy.tmp").write_bytes(run.state_path.read_bytes()[:1000])

        proc = start_train(["--resume", "last"], root, root / "second.log", env=SLOW_AND_FLUSHED, program=FAULT_PROGRAM)
        second = kill_after_a_state(proc, run.state_path, first, root / "second.log",
                                    also=lambda: wandb_steps(root, 1)[-1:] > [first])

        code, log = run_main(["--resume", RUN_ID])
        assert code == 0, log
    return Resumed(root, RunDir(root / "straight" / "runs", straight_id), run, first, second)


def test_resumed_run_ends_with_identical_weights(resumed):
    straight = ArtifactStore(resumed.root / "straight" / "artifacts", "charlstm").resolve("latest")
    again = ArtifactStore(resumed.root / "artifacts", "charlstm").resolve("latest")
    assert straight.meta["step"] == again.meta["step"] == TOTAL
    assert again.meta["run_id"] == RUN_ID
    assert_same_tensors(read_tensors(straight.path / "model.safetensors"),
                        read_tensors(again.path / "model.safetensors"))
    a, b = load_state(resumed.straight.state_path), load_state(resumed.resumed.state_path)
    assert_same_tensors(a["model"], b["model"])
    assert a["position"]["step"] == b["position"]["step"] == TOTAL
    assert b["run_id"] == RUN_ID


def test_resumed_history_continues_without_duplicates(resumed):
    history = list(resumed.resumed.history())
    train_steps = [row["step"] for row in history if "train/loss" in row]
    assert train_steps == list(range(1, TOTAL + 1))  # every step once, in order
    assert [row["step"] for row in history if "test/loss" in row] == [20, 40, 60, 80]
    assert without_timing(history) == without_timing(list(resumed.straight.history()))  # same losses, same rows
    assert resumed.resumed.samples() == resumed.straight.samples()
    summary = resumed.resumed.read_summary()
    assert summary["state"] == "finished" and summary["step"] == TOTAL and summary["run_id"] == RUN_ID


def test_resumed_run_keeps_its_wandb_id_and_step_numbering(resumed):
    files = find_run_files(resumed.root / "wandb", RUN_ID)
    assert len(files) == 3  # the first run and two resumed segments, one .wandb file each, all named for the run id
    segments = [read_run(f) for f in files]
    # A SIGKILLed segment's file can hold no records at all (wandb-core had not flushed them when the process
    # died; seen here as 7-byte files). Whatever a killed segment did record must belong to this run. The
    # second segment was killed only after W&B had flushed some of its steps (SLOW_AND_FLUSHED).
    assert {s.run_id for s in segments[:2]} <= {RUN_ID, None}
    assert segments[1].run_id == segments[2].run_id == RUN_ID
    second_steps = [row["_step"] for row in segments[1].history]
    assert second_steps and second_steps[0] == resumed.first_kill + 1 and second_steps == sorted(set(second_steps))
    last_steps = [row["_step"] for row in segments[2].history]
    assert last_steps[0] == resumed.second_kill + 1 and last_steps[-1] == TOTAL
    assert last_steps == sorted(set(last_steps))
    assert segments[2].exit_code == 0 and segments[2].summary["state"] == "finished"
    final_losses = dict(segments[2].metric("test/loss"))
    expected = {row["step"]: row["test/loss"] for row in resumed.straight.history()
                if "test/loss" in row and row["step"] > resumed.second_kill}
    assert final_losses == expected


def test_multi_block_run_file_reads_the_same_as_wandb_leet(resumed):
    """The finished segment spans more than one 32 KiB block of the .wandb log: charexp's reader and wandb's agree."""
    final = find_run_files(resumed.root / "wandb", RUN_ID)[-1]
    assert final.stat().st_size > 32 * 1024
    records = read_run(final)
    leet = leet_records(final)
    history = [r["history"] for r in leet if r["type"] == "history"]
    assert [h["step"]["num"] for h in history] == [row["_step"] for row in records.history]
    logged = [(h["step"]["num"], h["item"]["train/loss"]) for h in history if "train/loss" in h["item"]]
    assert logged == records.metric("train/loss")
    assert sum(r["type"] == "artifact" for r in leet) == len(records.artifacts)
    assert next(r["exit"]["exit_code"] for r in leet if r["type"] == "exit") == records.exit_code == 0


def test_partial_temp_state_files_are_never_used_and_the_resume_removes_them(resumed):
    # a decoy (a valid state, other weights) and a truncated copy were planted before the resume: the
    # identical weights above show neither was read, and the resume cleared them away
    assert sorted(p.name for p in resumed.resumed.path.glob(".*.tmp")) == []


def test_a_stale_state_from_another_run_is_refused(resumed, tmp_path):
    other = tmp_path / "runs" / "otherrun"
    other.mkdir(parents=True)
    shutil.copy(resumed.resumed.state_path, other / "state.pt")
    with pytest.raises(CharexpError, match="stale"):
        run_main(["--resume", "otherrun"])
    assert not list(tmp_path.glob("wandb/*run-*"))


def test_a_finished_run_or_an_unknown_id_is_refused(resumed, tmp_path):
    with pytest.raises(CharexpError, match=rf"already finished; .* --init_from=run-{RUN_ID} \(its last version, "
                                           r"charlstm:v\d+\)$"):
        run_main(["--resume", RUN_ID, f"--runs_dir={resumed.root / 'runs'}"])
    with pytest.raises(CharexpError, match="no saved state.*; runs that can be resumed: none$"):  # finished: not listed
        run_main(["--resume", "nosuchrun", f"--runs_dir={resumed.root / 'runs'}"])
    with pytest.raises(CharexpError, match="no unfinished run"):
        run_main(["--resume", "last", f"--runs_dir={resumed.root / 'runs'}"])
    with pytest.raises(CharexpError, match="no unfinished run"):
        run_main(["--resume", "last"])


def test_resume_of_an_unknown_id_lists_only_the_unfinished_runs(resumed, tmp_path):
    shutil.copytree(resumed.resumed.path, tmp_path / "runs" / RUN_ID)  # finished, and it kept its state.pt
    paused = tmp_path / "runs" / "pausedrun"
    paused.mkdir()
    shutil.copy(resumed.resumed.state_path, paused / "state.pt")
    shutil.copy(resumed.resumed.config_path, paused / "config.yaml")
    assert (tmp_path / "runs" / RUN_ID / "state.pt").exists()
    with pytest.raises(CharexpError, match=r"runs that can be resumed: pausedrun$"):
        run_main(["--resume", "nosuchrun"])


def test_resume_with_a_different_config_is_refused(resumed, tmp_path):
    unfinished = tmp_path / "runs" / RUN_ID
    unfinished.mkdir(parents=True)
    shutil.copy(resumed.resumed.state_path, unfinished / "state.pt")
    config = yaml.safe_load((resumed.resumed.path / "config.yaml").read_text())
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**config, "runs_dir": "runs"}))
    with pytest.raises(CharexpError, match=r"lr=0\.01"):
        run_main(["--resume", RUN_ID, "--config", str(tmp_path / "c.yaml"), "--lr=0.5"])


def test_kill_during_an_epoch_end_does_not_duplicate_rows(tmp_path, tiny_config, monkeypatch):
    """A run dies while publishing epoch 1's version (after its epoch-end test/loss row was logged), with
    checkpoint_every dividing the epoch. Resuming must not log that row twice nor publish the epoch twice."""
    from charexp.train.trainer import Trainer

    config = tiny_config(epochs=2, steps_per_epoch=20, checkpoint_every=10, eval_every=0, sample_every=0, device="cpu")
    real_publish = Trainer.publish

    def dying_publish(self, metrics, epoch, aliases):
        if epoch == 1:
            raise RuntimeError("killed while publishing epoch 1")
        return real_publish(self, metrics, epoch, aliases)

    monkeypatch.setattr(Trainer, "publish", dying_publish)
    with pytest.raises(RuntimeError, match="killed while publishing"):
        run_main(["--config", str(config)])
    monkeypatch.setattr(Trainer, "publish", real_publish)
    (run,) = [RunDir(tmp_path / "runs", p.name) for p in (tmp_path / "runs").iterdir()]
    assert load_state(run.state_path)["position"]["step"] == 10  # not one saved at step 20, before the epoch-end work
    assert run_main(["--resume", run.run_id])[0] == 0
    assert [row["step"] for row in run.history() if "test/loss" in row] == [20, 40]
    # finished now: its resume state is gone (keep_state is false), and --resume still says what to do instead
    assert not run.state_path.exists() and run.read_summary()["state"] == "finished"
    with pytest.raises(CharexpError, match=rf"already finished; .* --init_from=run-{run.run_id} "):
        run_main(["--resume", run.run_id])
    versions = ArtifactStore(tmp_path / "artifacts", "charlstm").versions()
    assert [(v.meta["run_id"], v.meta["step"]) for v in versions] == [(run.run_id, 20), (run.run_id, 40)]


# --- init_from: two-phase training ------------------------------------------------------------------

def test_init_from_starts_a_new_run_from_an_artifact_with_its_own_lr(reference, tmp_path, tiny_csv):
    shutil.copytree(reference.artifacts, tmp_path / "artifacts")
    store = ArtifactStore(tmp_path / "artifacts", "charlstm")
    epoch1 = store.resolve("epoch-1")
    config = write_config(tmp_path / "phase2.yaml", tiny_csv, init_from="charlstm:epoch-1", lr=1e-7, lr_decay=0.1,
                          epochs=1, steps_per_epoch=3, log_every=1, sample_every=0, checkpoint_every=0,
                          device=reference.device, keep_state=True)
    assert run_main(["--config", str(config)])[0] == 0
    (run,) = [RunDir(tmp_path / "runs", p.name) for p in (tmp_path / "runs").iterdir()]
    assert run.run_id != reference.run_id
    assert run.read_config()["init_from"] == "charlstm:epoch-1"
    assert {row["lr"] for row in run.history() if "lr" in row} == {1e-7}
    state = load_state(run.state_path)
    assert state["vocab"] == json.loads((epoch1.path / "checkpoint.json").read_text())["vocab"]
    assert {int(s["step"]) for s in state["optimizer"]["state"].values()} == {3}  # a fresh optimizer: 3 steps, not 23
    (first_eval,) = [row["test/loss"] for row in run.history() if "test/loss" in row]
    # with lr 1e-7 three steps barely move the weights: the loss is the epoch-1 checkpoint's, not a fresh model's
    assert first_eval == pytest.approx(epoch1.meta["test_loss"], abs=1e-3)
    assert abs(first_eval - store.resolve("epoch-2").meta["test_loss"]) > 0.05
    newest = store.resolve("latest")
    assert newest.meta["run_id"] == run.run_id and newest.version == "v2"


def test_init_from_keeps_the_artifact_vocabulary_on_new_data(reference, tmp_path):
    """Phase 2 on a corpus with characters the phase-1 model never saw: they become <unk>, the vocabulary stays."""
    shutil.copytree(reference.artifacts, tmp_path / "artifacts")
    data = tmp_path / "new.csv"
    data.write_text(synthetic_csv_text(seed=3).replace("Fascinating", "Fasc\u00eenating \u00bfQu\u00e9?"),
                    encoding="utf-8")
    config = write_config(tmp_path / "p2.yaml", data, init_from="v0", lr=1e-4, epochs=1, steps_per_epoch=2,
                          sample_every=0, checkpoint_every=0, device=reference.device)
    assert run_main(["--config", str(config)])[0] == 0
    vocab = json.loads((tmp_path / "artifacts" / "charlstm" / "v0" / "checkpoint.json").read_text())["vocab"]
    newest = ArtifactStore(tmp_path / "artifacts", "charlstm").resolve("latest")
    assert json.loads((newest.path / "checkpoint.json").read_text())["vocab"] == vocab
    assert "\u00e9" not in vocab


def test_init_from_with_another_architecture_is_refused(reference, tmp_path, tiny_config):
    shutil.copytree(reference.artifacts, tmp_path / "artifacts")
    with pytest.raises(CharexpError, match="hidden"):
        run_main(["--config", str(tiny_config(init_from="best-test-loss", hidden=64))])
    with pytest.raises(CharexpError, match="epoch-1"):
        run_main(["--config", str(tiny_config(init_from="epoch-9"))])
    assert not (tmp_path / "runs").exists()
