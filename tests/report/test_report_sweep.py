"""`charexp report SWEEP_DIR`: on a hand-written sweep directory whose runs are real tiny trainings, and on
one that a real tiny `charexp sweep` wrote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from charexp.cli import app
from charexp.report.param_plot import param_figure, plot_param
from charexp.report.plots import use_log_x
from charexp.report.sweep import SweepRun
from charexp.summary_view import fmt
from charexp.sweep.state import RunRecord
from charexp.tracking.rundir import RunDir

from conftest import REPO
from test_report import BLUE, GREEN, ORANGE, WIDE, assert_figure, train_runs

PARAMS = [{"lr": 0.01, "hidden": 32}, {"lr": 0.001, "hidden": 32}, {"lr": 0.03, "hidden": 48}]


@pytest.fixture(scope="module")
def sweep_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("sweep")
    ids = train_runs(root, [{**p, "epochs": 2, "steps_per_epoch": 10, "eval_every": 5, "sample_every": 5}
                            for p in PARAMS])
    return root, ids


@pytest.fixture
def sweep_dir(sweep_runs: tuple[Path, list[str]], tmp_path: Path) -> Path:
    """sweep-runs/swp1/ with state.json as the offline sweep runner writes it; runs/ beside it in the launch
    directory."""
    root, ids = sweep_runs
    shutil.copytree(root / "runs", tmp_path / "runs")
    shutil.copytree(root / "artifacts", tmp_path / "artifacts")
    runs = []
    for run_id, params in zip(ids, PARAMS):
        best = RunDir(tmp_path / "runs", run_id).read_summary()["best_test_loss"]
        runs.append({"run_id": run_id, "params": {**params, "epochs": 2}, "state": "finished", "exit_code": 0,
                     "metric": best, "summary": {"test/loss": {"min": best}}, "run_dir": f"runs/{run_id}",
                     "log": f"logs/{run_id}.log", "started": "2026-01-01T00:00:00", "ended": "2026-01-01T00:01:00"})
    runs.append({"run_id": "zzfailed", "params": {"lr": 3.0, "hidden": 48, "epochs": 2}, "state": "failed",
                 "exit_code": 1, "metric": None, "summary": {}, "run_dir": "runs/zzfailed", "log": "logs/zzfailed.log",
                 "started": None, "ended": None})
    config = {"program": "train.py", "method": "grid", "metric": {"name": "test/loss", "goal": "minimize"},
              "parameters": {"lr": {"values": [0.001, 0.01, 0.03, 3.0]}, "hidden": {"values": [32, 48]},
                             "epochs": {"value": 2}}}
    path = tmp_path / "sweep-runs" / "swp1"
    (path / "logs").mkdir(parents=True)
    (path / "logs" / "zzfailed.log").write_text("Traceback ...\nRuntimeError: boom\n", encoding="utf-8")
    (path / "sweep.yaml").write_text(json.dumps(config), encoding="utf-8")
    state = {"sweep_id": "swp1", "project": "charexp-test", "method": "grid", "metric": config["metric"],
             "config": config, "created": "2026-01-01T00:00:00", "finished": True, "runs": runs}
    (path / "state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
    return path


def table_ids(markdown: str) -> list[str]:
    """Run ids in the order of runs.md's table rows."""
    return [line.split("|")[2].strip() for line in markdown.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip().isdigit()]


