"""The sweep report's parallel-coordinates figure: one vertical axis per swept parameter plus the metric,
one line per run, coloured by the metric (best runs drawn on top).

Matplotlib has no parallel-coordinates axes, so each vertical axis is a twin of one hidden host axes:
the twin keeps the parameter's own scale and ticks (log for positive values spanning two decades or
more, one evenly spaced tick per category), and each run's line is drawn on the host at the fraction
of each axis its value sits at.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from charexp.numbers import finite
from charexp.report.plots import DPI, nothing_yet, save, spans_decades
from charexp.summary_view import param_text

CMAP = "viridis"
PAD = 0.03  # each axis's share left empty above and below its range, so no line is clipped at an end


class ParallelAxis:
    """One vertical axis: where a value sits on it (0 at the bottom, 1 at the top) and how to draw its ticks."""

    def __init__(self, name: str, values: Sequence[Any]):
        self.name = name
        self.numeric = all(finite(v) for v in values)
        self.log = self.numeric and spans_decades(list(values))
        self.labels = [] if self.numeric else sorted({param_text(v) for v in values})
        if self.numeric:  # the limits in scale units (log10 on a log axis); a single value sits in the middle
            scaled = [self.scale(v) for v in values]
            half = 0.0 if max(scaled) > min(scaled) else (math.log10(2) if self.log else 0.5)
            self.low, self.high = min(scaled) - half, max(scaled) + half
        else:  # one evenly spaced tick per category, half a step from the ends
            self.low, self.high = 0.0, float(len(self.labels))

    def scale(self, value: Any) -> float:
        if not self.numeric:
            return self.labels.index(param_text(value)) + 0.5
        return math.log10(float(value)) if self.log else float(value)

    def fraction(self, value: Any) -> float:
        return (self.scale(value) - self.low) / (self.high - self.low)

    def style(self, ax: Any) -> None:
        """Scale, limits (padded by PAD, as the host is) and ticks of this axis's twin, matching `fraction`."""
        pad = PAD * (self.high - self.low)
        low, high = self.low - pad, self.high + pad
        if self.log:
            ax.set_yscale("log")
            low, high = 10**low, 10**high
        ax.set_ylim(low, high)
        if not self.numeric:
            ax.set_yticks([i + 0.5 for i in range(len(self.labels))], self.labels)


def plot_parallel(runs: Sequence[tuple[Mapping[str, Any], float | None]], params: Sequence[str], metric: str, goal: str,
                  path: Path) -> Path:
    """One line per run that has the metric and every swept parameter, across one axis per parameter and the metric."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    rows = [(p, float(m)) for p, m in runs if finite(m) and all(p.get(n) is not None for n in params)]
    names = [*params, metric]
    fig = Figure(figsize=(max(7.0, 1.8 * len(names)), 4.5), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.06, right=0.86, bottom=0.1, top=0.84)
    host = fig.add_subplot()
    host.set_title(f"parallel coordinates: {len(rows)} runs, coloured by {metric} ({goal})", pad=16)
    if not rows:
        nothing_yet(host, metric)
        return save(fig, path)
    axes = [ParallelAxis(name, [p[name] for p, _ in rows]) for name in params]
    axes.append(ParallelAxis(metric, [m for _, m in rows]))
    span = max(len(axes) - 1, 1)
    host.set_xlim(0, span)
    host.set_ylim(-PAD, 1 + PAD)
    host.set_xticks(range(len(axes)), [a.name for a in axes])
    host.yaxis.set_visible(False)
    for side in ("left", "right", "top", "bottom"):
        host.spines[side].set_visible(False)
    for i, axis in enumerate(axes):
        twin = host.twinx()
        axis.style(twin)
        twin.spines["right"].set_position(("axes", i / span))
        for side in ("left", "top", "bottom"):
            twin.spines[side].set_visible(False)
        twin.tick_params(axis="y", labelsize=8)
    # best last, so that it is drawn on top of the rest
    rows.sort(key=lambda row: row[1] if goal == "maximize" else -row[1])
    lines = [[(i, axis.fraction(v)) for i, (axis, v) in enumerate(zip(axes, [*(p[n] for n in params), m]))]
             for p, m in rows]
    metrics = [m for _, m in rows]
    cmap = colormaps[CMAP if goal == "maximize" else f"{CMAP}_r"]  # the best runs bright, the worst dark
    collection = LineCollection(lines, cmap=cmap, norm=Normalize(min(metrics), max(metrics)), linewidths=1.8, alpha=0.9)
    collection.set_array(metrics)
    host.add_collection(collection)
    return save(fig, path)
