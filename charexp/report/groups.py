"""Replicates: a sweep's runs that differ only in seed, as groups with a mean and a spread.

A seed changes the initialisation, batch order, dropout and sampling, never the test set (that is
split_seed), so the runs of one group measure the same thing and their spread is the run-to-run noise.
Two groups differ only when their means are further apart than that noise allows. The rule is a two-sided
t-test at p < 0.05: paired by seed (scipy.stats.ttest_rel) when both groups ran the same seeds, because one
seed gives both settings the same initialisation and batch order, so the seed's own luck cancels in the
difference; otherwise Welch's test (scipy.stats.ttest_ind with unequal variances).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from charexp.config import NOT_THE_EXPERIMENT
from charexp.report.plots import LN2, bpc_axis, new_figure, nothing_yet, save
from charexp.summary_view import fmt, param_text

ALPHA = 0.05
RULE = f"a two-sided t-test at p < {ALPHA:g}, paired by seed when both groups ran the same seeds, else Welch's"


@dataclass
class Group:
    """Runs whose swept values agree on everything but seed (and keys that never change training)."""

    label: str  # the swept values that define it, e.g. "lr_schedule=cosine" ("all runs" when only seed varies)
    run_ids: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)  # the metric of each run that has one
    seeds: list[Any] = field(default_factory=list)  # the seed of each of those runs (None when unknown)
    curves: list[tuple[list[float], list[float]]] = field(default_factory=list)  # (epochs, test/loss) per run

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.mean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (n - 1); None below 2 runs."""
        return statistics.stdev(self.values) if self.n >= 2 else None

    def best(self, goal: str) -> float | None:
        if not self.values:
            return None
        return max(self.values) if goal == "maximize" else min(self.values)