def test_sweep_report(sweep_dir: Path, sweep_runs: tuple[Path, list[str]], tmp_path: Path) -> None:
    _, ids = sweep_runs
    result = CliRunner().invoke(app, ["report", str(sweep_dir.relative_to(tmp_path))], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "no run directory found for zzfailed" in result.output
    out = sweep_dir / "report"
    state = json.loads((sweep_dir / "state.json").read_text(encoding="utf-8"))
    metric = {r["run_id"]: r["metric"] for r in state["runs"]}

    runs_md = (out / "runs.md").read_text(encoding="utf-8")
    ranked = table_ids(runs_md)
    assert ranked == sorted(ids, key=lambda i: metric[i]) + ["zzfailed"]  # best first, the run without a metric last
    best = ranked[0]
    assert f"Best: run **{best}** with test/loss = {metric[best]:.4f}" in runs_md
    # epochs is fixed by the sweep: not a column
    assert "| # | run | state | lr | hidden | test/loss (minimize) |" in runs_md
    assert "| zzfailed | failed | 3 | 48 | - |" in runs_md and "[log](../logs/zzfailed.log)" in runs_md
    for run_id in ids:
        assert f"[summary]({run_id}/summary.md)" in runs_md
        assert f"{metric[run_id]:.4f} nats/char" in (out / run_id / "summary.md").read_text(encoding="utf-8")
        for name in ("train_loss.png", "test_loss.png", "accuracy.png", "samples.md"):
            assert (out / run_id / name).is_file()

    assert_figure(out / "test_loss_all.png", BLUE, ORANGE, GREEN)  # one curve per run that logged test/loss
    assert_figure(out / "final_test_loss_vs_lr.png", BLUE)
    assert_figure(out / "final_test_loss_vs_hidden.png", BLUE)
    assert not (out / "final_test_loss_vs_epochs.png").exists()
    for name in ("test_loss_all.png", "final_test_loss_vs_lr.png", "final_test_loss_vs_hidden.png"):
        assert f"]({name})" in runs_md

    # the terminal table, best first, and `charexp runs` lists the sweep's runs
    lines = result.output.splitlines()
    rows = [next(i for i, line in enumerate(lines) if run_id in line and "│" in line) for run_id in ranked]
    assert rows == sorted(rows)
    listing = CliRunner().invoke(app, ["runs"], env=WIDE)
    assert listing.exit_code == 0
    for run_id in ids:
        assert any(run_id in line and "finished" in line for line in listing.output.splitlines())


@pytest.mark.parametrize("layout", ["grandparent", "recorded-cwd"])
def test_sweep_report_finds_runs_from_another_directory(sweep_dir: Path, sweep_runs: tuple[Path, list[str]],
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        layout: str) -> None:
    """Reported from elsewhere, each run_dir (relative to the launch directory) is found from the sweep dir's
    grandparent, or, for a sweep dir moved away, from the launch directory that state.json records."""
    if layout == "recorded-cwd":
        moved = tmp_path / "archive" / "2026" / "old-sweeps" / "swp1"
        moved.parent.mkdir(parents=True)
        shutil.move(sweep_dir, moved)
        state = json.loads((moved / "state.json").read_text(encoding="utf-8"))
        (moved / "state.json").write_text(json.dumps({**state, "cwd": str(tmp_path)}), encoding="utf-8")
        sweep_dir = moved
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    result = CliRunner().invoke(app, ["report", str(sweep_dir)], env=WIDE)
    assert result.exit_code == 0, result.output
    runs_md = (sweep_dir / "report" / "runs.md").read_text(encoding="utf-8")
    for run_id in sweep_runs[1]:
        assert f"[summary]({run_id}/summary.md)" in runs_md


def test_log_axis_rule() -> None:
    assert use_log_x("lr", [0.001, 0.002])
    assert use_log_x("batch_size", [8, 512])  # spans more than a decade
    assert not use_log_x("hidden", [32, 48, 128])
    assert not use_log_x("dropout", [0.0, 0.5])  # zero cannot go on a log axis


def test_categorical_parameter_plot(tmp_path: Path) -> None:
    """Each run's point sits at its category (sorted on the axis) and at its final test loss, read from either
    summary form (W&B's {"min": x} or a bare number); a stopped run is a cross; a run without a loss is left out."""
    summaries = [{"test/loss": {"min": 1.9}}, {"test/loss": 2.1}, {"test/loss": {"min": 2.4}}, {}]
    runs = [SweepRun(RunRecord(f"r{i}", {"split": split}, state=state, summary=summary), None)
            for i, (split, state, summary) in enumerate(zip(["line", "episode", "episode", "line"],
                                                            ["finished", "finished", "preempted", "failed"],
                                                            summaries))]
    path = plot_param("split", ["split"], runs, tmp_path / "split.png")
    assert_figure(path, BLUE)
    (ax,) = [a for a in param_figure("split", ["split"], runs).axes if a.get_xlabel() == "split"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["episode", "line"]
    points = [sorted(map(tuple, c.get_offsets().tolist())) for c in ax.collections if len(c.get_offsets())]
    # r3 has no loss: not drawn; the finished runs are dots and the stopped one a cross, all one setting
    assert sorted(points) == [[(0.0, 2.1), (1.0, 1.9)], [(0.0, 2.4)]]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["all runs", "× stopped early / failed"]
    assert not ax.texts  # no run ids written on the figure


def test_report_of_a_sweep_that_charexp_sweep_ran(tmp_path: Path, tiny_config) -> None:
    """The hand-off as a user makes it: `charexp sweep` writes sweep-runs/<id>/ (state.json and all), then
    `charexp report` reads it; the table agrees with each run's own local record, not just with state.json."""
    from charexp.sweep.command import run_sweep

    config = tiny_config(epochs=1, steps_per_epoch=5, sample_every=0, checkpoint_every=0, eval_every=0)
    sweep = {"program": str(REPO / "train.py"), "method": "grid", "metric": {"name": "test/loss", "goal": "minimize"},
             "parameters": {"lr": {"values": [0.003, 0.03]}},
             "command": ["${env}", "${interpreter}", "${program}", "--config", str(config), "${args}"]}
    (tmp_path / "sweep.yaml").write_text(json.dumps(sweep), encoding="utf-8")
    assert run_sweep(Path("sweep.yaml"), None, workers=1) == "finished"
    (sweep_dir,) = (tmp_path / "sweep-runs").iterdir()
    state = json.loads((sweep_dir / "state.json").read_text(encoding="utf-8"))
    ids = [run["run_id"] for run in state["runs"]]
    assert len(ids) == 2 and all(run["state"] == "finished" for run in state["runs"])

    result = CliRunner().invoke(app, ["report", str(sweep_dir.relative_to(tmp_path))], env=WIDE)
    assert result.exit_code == 0, result.output
    out = sweep_dir / "report"
    runs_md = (out / "runs.md").read_text(encoding="utf-8")
    local = {run_id: RunDir(tmp_path / "runs", run_id) for run_id in ids}
    # what each run recorded itself
    best = {run_id: run.read_summary()["best_test_loss"] for run_id, run in local.items()}
    assert table_ids(runs_md) == sorted(ids, key=best.__getitem__)
    for run_id, run in local.items():
        lr = run.read_config()["lr"]
        row = next(line for line in runs_md.splitlines() if f"| {run_id} |" in line)
        assert f"| {fmt(best[run_id])} |" in row and f"| {lr:g} |" in row and "| finished |" in row, row
        assert f"{fmt(best[run_id])} nats/char" in (out / run_id / "summary.md").read_text(encoding="utf-8")
        assert_figure(out / run_id / "test_loss.png")
    assert_figure(out / "test_loss_all.png", BLUE, ORANGE)
    assert_figure(out / "final_test_loss_vs_lr.png", BLUE)
