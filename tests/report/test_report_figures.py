"""What the report's figures hold, read from the matplotlib objects: the lr curve, train and test loss on one
axis, readable log ticks, and a sweep's points told apart by the other swept parameters."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from charexp.report.param_plot import param_figure
from charexp.report.plots import new_figure, readable_log_ticks
from charexp.report.run import RunData
from charexp.report.run_plots import FIGURES, loss_figure, lr_figure, write_figures
from charexp.report.sweep import SweepRun
from charexp.sweep.state import RunRecord
from charexp.tracking.rundir import RunDir, RunSummary


def run_data(tmp_path: Path, rows: list[dict], **config) -> RunData:
    return RunData(RunDir(tmp_path, "r1"), config, RunSummary(), rows, [])


def warmup_then_cosine(steps: int = 60) -> list[dict]:
    """A run's history: train/loss and lr every step, test/loss every 20 (warmup to 0.01, cosine to 1e-5)."""
    rows = []
    for step in range(1, steps + 1):
        lr = 0.01 * step / 10 if step <= 10 else 1e-5 + (0.01 - 1e-5) * (1 + math.cos(math.pi * (step - 10) / 50)) / 2
        rows.append({"step": step, "epoch": step / 20, "train/loss": 3 - step / 40, "lr": lr})
        if step % 20 == 0:
            rows.append({"step": step, "epoch": step / 20, "test/loss": 3.2 - step / 50, "test/bpc": 1.0})
    return rows


def lines(ax) -> dict[str, tuple[list[float], list[float]]]:
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()
            if not line.get_label().startswith("_")}


def labelled_ticks(axis) -> list[str]:
    """The labels of the major ticks inside the axis's view, as drawn."""
    axis.figure.canvas.draw()
    low, high = sorted(axis.get_view_interval())
    locs = [t for t in axis.get_majorticklocs() if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]
    return [text for text in axis.get_major_formatter().format_ticks(locs) if text]


def test_train_and_test_loss_share_one_axis(tmp_path):
    rows = warmup_then_cosine()
    fig = loss_figure(run_data(tmp_path, rows))
    ax = fig.axes[0]
    drawn = lines(ax)
    assert drawn["train/loss"] == ([float(r["step"]) for r in rows if "train/loss" in r],
                                   [r["train/loss"] for r in rows if "train/loss" in r])
    assert drawn["test/loss"] == ([20.0, 40.0, 60.0], [3.2 - 0.4, 3.2 - 0.8, 3.2 - 1.2])
    assert any(label.startswith("best 2.0000") for label in drawn)
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"train/loss", "test/loss"}


def test_the_lr_curve_is_the_logged_rate_on_a_log_axis_when_it_spans_decades(tmp_path):
    rows = warmup_then_cosine()
    ax = lr_figure(run_data(tmp_path, rows, lr_schedule="cosine")).axes[0]
    xs, ys = lines(ax)["lr"]
    assert xs == list(range(1, 61)) and ys == [r["lr"] for r in rows if "lr" in r]
    assert ax.get_yscale() == "log" and "cosine" in ax.get_title()
    assert len(labelled_ticks(ax.yaxis)) >= 3


def test_a_flat_or_stepped_rate_stays_on_a_linear_axis(tmp_path):
    rows = [{"step": s, "epoch": s / 10, "lr": 0.003 if s <= 10 else 0.0015} for s in range(1, 21)]
    ax = lr_figure(run_data(tmp_path, rows)).axes[0]
    assert ax.get_yscale() == "linear" and lines(ax)["lr"][1] == [r["lr"] for r in rows]


def test_a_run_without_rows_says_so_on_each_figure(tmp_path):
    written = write_figures(run_data(tmp_path, []), tmp_path)
    assert [p.name for p in written] == list(FIGURES) and all(p.stat().st_size > 1000 for p in written)
    assert "no lr logged yet" in [t.get_text() for t in lr_figure(run_data(tmp_path, [])).axes[0].texts]


@pytest.mark.parametrize("values", [[0.003, 0.006, 0.012], [0.001, 0.002, 0.003], [1e-3, 3e-3], [3e-4, 1e-3, 3e-3],
                                    [1e-5, 1e-3, 1e-1], [1.1e-3, 1.2e-3, 1.3e-3], [1.1e-3, 1.3e-3]])
def test_log_ticks_label_at_least_three_points_even_within_one_decade(values):
    fig, ax = new_figure("t", "lr", "loss")
    ax.scatter(values, [1.0] * len(values))
    ax.set_xscale("log")
    readable_log_ticks(ax.xaxis, values)
    labels = labelled_ticks(ax.xaxis)
    assert 3 <= len(labels) <= 10, labels
    assert len(set(labels)) == len(labels), labels  # no two ticks read the same
    assert not any("10^" in label for label in labels)  # as a sweep YAML writes them: 0.003, 1e-05


def sweep_runs(grid: list[tuple[float, float, int, str, float | None]]) -> list[SweepRun]:
    return [SweepRun(RunRecord(f"run{i}", {"lr": lr, "lr_decay": decay, "seed": seed}, state=state,
                               summary={} if loss is None else {"test/loss": loss}), None)
            for i, (lr, decay, seed, state, loss) in enumerate(grid)]


def test_points_are_told_apart_by_the_other_swept_parameters_not_by_run_id():
    runs = sweep_runs([(0.003, 1.0, 0, "finished", 3.6), (0.006, 1.0, 0, "finished", 3.2),
                       (0.006, 1.0, 1, "finished", 3.3), (0.012, 1.0, 0, "finished", 3.0),
                       (0.003, 0.5, 0, "finished", 3.7), (0.006, 0.5, 0, "failed", 3.4),
                       (0.012, 0.5, 0, "finished", 3.1), (0.012, 0.5, 1, "finished", None)])
    ax = param_figure("lr", ["lr", "lr_decay", "seed"], runs).axes[0]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["lr_decay=1", "lr_decay=0.5", "× stopped early / failed"]
    assert legend.get_title().get_text() == "lr_decay (seeds share a colour)"
    assert not ax.texts  # no run ids written next to the points
    by_colour: dict[tuple, set] = {}
    for collection in ax.collections:
        colour = tuple(collection.get_facecolor()[0]) if len(collection.get_offsets()) else None
        for x, y in collection.get_offsets().tolist():
            by_colour.setdefault(colour, set()).add((x, y))
    assert sorted(map(sorted, by_colour.values())) == sorted([
        sorted({(0.003, 3.6), (0.006, 3.2), (0.006, 3.3), (0.012, 3.0)}),  # decay 1, both seeds in one colour
        sorted({(0.003, 3.7), (0.006, 3.4), (0.012, 3.1)}),  # decay 0.5; the run without a loss is left out
    ])
    # a line through each setting's finished runs (the seeds' mean at 0.006)
    trend = sorted(tuple(map(tuple, zip(line.get_xdata(), line.get_ydata()))) for line in ax.get_lines())
    assert trend == sorted([((0.003, 3.6), (0.006, 3.25), (0.012, 3.0)), ((0.003, 3.7), (0.012, 3.1))])
    assert ax.get_xscale() == "log" and len(labelled_ticks(ax.xaxis)) >= 3


def test_with_one_swept_parameter_every_point_is_one_setting():
    runs = sweep_runs([(0.003, 1.0, 0, "finished", 3.6), (0.006, 1.0, 0, "finished", 3.2)])
    ax = param_figure("lr", ["lr"], runs).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["all runs"]