def group_key(params: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """What a run's group is made of: its swept values, less seed and the keys that never change training."""
    return tuple(sorted((k, repr(v)) for k, v in params.items() if k not in NOT_THE_EXPERIMENT))


def group_label(params: dict[str, Any], swept: Sequence[str]) -> str:
    shown = [f"{k}={param_text(params.get(k))}" for k in swept if k not in NOT_THE_EXPERIMENT and k in params]
    return " ".join(shown) or "all runs"


def build_groups(runs: Sequence[Any], swept: Sequence[str], metric: Any, goal: str) -> list[Group]:
    """One Group per replicate set, best mean first (groups without a metric last). `runs` are
    report.sweep.SweepRun; `metric(run)` is the run's value of the sweep's metric, or None."""
    groups: dict[tuple[tuple[str, str], ...], Group] = {}
    for run in runs:
        group = groups.setdefault(group_key(run.params), Group(group_label(run.params, swept)))
        group.run_ids.append(run.run_id)
        value = metric(run)
        if value is not None:
            group.values.append(float(value))
            config = run.data.config if run.data is not None else {}
            group.seeds.append(run.params.get("seed", config.get("seed")))
        if run.data is not None:
            group.curves.append(epoch_curve(run.data.history))
    sign = -1.0 if goal == "maximize" else 1.0
    return sorted(groups.values(), key=lambda g: (g.mean is None, sign * (g.mean or 0.0)))


def epoch_curve(history: Sequence[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """(epoch, test/loss) of every eval in a run's history, later rows winning at the same epoch."""
    points: dict[float, float] = {}
    for row in history:
        loss, epoch = row.get("test/loss"), row.get("epoch")
        if isinstance(loss, (int, float)) and isinstance(epoch, (int, float)) and math.isfinite(loss):
            points[round(float(epoch), 4)] = float(loss)
    xs = sorted(points)
    return xs, [points[x] for x in xs]


def compare(first: Group, second: Group, name: str) -> str:
    """One plain sentence: is the difference of the two groups' mean `name` larger than the seed noise?"""
    from scipy import stats

    if first.n < 2 or second.n < 2:
        return (f"{first.label} vs {second.label}: too few runs to tell a difference from the noise (n = {first.n} and "
                f"{second.n}; run at least 2 seeds of each, 3 or more for a fair estimate of the spread).")
    diff = first.mean - second.mean  # type: ignore[operator]
    head = (f"{first.label} ({first.mean:.4f} ± {first.std:.4f}, n = {first.n}) vs {second.label} ({second.mean:.4f} ± "
            f"{second.std:.4f}, n = {second.n}): the difference of mean {name}, {diff:+.4f},")
    if first.std == 0 and second.std == 0:
        verdict = "is larger than the noise (every run of each group got the same value)" if diff else "is zero"
        return f"{head} {verdict}."
    pairs = paired(first, second)
    if pairs:
        test = "paired t-test over the seeds both ran"
        p = float(stats.ttest_rel([a for a, _ in pairs], [b for _, b in pairs]).pvalue)
    else:
        test = "Welch's t-test"
        p = float(stats.ttest_ind(first.values, second.values, equal_var=False).pvalue)
    if p != p:  # nan: the paired differences are all equal, so there is no spread to test against
        return f"{head} is the same for every seed ({test}: no spread), a difference the seeds do not blur."
    if p < ALPHA:
        return f"{head} is larger than the seed noise ({test}, two-sided: p = {p:.3g} < {ALPHA:g})."
    return f"{head} is within the seed noise ({test}, two-sided: p = {p:.3g} ≥ {ALPHA:g}), so this is no difference."


def paired(first: Group, second: Group) -> list[tuple[float, float]]:
    """(first, second) values by seed when both groups ran exactly the same seeds, each once; else []."""
    a, b = dict(zip(first.seeds, first.values)), dict(zip(second.seeds, second.values))
    same = len(a) == first.n and len(b) == second.n and set(a) == set(b) and None not in a
    return [(a[seed], b[seed]) for seed in sorted(a, key=repr)] if same and len(a) >= 2 else []


def comparisons(groups: Sequence[Group], name: str) -> list[str]:
    """The best group against the runner-up (the comparison a sweep is run for); nothing for a single group."""
    ranked = [g for g in groups if g.mean is not None]
    return [compare(ranked[0], ranked[1], name)] if len(ranked) >= 2 else []


def band(ys_by_run: list[float]) -> tuple[float, float, float]:
    """(mean, low, high): ± one standard deviation from 3 runs on, min–max below that."""
    mean = statistics.mean(ys_by_run)
    if len(ys_by_run) >= 3:
        sd = statistics.stdev(ys_by_run)
        return mean, mean - sd, mean + sd
    return mean, min(ys_by_run), max(ys_by_run)


def plot_groups(groups: Sequence[Group], path: Path) -> Path:
    """Per-epoch mean test/loss of each group with its band: ± std for n ≥ 3, min–max for fewer runs."""
    fig, ax = new_figure("test loss by group (runs that differ only in seed): mean and spread", "epoch",
                         "test/loss (nats per char)")
    drawn: list[tuple[list[float], list[float]]] = []
    for group in groups:
        by_epoch: dict[float, list[float]] = {}
        for xs, ys in group.curves:
            for x, y in zip(xs, ys):
                if x > 0:  # an eval at epoch 0 scores the untrained weights (reject_worse's baseline): not a result
                    by_epoch.setdefault(x, []).append(y)
        if not by_epoch:
            continue
        epochs = sorted(by_epoch)
        stats = [band(by_epoch[e]) for e in epochs]
        means = [s[0] for s in stats]
        n = max(len(v) for v in by_epoch.values())
        spread = "± std" if n >= 3 else "min–max"
        line = ax.plot(epochs, means, marker="o", markersize=3, linewidth=1.4,
                       label=f"{group.label} (n={n}, {spread})"[:70])
        if n >= 2:
            ax.fill_between(epochs, [s[1] for s in stats], [s[2] for s in stats], color=line[0].get_color(), alpha=0.2,
                            linewidth=0)
        drawn.append((epochs, means))
    if drawn:
        ax.legend(fontsize=7, loc="best")
        bpc_axis(ax)
    else:
        nothing_yet(ax, "test/loss")
    return save(fig, path)


def groups_markdown(groups: Sequence[Group], name: str, goal: str) -> str:
    """The group table (n, mean, std, best) and the comparison sentence."""
    lines = ["## Groups: runs that differ only in seed", "",
             f"Each row is one setting; its runs share the test set (split_seed) and differ in seed. "
             f"Spread is the sample standard deviation over its runs. Rule for a difference: {RULE}.", "",
             f"| group | n | mean {name} | std | best | mean bpc | runs |", "|---|---|---|---|---|---|---|"]
    for g in groups:
        mean_bpc = fmt(g.mean / LN2, 4) if g.mean is not None and name == "test/loss" else "-"
        lines.append(f"| {g.label} | {g.n} | {fmt(g.mean)} | {fmt(g.std)} | {fmt(g.best(goal))} | {mean_bpc} "
                     f"| {', '.join(g.run_ids)} |")
    lines += ["", *comparisons(groups, name), ""]
    return "\n".join(lines)
