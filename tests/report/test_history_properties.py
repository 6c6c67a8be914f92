"""Properties of a run's history.jsonl, as `charexp report` reads it: whatever the file holds (rows of any
shape, non-finite numbers, damaged bytes, a half-written last line), the report is written or refused in one
sentence, and the run directory is left as it was."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from charexp.report.run import write_run_report
from charexp.tracking.rundir import RunDir

from properties import damaged, floats, json_values, parsed_or_refused, scratch

KEYS = ["step", "epoch", "lr", "train/loss", "test/loss", "test/accuracy", "perf/chars_per_sec", "rejections",
        "rejected_epoch"]
numbers = st.none() | st.booleans() | st.integers(-10, 10**6) | floats() | st.text(max_size=6)
rows = st.dictionaries(st.sampled_from(KEYS), numbers | json_values(4), max_size=6)
lines = st.lists(rows.map(json.dumps) | json_values(4).map(json.dumps) | st.text(max_size=20), max_size=12)
# every figure is drawn per example: a quarter of the profile's examples keeps this in the suite's time
FEWER = settings(max_examples=max(10, settings.default.max_examples // 4))

VALID = "".join(json.dumps(r) + "\n" for r in [
    {"step": 5, "train/loss": 3.2, "lr": 0.01, "epoch": 0.25},
    {"step": 10, "train/loss": 2.9, "lr": 0.01, "epoch": 0.5, "test/loss": 3.0, "test/accuracy": 0.2},
    {"step": 20, "test/loss": 2.7, "test/accuracy": 0.25, "epoch": 1.0, "rejections": 1, "rejected_epoch": 1},
]).encode()


def report_of(history: bytes) -> None:
    """Write a run directory holding `history`, report it, and check that the run directory is unchanged."""
    with scratch() as folder:
        run = RunDir(folder / "runs", "abcd1234")
        run.path.mkdir(parents=True)
        (run.path / "config.yaml").write_text("lr: 0.01\nepochs: 2\n")
        run.history_path.write_bytes(history)
        before = {p.name: p.read_bytes() for p in run.path.iterdir()}
        out = parsed_or_refused(lambda: write_run_report(run.path, folder / "report"))
        assert {p.name: p.read_bytes() for p in run.path.iterdir()} == before
        if out is not None:
            assert (Path(out) / "summary.md").is_file() and (Path(out) / "train_loss.png").is_file()


@FEWER
@given(lines)
@example(['{"step": "ten", "train/loss": 1.0}', '{"step": 5, "train/loss": NaN}', "[1, 2]", '{"step": 1e999}'])
@example(['{"step": 5, "train/loss": 1.0, "epoch": "x"}', '{"step": 10, "rejections": 1, "rejected_epoch": "one"}'])
def test_any_rows_give_a_report_or_one_sentence(text_lines: list[str]) -> None:
    report_of("\n".join(text_lines).encode())


@FEWER
@given(damaged(VALID))
@example(VALID[:-7])  # a half-written last line, as a hard kill leaves it
@example(b"\xff\xfe" + VALID)  # not UTF-8
def test_a_damaged_history_gives_a_report_or_one_sentence(data: bytes) -> None:
    report_of(data)


@given(st.binary(max_size=200) | lines.map(lambda ls: "\n".join(ls).encode()))
def test_the_history_reader_yields_only_rows(data: bytes) -> None:
    """RunDir.history() is what report, resume and the tests read: dicts only, or one sentence."""
    with scratch() as folder:
        run = RunDir(folder, "abcd1234")
        run.path.mkdir()
        run.history_path.write_bytes(data)
        got = parsed_or_refused(lambda: list(run.history()))
        assert got is None or all(isinstance(row, dict) for row in got)
