"""Hyperband's stop messages and the sweep report's guidance, on one real tiny `charexp sweep` of train.py.

The sweep is a 2 x 2 grid over epochs (2, 40) and lr (0.03, 0.003); every run logs test/loss at each epoch's
end, and hyperband (eta 3) judges runs at their second value against the lowest third of the values there.
The sweeps engine orders a grid by parameter name, so the runs come as (2, 0.03), (2, 0.003), (40, 0.03),
(40, 0.003): the second is judged at its last value, after it has finished (a stop must not be claimed), and
the fourth with 38 epochs to go (a real stop, whose reason must be its own). Those 38 epochs are the margin
for the runner to read the judged value and deliver the stop on a loaded machine: with 4 to go, a run could
finish first.
"""

from __future__ import annotations

import contextlib
import io
import re
import signal
from pathlib import Path

import pytest
import yaml
from matplotlib.image import imread
from typer.testing import CliRunner

from charexp.cli import app
from charexp.report.edges import edge_note
from charexp.sweep import engine
from charexp.sweep.engine import own_line
from charexp.sweep.outcome import settle
from charexp.sweep.spec import quiet_sweeps
from charexp.sweep.state import RunRecord, load_state

from conftest import REPO, TINY, isolate_env, write_tiny_csv

WIDE = {"COLUMNS": "200"}
STOP = re.compile(r"run (?P<run>[a-z0-9]{8}) stopped by hyperband \(SIGTERM\): (?P<why>.*)")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def hyperband_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, list[bool]]]:
    """(sweep directory, the runner's console output, {run id: has it ended?} each time hyperband chose it),
    from the real sweep, run once for this module."""
    from charexp.sweep.command import run_sweep

    root = tmp_path_factory.mktemp("hyperband")
    chosen: dict[str, list[bool]] = {}
    real_has_ended = engine.has_ended

    def has_ended(spec, state, rec, watcher) -> bool:  # called for every run hyperband would stop
        ended = real_has_ended(spec, state, rec, watcher)
        chosen.setdefault(rec.run_id, []).append(ended)
        return ended

    with pytest.MonkeyPatch.context() as mp:
        isolate_env(mp, root)
        mp.setattr(engine, "has_ended", has_ended)
        config = {"data": str(write_tiny_csv(root)), **TINY, "steps_per_epoch": 3, "eval_every": 0, "sample_every": 0,
                  "checkpoint_every": 0}
        (root / "tiny.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        sweep = {"program": str(REPO / "train.py"), "method": "grid",
                 "metric": {"name": "test/loss", "goal": "minimize"},
                 # one band, at 6 / 3 = 2 values
                 "early_terminate": {"type": "hyperband", "max_iter": 6, "eta": 3, "s": 1},
                 "parameters": {"epochs": {"values": [2, 40]}, "lr": {"values": [0.03, 0.003]}},
                 "command": ["${env}", "${interpreter}", "${program}", "--config", str(root / "tiny.yaml"), "${args}"]}
        (root / "sweep.yaml").write_text(yaml.safe_dump(sweep), encoding="utf-8")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert run_sweep(root / "sweep.yaml", None, workers=1) == "finished"
    (sweep_dir,) = (root / "sweep-runs").iterdir()
    return sweep_dir, out.getvalue(), chosen


def test_a_stop_names_its_own_run(hyperband_sweep: tuple[Path, str, dict[str, list[bool]]]) -> None:
    sweep_dir, out, _ = hyperband_sweep
    state = load_state(sweep_dir)
    order = [(2, 0.03), (2, 0.003), (40, 0.03), (40, 0.003)]
    assert [(r.params["epochs"], r.params["lr"]) for r in state.runs] == order
    stops = {m["run"]: m["why"] for m in STOP.finditer(out)}
    last = state.runs[3]
    assert last.run_id in stops, out
    # Step: the values the run had logged when the runner read it (2 or more: the run goes on while it is judged)
    own = rf"Run: {last.run_id} Step: \d+ \(Band: 2 Metric: [\d.]+ Threshold: [\d.]+\) STOP"
    assert re.fullmatch(own, stops[last.run_id]), stops
    assert (last.state, last.exit_code, last.stop_requested) == ("stopped", 128 + signal.SIGTERM, True)
    assert re.search(rf"run {last.run_id} stopped early \(exit 143 \(SIGTERM\)\)", out)
    for run_id, why in stops.items():
        assert why.startswith(f"Run: {run_id} Step: "), (run_id, why)  # never another run's line


