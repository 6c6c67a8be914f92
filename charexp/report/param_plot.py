"""`final_test_loss_vs_<param>.png`: a sweep's final test loss against one swept parameter.

The points are told apart by the other swept parameters (one colour per combination of their values, in
the legend), because that is what a reader compares: lr against loss for each lr_decay, say. Runs that
differ only in seed (replicates) share a colour. A finished run is a dot, one that stopped early a cross.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from charexp.config import NOT_THE_EXPERIMENT
from charexp.report.groups import group_label
from charexp.report.plots import bpc_axis, new_figure, nothing_yet, readable_log_ticks, save, use_log_x

if TYPE_CHECKING:
    from charexp.report.sweep import SweepRun

DONE_STATES = ("finished",)
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive",
           "tab:cyan", "tab:gray")
OTHERS_GREY = "0.75"


def x_positions(name: str, values: list[Any], ax: Any) -> list[float]:
    """Numeric values as they are (log axis for lr or more than a decade, with readable ticks); anything else
    as evenly spaced categories."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        xs = [float(v) for v in values]
        if use_log_x(name, xs):
            ax.set_xscale("log")
            readable_log_ticks(ax.xaxis, xs)
        return xs
    labels = sorted({str(v) for v in values})
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlim(-0.5, len(labels) - 0.5)
    return [float(labels.index(str(v))) for v in values]


def param_figure(name: str, params: Sequence[str], runs: list[SweepRun]) -> Any:
    """The figure for parameter `name` of a sweep that varies `params`."""
    fig, ax = new_figure(f"final test loss against {name}", name, "final test/loss (nats per char)")
    runs = [run for run in runs if name in run.params and run.final_test_loss is not None]
    if not runs:
        nothing_yet(ax, "final test/loss")
        return fig
    xs = x_positions(name, [run.params[name] for run in runs], ax)
    others = [p for p in params if p != name]
    labels = [group_label(run.params, others) for run in runs]  # seed left out: replicates share a colour
    told_apart = [p for p in others if p not in NOT_THE_EXPERIMENT]
    order = sorted(set(labels), key=lambda label: min(r.final_test_loss for r, lb in zip(runs, labels) if lb == label))
    shown = order[: len(COLOURS)]  # the best settings first; more colours would not be told apart
    for label in order:
        colour = COLOURS[shown.index(label)] if label in shown else OTHERS_GREY
        points = [(x, run) for x, run, lb in zip(xs, runs, labels) if lb == label]
        mean_by_x: dict[float, list[float]] = {}
        for x, run in points:
            if run.state in DONE_STATES:
                mean_by_x.setdefault(x, []).append(run.final_test_loss)  # type: ignore[arg-type]
        if len(mean_by_x) > 1:  # a line through the setting's finished runs: the trend along `name`
            line = sorted((x, sum(v) / len(v)) for x, v in mean_by_x.items())
            ax.plot(*zip(*line), color=colour, linewidth=1, alpha=0.6, zorder=2)
        for done, marker in ((True, "o"), (False, "x")):
            chosen = [(x, run.final_test_loss) for x, run in points if (run.state in DONE_STATES) == done]
            if chosen:
                legend = label if label in shown and done == any(r.state in DONE_STATES for _, r in points) else None
                ax.scatter(*zip(*chosen), marker=marker, s=40, color=colour, zorder=3, label=legend)
    rest = len(order) - len(shown)
    if rest:
        ax.scatter([], [], marker="o", color=OTHERS_GREY, label=f"{rest} other setting{'s' * (rest > 1)}")
    if any(run.state not in DONE_STATES for run in runs):
        ax.scatter([], [], marker="x", color="0.3", label="× stopped early / failed")
    title = ", ".join(told_apart) + (" (seeds share a colour)" if "seed" in others else "")
    ax.legend(loc="best", fontsize=8, title=title.strip() or None, title_fontsize=8)
    bpc_axis(ax)
    return fig


def plot_param(name: str, params: Sequence[str], runs: list[SweepRun], path: Path) -> Path:
    return save(param_figure(name, params, runs), path)
