"""Replicate groups in a sweep report: runs that differ only in seed, their mean and spread, and a plain verdict
on whether two groups differ by more than the seed noise."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from charexp.cli import app
from charexp.report.groups import Group, band, build_groups, compare, comparisons, epoch_curve

from conftest import REPO
from test_report import BLUE, assert_figure


def fake_run(run_id: str, metric: float | None, **params) -> SimpleNamespace:
    return SimpleNamespace(run_id=run_id, params=params, data=None, metric=metric)


def test_runs_group_by_everything_but_seed_best_mean_first():
    runs = [fake_run("a", 1.30, lr=0.01, seed=0), fake_run("b", 1.20, lr=0.003, seed=0),
            fake_run("c", 1.32, lr=0.01, seed=1), fake_run("d", 1.22, lr=0.003, seed=1, log_every=7),
            fake_run("e", None, lr=0.1, seed=0)]
    groups = build_groups(runs, ["lr", "seed"], lambda r: r.metric, "minimize")
    assert [(g.label, g.run_ids, g.n) for g in groups] == [("lr=0.003", ["b", "d"], 2), ("lr=0.01", ["a", "c"], 2),
                                                           ("lr=0.1", ["e"], 0)]
    assert groups[0].mean == pytest.approx(1.21) and groups[0].std == pytest.approx(statistics.stdev([1.20, 1.22]))
    assert groups[0].best("minimize") == 1.20 and groups[0].best("maximize") == 1.22
    maximized = build_groups(runs, ["lr", "seed"], lambda r: r.metric, "maximize")
    assert maximized[0].label == "lr=0.01"
    (alone,) = build_groups(runs[:1] + runs[2:3], ["seed"], lambda r: r.metric, "minimize")
    assert alone.label == "all runs" and alone.n == 2  # a seeds-only sweep is one group


def test_a_difference_far_beyond_the_spread_is_reported_as_one():
    good, bad = Group("cosine", values=[1.200, 1.205, 1.198]), Group("constant", values=[1.250, 1.255, 1.247])
    sentence = compare(good, bad, "test/loss")
    assert "is larger than the seed noise" in sentence and "Welch's t-test" in sentence and "-0.0497" in sentence
    assert "n = 3" in sentence and "p = " in sentence


def test_groups_that_ran_the_same_seeds_are_compared_seed_by_seed():
    """E3's shape: the seeds move both settings together (1.236 vs 1.256), the ordering never changes."""
    exp = Group("exponential", values=[1.2460, 1.2363, 1.2562], seeds=[0, 1, 2])
    cos = Group("cosine", values=[1.2561, 1.2490, 1.2718], seeds=[0, 1, 2])
    # seeds unknown
    assert "Welch's" in compare(Group("e", values=exp.values), Group("c", values=cos.values), "test/loss")
    assert "within the seed noise" in compare(Group("e", values=exp.values), Group("c", values=cos.values), "test/loss")
    sentence = compare(exp, cos, "test/loss")
    assert "paired t-test" in sentence and "is larger than the seed noise" in sentence and "p = 0.015" in sentence
    # pairs are matched by seed, not position
    shuffled = Group("cosine", values=[1.2718, 1.2561, 1.2490], seeds=[2, 0, 1])
    assert compare(exp, shuffled, "test/loss") == sentence.replace("cosine", "cosine")
    other_seeds = Group("cosine", values=cos.values, seeds=[3, 4, 5])
    assert "Welch's" in compare(exp, other_seeds, "test/loss")


def test_a_difference_inside_the_spread_is_no_difference():
    a, b = Group("exponential", values=[1.246, 1.262, 1.240]), Group("cosine", values=[1.251, 1.236, 1.266])
    sentence = compare(a, b, "test/loss")
    assert "within the seed noise" in sentence and "no difference" in sentence


def test_too_few_runs_are_said_to_be_too_few():
    assert "too few runs" in compare(Group("a", values=[1.0]), Group("b", values=[1.1, 1.2]), "test/loss")
    assert comparisons([Group("only", values=[1.0, 1.1])], "test/loss") == []  # one group: nothing to compare


def test_band_is_std_from_three_runs_and_min_max_below():
    assert band([1.0, 3.0]) == (2.0, 1.0, 3.0)
    mean, low, high = band([1.0, 2.0, 3.0])
    assert (mean, low, high) == pytest.approx((2.0, 1.0, 3.0))  # stdev of 1, 2, 3 is 1
    sd = statistics.stdev([1, 2, 6])
    assert band([1.0, 2.0, 6.0])[1:] == pytest.approx((3.0 - sd, 3.0 + sd))


def test_epoch_curve_takes_evals_by_epoch():
    history = [{"step": 0, "test/loss": 4.4, "epoch": 0.0}, {"step": 5, "train/loss": 2.0, "epoch": 0.5},
               {"step": 10, "test/loss": 2.1, "epoch": 1.0}, {"step": 20, "test/loss": float("nan"), "epoch": 2.0}]
    assert epoch_curve(history) == ([0.0, 1.0], [4.4, 2.1])


def test_a_seeds_sweep_reports_its_mean_and_spread(tmp_path: Path, tiny_config) -> None:
    """sweeps/seeds.yaml's shape (a grid over seed alone) on a tiny config: charexp sweep, then charexp report."""
    from charexp.sweep.command import run_sweep

    shipped = json.loads(json.dumps(__import__("yaml").safe_load((REPO / "sweeps" / "seeds.yaml").read_text())))
    assert list(shipped["parameters"]) == ["seed"] and len(shipped["parameters"]["seed"]["values"]) >= 3
    config = tiny_config(epochs=2, steps_per_epoch=4, sample_every=0, checkpoint_every=0, eval_every=0)
    sweep = {**shipped, "program": str(REPO / "train.py"), "parameters": {"seed": {"values": [0, 1, 2]}},
             "command": ["${env}", "${interpreter}", "${program}", "--config", str(config), "${args}"]}
    (tmp_path / "sweep.yaml").write_text(json.dumps(sweep), encoding="utf-8")
    assert run_sweep(Path("sweep.yaml"), None, workers=1) == "finished"
    (sweep_dir,) = (tmp_path / "sweep-runs").iterdir()
    state = json.loads((sweep_dir / "state.json").read_text(encoding="utf-8"))
    metrics = [run["metric"] for run in state["runs"]]
    assert len(metrics) == 3 and len(set(metrics)) == 3  # three seeds, three different results on one test set

    result = CliRunner().invoke(app, ["report", str(sweep_dir)])
    assert result.exit_code == 0, result.output
    runs_md = (sweep_dir / "report" / "runs.md").read_text(encoding="utf-8")
    row = next(line for line in runs_md.splitlines() if line.startswith("| all runs |"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[1] == "3" and float(cells[2]) == pytest.approx(statistics.mean(metrics), abs=1e-4)
    assert float(cells[3]) == pytest.approx(statistics.stdev(metrics), abs=1e-4)
    assert float(cells[4]) == pytest.approx(min(metrics), abs=1e-4)
    assert "![test_loss_groups](test_loss_groups.png)" in runs_md
    assert_figure(sweep_dir / "report" / "test_loss_groups.png", BLUE)
