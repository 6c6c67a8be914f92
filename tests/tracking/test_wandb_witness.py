"""An independent witness for charexp's `.wandb` reader: a run written with real wandb (offline) that holds
every record type the reader understands, read back by the reader and by `wandb leet inspect`, field by field.

The other W&B tests read runs through charexp's reader (the sweep runner relies on it too), so a bug in
the reader would hide itself there; here wandb's own tool and the values written are the reference.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from charexp.sweep.state import select_summary
from charexp.tracking.wandb_files import RunRecords, find_run_files, read_run

from foundation import leet_records, leet_summary

RUN_ID, SWEEP_ID, PROJECT = "witness1", "witswp01", "charexp-witness"
CONFIG = {"lr": 0.003, "layers": 2, "split": "line", "sample_chars": "KS", "init_from": None,
          "shape": {"hidden": 32, "embed": 16}}
LATER_CONFIG = {"extra_key": True}  # a config record after the run record
ROWS = [(10, 3.1, 2.9), (20, 2.5, 2.2), (30, 2.2, 2.4)]  # (step, train/loss, test/loss): the minimum is not the last
ALIASES = ["epoch-2", "best-test-loss"]
METADATA = {"epoch": 2, "test_loss": 2.2, "vocab": "abc"}
EXIT_CODE = 143
GROUP, TAGS = "witness-group", ["tiny", "witness"]


@pytest.fixture(scope="module")
def witness(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunRecords, list[dict[str, Any]], dict[str, Any]]:
    """Write the run (offline, isolated as conftest does), then read it three ways."""
    import wandb

    from conftest import isolate_env

    root = tmp_path_factory.mktemp("witness")
    with pytest.MonkeyPatch.context() as mp:
        isolate_env(mp, root)
        mp.setenv("WANDB_SWEEP_ID", SWEEP_ID)  # as a sweep agent starts a run: the run record carries the sweep id
        mp.setenv("WANDB_RUN_ID", RUN_ID)  # (inside a sweep wandb takes the id and the project from the
        mp.setenv("WANDB_PROJECT", PROJECT)  # environment, not from init's arguments)
        run = wandb.init(mode="offline", project=PROJECT, id=RUN_ID, config=CONFIG, group=GROUP, tags=TAGS,
                         settings=wandb.Settings(console="off", quiet=True, silent=True))
        run.config.update(LATER_CONFIG)
        run.define_metric("test/loss", summary="min")
        table = wandb.Table(columns=["step", "prime", "text"], log_mode="INCREMENTAL")
        for step, train, test in ROWS:
            table.add_data(step, "K", f"KIRK: line {step}")
            run.log({"train/loss": train, "test/loss": test, "epoch": step / 10, "samples": table}, step=step)
        run.summary["best_epoch"] = 2
        (root / "ckpt").mkdir()
        (root / "ckpt" / "model.safetensors").write_bytes(b"weights")
        (root / "ckpt" / "checkpoint.json").write_text("{}")
        artifact = wandb.Artifact("witness-model", type="model", metadata=METADATA)
        artifact.add_dir(str(root / "ckpt"))
        run.log_artifact(artifact, aliases=ALIASES)
        run.mark_preempting()
        run.finish(exit_code=EXIT_CODE)
        wandb.teardown()  # finish() can return before the .wandb file is complete
        (path,) = find_run_files(root / "wandb", RUN_ID)
    return read_run(path), leet_records(path), leet_summary(path)


def of_type(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r[kind] for r in records if r["type"] == kind]


def folded(updates: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply config or summary update records in order, as a reader must."""
    out: dict[str, Any] = {}
    for update in updates:
        out.update(update.get("update") or {})
    return out


def test_run_record(witness):
    reader, leet, summary = witness
    (run,) = of_type(leet, "run")
    assert (reader.run_id, reader.project, reader.sweep_id) == (run["run_id"], run["project"], run["sweep_id"]) \
        == (RUN_ID, PROJECT, SWEEP_ID)
    assert (summary["run_id"], summary["project"]) == (RUN_ID, PROJECT)
    assert reader.group == run["run_group"] == GROUP
    assert reader.tags == run["tags"] == summary["tags"] == TAGS


def test_config_records(witness):
    reader, leet, summary = witness
    (run,) = of_type(leet, "run")
    config = folded([run["config"], *of_type(leet, "config")])
    assert len(of_type(leet, "config")) >= 1  # the later update really is a config record
    public = {k: v for k, v in reader.config.items() if not k.startswith("_")}
    assert public == {k: v for k, v in config.items() if not k.startswith("_")} == summary["config"]
    assert public == {**CONFIG, **LATER_CONFIG}


def test_history_records_with_a_table(witness):
    reader, leet, _ = witness
    history = of_type(leet, "history")
    assert reader.history == [h["item"] for h in history]
    steps = [step for step, _, _ in ROWS]
    assert [row["_step"] for row in reader.history] == [h["step"]["num"] for h in history] == steps
    assert reader.metric("train/loss") == [(step, train) for step, train, _ in ROWS]
    assert reader.metric("test/loss") == [(step, test) for step, _, test in ROWS]
    # the table: W&B's nested keys, flattened as wandb flattens them
    for row, (step, _, _) in zip(reader.history, ROWS):
        assert row["samples._type"] == "incremental-table-file" and row["samples.nrows"] == step // 10
        assert not any(key.startswith("samples/") for key in row)


def test_summary_records_with_min(witness):
    reader, leet, summary = witness
    assert reader.summary == folded(of_type(leet, "summary"))
    assert reader.summary["test/loss"] == summary["summary"]["test/loss"] == {"min": min(test for _, _, test in ROWS)}
    assert reader.summary["train/loss"] == summary["summary"]["train/loss"] == ROWS[-1][1]
    assert reader.summary["best_epoch"] == summary["summary"]["best_epoch"] == 2
    final = summary["summary"]
    for key, value in reader.summary.items():
        if key.startswith("_wandb"):
            continue  # wandb's bookkeeping, which leet's summary leaves out
        head, _, tail = key.partition(".")
        assert (final[key] if key in final else final[head][tail]) == value, key
    # what the sweep runner keeps of it: the scalars and the min, none of the table's flattened fields
    kept = select_summary(reader.summary)
    assert kept["test/loss"] == {"min": 2.2} and kept["best_epoch"] == 2
    assert not any(key.startswith("samples") for key in kept)


def test_artifact_records_with_aliases(witness):
    reader, leet, _ = witness
    expected = [{"name": a["name"], "type": a["type"], "aliases": a["aliases"], "digest": a["digest"],
                 "metadata": json.loads(a["metadata"]) if a.get("metadata") else {},
                 "files": [entry["path"] for entry in a["manifest"]["contents"]]} for a in of_type(leet, "artifact")]
    assert reader.artifacts == expected
    (model,) = [a for a in reader.artifacts if a["type"] == "model"]
    assert model["name"] == "witness-model" and sorted(model["aliases"]) == sorted([*ALIASES, "latest"])
    assert model["metadata"] == METADATA and sorted(model["files"]) == ["checkpoint.json", "model.safetensors"]


def test_preempting_and_exit_code(witness):
    reader, leet, summary = witness
    assert reader.preempting is True and len(of_type(leet, "preempting")) == 1
    (exit_record,) = of_type(leet, "exit")
    assert reader.exit_code == exit_record["exit_code"] == summary["exit_code"] == EXIT_CODE

