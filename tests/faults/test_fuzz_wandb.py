"""Damaged copies of real `.wandb` files (issue 21): the reader never raises and never reports a metric value that
the undamaged file does not hold at that step.

Two real offline runs: the session's reference training run (one block) and a run logged directly with wandb
that spans blocks, with a record in first, middle and last chunks. Each copy is damaged one way (cut at and
around chunk boundaries, bit flips, overwritten byte runs, a zeroed block, a cut plus flips) and read with
`read_run`; every fourth copy is also followed with `RunFile.poll` in two steps, which must read the same.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from charexp.tracking.leveldb_log import BLOCK, FILE_HEADER, FIRST, HEADER, LAST, MIDDLE, chunk_crc
from charexp.tracking.wandb_files import RunFile, RunRecords, read_run

from conftest import isolate_env
from foundation import reference_run, walk_log

SEED = 21
COPIES = 1200


@dataclass
class RealRun:
    name: str
    data: bytes
    records: RunRecords
    chunks: list[tuple[int, int, int]]  # (offset, length, type) of every chunk
    rows: set[str]  # every history row, as canonical JSON
    values: dict[str, set[tuple[int, float]]]  # every (step, value) of every metric


def chunks_of(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, length, type) of every chunk of an undamaged log, each checked against its checksum."""
    for pos, crc, length, kind in (chunks := walk_log(data)):
        assert crc == chunk_crc(kind, data[pos + HEADER: pos + HEADER + length]), f"chunk at {pos} fails its checksum"
    return [(pos, length, kind) for pos, _, length, kind in chunks]