def test_a_stop_after_the_last_step_is_a_finish(hyperband_sweep: tuple[Path, str, dict[str, list[bool]]]) -> None:
    """The second run is over the threshold only at its last value: hyperband chooses it once it has finished
    training. The runner either sees that it has ended and sends nothing, or (when its exit record is not in
    yet) its stop lands after the last step: either way the run is recorded, and reported, as finished."""
    sweep_dir, out, chosen = hyperband_sweep
    state = load_state(sweep_dir)
    late = state.runs[1]
    assert late.run_id in chosen, (chosen, out)
    assert late.state == "finished" and late.exit_code == 0
    if late.stop_requested:
        finish = rf"run {late.run_id} finished: test/loss [\d.]+; hyperband's stop came after its last step"
        assert re.search(finish, out), out
    else:
        assert all(chosen[late.run_id]) and f"run {late.run_id} stopped" not in out
    table = {m[1]: m[2] for m in re.finditer(r"│ \d │ ([a-z0-9]{8}) │.*?│ (\w+)\s*│\s*[\d.]+ │", out)}
    assert table == {r.run_id: r.state for r in state.runs}  # the final table says what each run did


def test_report_guides_the_next_sweep(hyperband_sweep: tuple[Path, str, dict[str, list[bool]]]) -> None:
    """Edge lines (in the runner's final output and the report), the parallel-coordinates figure, the importance
    table."""
    sweep_dir, out, _ = hyperband_sweep
    state = load_state(sweep_dir)
    best = min(state.runs, key=lambda r: r.metric)
    assert best.params["lr"] == 0.03
    lr_line = "lr: the best run's 0.03 is the largest value tried; extend the range upward (e.g. 0.3)"
    epochs_line = edge_note("epochs", [2, 40], [best.params["epochs"]])  # two values: the best is always at an edge
    assert epochs_line and lr_line in out and epochs_line in out  # the runner's final output

    result = CliRunner().invoke(app, ["report", str(sweep_dir)], env=WIDE)
    assert result.exit_code == 0, result.output
    report = sweep_dir / "report"
    runs_md = (report / "runs.md").read_text(encoding="utf-8")
    for text in (result.output, runs_md):
        assert lr_line in text and epochs_line in text

    figure = report / "parallel_coordinates.png"
    assert figure.read_bytes().startswith(PNG) and imread(figure).shape[:2] == (450, 700)  # 7 x 4.5 in at 100 dpi
    assert "](parallel_coordinates.png)" in runs_md

    section = runs_md.split("## Parameter importance")[1].split("##")[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert sorted(cells[0].strip() for cells in rows) == ["epochs", "lr"]  # one row per swept parameter
    assert sum(float(cells[2]) for cells in rows) == pytest.approx(1.0, abs=0.011)
    correlation = {cells[0].strip(): float(cells[1]) for cells in rows}
    assert correlation["lr"] < 0 and correlation["epochs"] < 0  # a larger lr, or more epochs: a lower loss
    assert "parameter importance for test/loss (4 runs" in result.output
    assert re.search(r"│ lr\s+│\s+-\d\.\d\d │\s+\d\.\d\d │", result.output), result.output


def test_own_line_reads_past_the_shared_list() -> None:
    """The engine's own output: all running runs share one `lines` list; each must get its own line."""
    sweeps = quiet_sweeps()  # the engine, imported without its pydantic chatter
    runs = [sweeps.SweepRun(name=name, state=sweeps.RunState.running, config={"a": {"value": i}},
                            history=[{"loss": loss} for loss in losses])
            for i, (name, losses) in enumerate([("good", [5, 1]), ("bad", [5, 9]), ("mid", [5, 3]), ("late", [])])]
    config = {"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
              "parameters": {"a": {"values": [0, 1, 2, 3]}},
              "early_terminate": {"type": "hyperband", "max_iter": 4, "eta": 2, "s": 1}}
    (stopped,) = sweeps.stop_runs(config, runs)
    assert stopped.name == "bad"
    lines = stopped.early_terminate_info["lines"]
    assert lines is runs[0].early_terminate_info["lines"]  # the shallow copy this works around
    assert lines[-1].startswith("Run: late Step: 0")  # what the runner used to print for "bad"
    assert own_line(lines, "bad") == "Run: bad Step: 2 (Band: 2 Metric: 9 Threshold: 3) STOP"
    assert own_line(lines, "good").startswith("Run: good Step: 2 ") and not own_line(lines, "good").endswith("STOP")
    assert own_line(["Bands: 2 = 1", "Run: ab Step: 1", "Run: a Step: 3  STOP"], "a") == "Run: a Step: 3 STOP"
    assert own_line(["Bands: 2 = 1"], "a") == ""


@pytest.mark.parametrize(("code", "summary", "state", "words"), [
    (0, {}, "finished", "finished: test/loss 1.0000; hyperband's stop came after its last step"),
    (-signal.SIGTERM, {"state": "finished"}, "finished",
     "hyperband's stop came after its last step (exit -15 (SIGTERM)"),
    (128 + signal.SIGTERM, {"state": "running"}, "stopped", "stopped early (exit 143 (SIGTERM))"),
])
def test_a_stop_is_recorded_as_what_it_did(code: int, summary: dict, state: str, words: str) -> None:
    rec = RunRecord("r1", {}, state="running", summary=summary, stop_requested=True)
    note = settle(rec, code, interrupted=False, finished_locally=False, metric="test/loss 1.0000")
    assert rec.state == state and words in note
