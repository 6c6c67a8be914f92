"""The sweep report's guidance as plain functions: edge lines, parameter importance, parallel coordinates.
(tests/sweep/test_engine_hyperband.py checks all three on a real tiny `charexp sweep` and `charexp report`.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.image import imread

from charexp.report.edges import edge_note, edge_notes, edges_markdown, log_spaced
from charexp.report.importance import MIN_RUNS, importance_markdown, param_importance
from charexp.report.parallel import ParallelAxis, plot_parallel

LR_GRID = [0.001, 0.0003, 0.0001, 0.00003, 0.00001]  # sweeps/lr.yaml


def runs_of(values: list, metrics: list, name: str = "lr") -> list[tuple[dict, float | None]]:
    return [({name: v}, m) for v, m in zip(values, metrics)]


@pytest.mark.parametrize(("best", "line"), [
    (0.001, "lr: the best run's 0.001 is the largest value tried; extend the range upward (e.g. 0.003)"),
    (0.00001, "lr: the best run's 1e-05 is the smallest value tried; extend the range downward (e.g. 3e-06)"),
    (0.0001, None),  # inside the range
])
def test_edges_of_a_log_grid(best: float, line: str | None) -> None:
    assert log_spaced("lr", LR_GRID)
    assert edge_note("lr", LR_GRID, [best]) == line


def test_edges_of_a_linear_grid_and_integers() -> None:
    assert not log_spaced("hidden", [32, 48, 64])
    assert edge_note("hidden", [32, 48, 64], [64]) == (
        "hidden: the best run's 64 is the largest value tried; extend the range upward (e.g. 80)")
    assert edge_note("hidden", [64, 128, 256], [64]).endswith("downward (e.g. 32)")  # log-spaced integers
    assert edge_note("dropout", [0.1, 0.2, 0.3], [0.1]).endswith("downward (e.g. 0.05)")  # never below 0: halved
    assert edge_note("dropout", [0.0, 0.2], [0.0]) is None  # already at 0: nowhere to go
    assert edge_note("layers", [1, 2], [1]) is None  # an integer at 1
    assert edge_note("lr", [0.00001, 0.02], [0.02]).endswith("upward (e.g. 0.2)")  # at most a decade per step


def test_edges_skip_categories_single_values_and_split_ties() -> None:
    assert edge_note("split", ["line", "episode"], ["line"]) is None
    assert edge_note("tie", [True, False], [True]) is None  # a bool is a category
    assert edge_note("lr", [0.01, 0.01, 0.01], [0.01]) is None  # tried at one value
    runs = [({"lr": 0.01, "hidden": 32}, 2.0), ({"lr": 0.03, "hidden": 32}, 1.5), ({"lr": 0.03, "hidden": 64}, 1.5)]
    # two runs tie for best: lr agrees (0.03, an edge); hidden does not (32 and 64), so it says nothing
    assert edge_notes(runs, ["lr", "hidden"], "minimize") == [
        "lr: the best run's 0.03 is the largest value tried; extend the range upward (e.g. 0.09)"]
    tied_at_one_edge = runs + [({"lr": 0.03, "hidden": 48}, 1.0)]
    assert [n.split(":")[0] for n in edge_notes(tied_at_one_edge, ["lr", "hidden"], "minimize")] == ["lr"]


def test_edges_follow_the_goal_and_count_runs_without_a_result_as_tried() -> None:
    runs = runs_of([0.001, 0.01, 0.1], [0.2, 0.5, 0.9])
    assert edge_notes(runs, ["lr"], "maximize") == [
        "lr: the best run's 0.1 is the largest value tried; extend the range upward (e.g. 1)"]
    assert edge_notes(runs, ["lr"], "minimize")[0].startswith("lr: the best run's 0.001 is the smallest")
    # a larger lr was tried and failed (no metric): 0.01 is not the edge of what was tried
    assert edge_notes(runs_of([0.001, 0.01, 0.1], [0.5, 0.2, None]), ["lr"], "minimize") == []
    assert edge_notes(runs_of([0.001, 0.01], [None, None]), ["lr"], "minimize") == []
    assert "No swept parameter" in edges_markdown([], ["lr"]) and "- lr: x" in edges_markdown(["lr: x"], ["lr"])


def test_importance_as_the_panel() -> None:
    runs = [({"lr": lr, "hidden": h, "split": s, "fixed": 1}, 3.0 + 0.3 * i - (0.01 if h == 64 else 0))
            for i, (lr, h, s) in enumerate([(0.1, 32, "a"), (0.01, 64, "b"), (0.001, 32, "c"), (0.0001, 64, "a")])]
    result = param_importance(runs, ["lr", "hidden", "split", "fixed"], "test/loss")
    assert result.runs == 4 and not result.note
    rows = {r.name: r for r in result.rows}
    assert [r.name for r in result.rows][0] == "lr" and list(rows) != sorted(rows)  # most important first
    assert rows["lr"].scale == "log10" and rows["lr"].correlation < -0.99  # loss falls with log10(lr)
    assert rows["hidden"].scale == "linear" and -1 <= rows["hidden"].correlation <= 1
    assert rows["split"].scale == "category" and rows["split"].correlation is None  # one-hot, summed back
    assert rows["fixed"].scale == "constant" and rows["fixed"].correlation is None and rows["fixed"].importance == 0
    assert sum(r.importance for r in result.rows) == pytest.approx(1.0)
    again = param_importance(runs, ["lr", "hidden", "split", "fixed"], "test/loss")
    assert again.rows == result.rows  # a fixed random_state: the same table every time
    text = importance_markdown(result)
    assert "| lr (log10) | -1.00 |" in text and "| split | - (categorical) |" in text
    assert "| fixed | - (constant) | 0.00 |" in text


def test_importance_refuses_too_few_runs_and_a_constant_metric() -> None:
    few = runs_of([0.1, 0.01, 0.001], [1.0, 2.0, None])  # two runs with a metric
    result = param_importance(few, ["lr"], "test/loss")
    assert not result.rows and result.note == f"it needs at least {MIN_RUNS} runs with test/loss; this sweep has 2"
    assert importance_markdown(result).endswith(
        f"No importance table: it needs at least {MIN_RUNS} runs with test/loss; this sweep has 2.\n")
    flat = param_importance(runs_of([0.1, 0.01, 0.001], [1.0, 1.0, 1.0]), ["lr"], "test/loss")
    assert not flat.rows and "same test/loss" in flat.note
    assert param_importance(few, [], "test/loss").note == "this sweep varied no parameter"


def test_parallel_axes() -> None:
    lr = ParallelAxis("lr", [0.0001, 0.001, 0.01])
    assert lr.log and [lr.fraction(v) for v in (0.0001, 0.001, 0.01)] == pytest.approx([0, 0.5, 1])
    assert not ParallelAxis("lr", [0.003, 0.03]).log  # one decade: linear
    assert not ParallelAxis("x", [0.0, 0.01, 1.0]).log  # zero cannot go on a log axis
    split = ParallelAxis("split", ["line", "episode", "line"])
    assert split.labels == ["episode", "line"] and [split.fraction(v) for v in ("episode", "line")] == [0.25, 0.75]
    assert ParallelAxis("c", [5, 5]).fraction(5) == 0.5


def test_parallel_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One axis per parameter and the metric, each with its own scale; one coloured line per run with a metric."""
    import charexp.report.parallel as parallel

    drawn = []
    real_save = parallel.save
    monkeypatch.setattr(parallel, "save", lambda fig, path: drawn.append(fig) or real_save(fig, path))
    runs = [({"lr": 1e-4, "split": "line"}, 2.1), ({"lr": 1e-3, "split": "episode"}, 1.9),
            ({"lr": 1e-2, "split": "line"}, 1.7),
            ({"lr": 0.1, "split": "line"}, None)]
    path = plot_parallel(runs, ["lr", "split"], "test/loss", "minimize", tmp_path / "parallel.png")
    assert imread(path).shape[:2] == (450, 700)
    host, *twins = drawn[0].axes
    assert [t.get_text() for t in host.get_xticklabels()] == ["lr", "split", "test/loss"]
    assert [t.get_yscale() for t in twins] == ["log", "linear", "linear"]
    assert [t.get_text() for t in twins[1].get_yticklabels()] == ["episode", "line"]
    (lines,) = host.collections
    assert len(lines.get_segments()) == 3 and sorted(lines.get_array()) == [1.7, 1.9, 2.1]
    assert imread(plot_parallel([], ["lr"], "test/loss", "minimize", tmp_path / "empty.png")).shape[:2] == (450, 700)