def canonical(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def metrics(records: RunRecords) -> dict[str, set[tuple[int, float]]]:
    keys = {key for row in records.history for key in row}
    return {key: set(records.metric(key)) for key in keys}


def logged_run(root: Path) -> Path:
    """A real offline run written by wandb itself, over three blocks: a config record too big for one block
    (first, middle and last chunks) and 60 steps of two metrics with many digits."""
    import wandb

    rng = random.Random(SEED)
    with pytest.MonkeyPatch.context() as mp:
        isolate_env(mp, root)
        run = wandb.init(project="charexp-test", mode="offline", config={"lr": 0.01, "notes": "x" * 70_000})
        for step in range(60):
            run.log({"train/loss": 3 / (step + 1) + rng.random(), "test/loss": 40 + rng.random()}, step=step)
        run.finish()
        wandb.teardown()  # finish() can return before the file is complete
    (path,) = root.glob("wandb/offline-run-*/run-*.wandb")
    return path


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> list[RealRun]:
    paths = [("reference", reference_run(tmp_path_factory).wandb_file),
             ("logged", logged_run(tmp_path_factory.mktemp("logged-run")))]
    runs = []
    for name, path in paths:
        data, records = path.read_bytes(), read_run(path)
        assert (records.damaged, records.incomplete) == (0, 0), name  # an undamaged file reads without damage
        assert records.metric("test/loss"), name
        runs.append(RealRun(name, data, records, chunks_of(data), {canonical(r) for r in records.history},
                            metrics(records)))
    logged = runs[1]
    assert len(logged.data) > 2 * BLOCK and {FIRST, MIDDLE, LAST} <= {kind for _, _, kind in logged.chunks}
    return runs


def damage(rng: random.Random, run: RealRun, how: str) -> tuple[bytes, str]:
    """A damaged copy of `run`'s file and what was done to it."""
    data = bytearray(run.data)
    size = len(data)
    if how == "cut":
        if rng.random() < 0.8:  # at and around a chunk's start, its payload's start or its end
            pos, length, _ = rng.choice(run.chunks)
            at = rng.choice([pos, pos + HEADER, pos + HEADER + length]) + rng.randint(-8, 8)
        else:
            at = rng.randrange(size)
        at = max(0, min(size - 1, at))
        return bytes(data[:at]), f"cut at {at}"
    if how == "flip":
        spots = [rng.randrange(size) for _ in range(rng.randint(1, 3))]
        for spot in spots:
            data[spot] ^= 1 << rng.randrange(8)
        return bytes(data), f"bits flipped at {spots}"
    if how == "overwrite":
        start, length = rng.randrange(size), rng.randint(1, 64)
        if rng.random() < 0.5:
            run_bytes = bytes(rng.randrange(256) for _ in range(length))
        else:  # bytes from elsewhere in the file: well-formed-looking headers and JSON
            source = rng.randrange(size)
            run_bytes = bytes(data[source: source + length])
        data[start: start + len(run_bytes)] = run_bytes
        return bytes(data[:size]), f"{len(run_bytes)} bytes overwritten at {start}"
    if how == "zero":
        if rng.random() < 0.5:
            block = rng.randrange(0, (size - 1) // BLOCK + 1)
            start, end = max(len(FILE_HEADER), block * BLOCK), min(size, (block + 1) * BLOCK)
        else:
            start = rng.randrange(len(FILE_HEADER), size)
            end = min(size, start + rng.randint(1, 4096))
        data[start:end] = bytes(end - start)
        return bytes(data), f"zeroed {start}:{end}"
    cut, what = damage(rng, run, "cut")
    flipped, flips = damage(rng, RealRun(run.name, cut, run.records, run.chunks, run.rows, run.values), "flip") \
        if cut else (cut, "nothing to flip")
    return flipped, f"{what}, then {flips}"


def invented(records: RunRecords, run: RealRun) -> tuple[list[str], list[str]]:
    """The metric values (any key, any step), and the history rows, of `records` that the undamaged file
    does not hold."""
    values = [f"{key}={value} at step {step}" for key, got in metrics(records).items()
              for step, value in got - run.values.get(key, set())]
    return values, [f"row {row}" for row in records.history if canonical(row) not in run.rows]


def test_damaged_copies_never_raise_nor_invent_values(real_runs: list[RealRun], tmp_path: Path) -> None:
    rng = random.Random(SEED)
    kinds = ["cut"] * 3 + ["flip"] * 4 + ["overwrite"] * 3 + ["zero"] + ["cut+flip"]
    path = tmp_path / "run-damaged.wandb"
    problems: list[str] = []
    counts = {"copies": 0, "damaged chunks": 0, "copies found damaged": 0, "copies with an incomplete tail": 0,
              "copies with invented metric values": 0, "copies with invented rows": 0, "exceptions": 0}
    for i in range(COPIES):
        run = real_runs[i % len(real_runs)]
        how = kinds[i % len(kinds)]
        data, what = damage(rng, run, how)
        path.write_bytes(data)
        label = f"copy {i} of the {run.name} run, {what}"
        try:
            records = read_run(path)
            if i % 4 == 0:  # a live follower reading the same bytes in two steps ends where one read does
                split = rng.randrange(len(data) + 1)
                path.write_bytes(data[:split])
                follower = RunFile(path)
                follower.poll()
                path.write_bytes(data)
                followed = follower.poll()
                if (followed.history, followed.damaged) != (records.history, records.damaged):
                    problems.append(f"{label}: polled in two steps (split at {split}) it reads otherwise")
        except Exception as exc:  # noqa: BLE001  (any exception is the failure this test looks for)
            counts["exceptions"] += 1
            problems.append(f"{label}: {type(exc).__name__}: {exc}")
            continue
        counts["copies"] += 1
        counts["damaged chunks"] += records.damaged
        counts["copies found damaged"] += records.damaged > 0
        counts["copies with an incomplete tail"] += records.incomplete > 0
        values, rows = invented(records, run)
        counts["copies with invented metric values"] += bool(values)
        counts["copies with invented rows"] += bool(rows)
        if values or rows:
            problems.append(f"{label}: what the real file does not hold: {(values + rows)[:3]}")
        if how == "cut":  # a cut file is a live file's tail not written yet: never damage, always a prefix
            if records.damaged or records.history != run.records.history[: len(records.history)]:
                problems.append(f"{label}: a cut copy reads as damaged ({records.damaged}) or out of order")
        if how == "flip" and not (records.damaged or records.incomplete):
            spots = json.loads(what.split(" at ")[1])
            if not all(BLOCK - s % BLOCK < HEADER for s in spots):  # only a flip in block padding goes unseen
                problems.append(f"{label}: the flip went unnoticed")
    print(f"\nfuzzed .wandb copies: {counts}")
    assert not problems, f"{len(problems)} problems in {COPIES} copies ({counts}):\n" + "\n".join(problems[:20])
    assert counts["copies found damaged"] > COPIES // 2


def test_the_sweep_runner_says_once_that_a_runs_file_is_damaged(real_runs: list[RealRun], tmp_path: Path) -> None:
    from charexp.sweep.state import RunRecord
    from charexp.sweep.watch import SweepRunFiles

    logged = real_runs[1]
    data = bytearray(logged.data)
    data[BLOCK + BLOCK // 2] ^= 0x04  # inside the record that spans blocks: block 1 is lost, later blocks read
    wandb_dir = tmp_path / "wandb"
    for run_id, content in (("damaged1", bytes(data)), ("intact12", logged.data)):
        folder = wandb_dir / f"offline-run-20260101_000000-{run_id}"
        folder.mkdir(parents=True)
        (folder / f"run-{run_id}.wandb").write_bytes(content)
    said: list[str] = []
    files = SweepRunFiles(wandb_dir, "test/loss", "minimize", say=said.append)
    damaged, intact = RunRecord("damaged1", {}), RunRecord("intact12", {})
    assert files.refresh(damaged) and files.refresh(intact)
    assert said == ["run damaged1: its .wandb file has 1 damaged chunk(s); they were skipped, "
                    "its metrics may be incomplete"]
    assert damaged.metric == intact.metric == min(v for _, v in logged.records.metric("test/loss"))
    with open(wandb_dir / "offline-run-20260101_000000-damaged1" / "run-damaged1.wandb", "ab") as f:
        f.write(b"\xff" * 100)  # more damage later: the log has said it already
    assert files.refresh(damaged) and files.watcher("damaged1").damaged == 2 and len(said) == 1
