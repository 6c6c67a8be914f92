"""Matplotlib figures for `charexp report`: small PNGs drawn with the Agg canvas, written atomically.

No pyplot: each figure is a standalone `Figure` on a `FigureCanvasAgg`, so nothing depends on
(or changes) the process-wide backend, and a report can be drawn inside a training process.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

from charexp.atomic import atomic_write_bytes

DPI = 100
SIZE = (7.0, 4.0)  # inches: 700x400 px at DPI, a few tens of KB per PNG
# fixed: constrained layout would draw every figure twice
MARGINS = {"left": 0.1, "right": 0.9, "bottom": 0.12, "top": 0.87}
LN2 = math.log(2)


def series(rows: Iterable[dict[str, Any]], key: str, x: str = "step") -> tuple[list[float], list[float]]:
    """(x, y) of the rows that hold a finite `key` (and `x`)."""
    xs, ys = [], []
    for row in rows:
        value, at = row.get(key), row.get(x)
        if isinstance(value, (int, float)) and isinstance(at, (int, float)) and math.isfinite(value):
            xs.append(float(at))
            ys.append(float(value))
    return xs, ys


def new_figure(title: str, xlabel: str, ylabel: str) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(**MARGINS)
    ax = fig.add_subplot()
    ax.set_title(title, pad=16)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def save(fig: Any, path: Path) -> Path:
    """PNG bytes into a temp file, then rename: a reader never sees half a figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def nothing_yet(ax: Any, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} logged yet", ha="center", va="center", transform=ax.transAxes, color="0.4",
            fontsize=12)


def epoch_boundaries(rows: Sequence[dict[str, Any]]) -> list[tuple[float, int]]:
    """(step, n) where epoch n ends, from the logged (step, epoch) pairs: the first step whose epoch reaches n."""
    marks: dict[int, float] = {}
    for row in sorted(rows, key=lambda r: r.get("step", 0)):
        epoch, step = row.get("epoch"), row.get("step")
        if isinstance(epoch, (int, float)) and isinstance(step, (int, float)) and epoch >= 1:
            marks.setdefault(int(epoch), float(step))
    return sorted((step, n) for n, step in marks.items())


def mark_epochs(ax: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Dotted vertical lines at epoch ends, named on a top axis (clear of legends and curves)."""
    marks = epoch_boundaries(rows)
    if not marks:
        return
    for step, _ in marks:
        ax.axvline(step, color="0.6", linestyle=":", linewidth=1)
    top = ax.secondary_xaxis("top")
    top.set_xticks([step for step, _ in marks], labels=[f"epoch {n}" for _, n in marks], fontsize=8, color="0.35")
    top.tick_params(length=0)


def rejections(rows: Sequence[dict[str, Any]]) -> list[tuple[float, int]]:
    """(step, epoch) of every epoch that reject_worse threw away."""
    return sorted((float(r["step"]), int(r["rejected_epoch"])) for r in rows
                  if isinstance(r.get("rejected_epoch"), (int, float)) and "step" in r)


def mark_rejections(ax: Any, rows: Sequence[dict[str, Any]]) -> None:
    """A red dashed line where each rejected epoch ended: the weights went back, the rate dropped."""
    for i, (step, epoch) in enumerate(rejections(rows)):
        ax.axvline(step, color="tab:red", linestyle="--", linewidth=1.2, alpha=0.8,
                   label="rejected epoch (weights restored, lr cut)" if i == 0 else None)
        ax.annotate(f"epoch {epoch} rejected", xy=(step, 0.02), xycoords=("data", "axes fraction"), rotation=90,
                    ha="right", va="bottom", fontsize=8, color="tab:red")


def scale_to_training(ax: Any, curves: Iterable[tuple[list[float], list[float]]]) -> None:
    """Fit the y axis to the evals after step 0 when a step-0 eval (reject_worse's score of the starting
    weights, about ln(vocabulary) for a fresh model) would flatten every later difference; say where it went."""
    curves = list(curves)
    later = [y for xs, ys in curves for x, y in zip(xs, ys) if x > 0]
    start = [y for xs, ys in curves for x, y in zip(xs, ys) if x <= 0]
    if not later or not start or max(start) <= max(later):
        return
    low, high = min(later), max(later)
    pad = (high - low) * 0.1 or 0.05
    ax.set_ylim(low - pad, high + pad)
    ax.annotate(f"step 0: {max(start):.2f} (above the scale)", xy=(0.01, 0.98), xycoords="axes fraction",
                ha="left", va="top", fontsize=8, color="0.4")


def bpc_axis(ax: Any) -> None:
    """A right-hand axis in bits per character (nats / ln 2)."""
    axis = ax.secondary_yaxis("right", functions=(lambda nats: nats / LN2, lambda bits: bits * LN2))
    axis.set_ylabel("bits per char")


def finish(ax: Any, drawn: bool, what: str, rows: Sequence[dict[str, Any]], bpc: bool) -> None:
    """Legend, a bits-per-char axis (for losses) and epoch marks when something was drawn, else a note."""
    if drawn:
        mark_rejections(ax, rows)
        ax.legend(loc="best")
        if bpc:
            bpc_axis(ax)
        mark_epochs(ax, rows)
    else:
        nothing_yet(ax, what)


def smooth(ys: list[float], weight: float = 0.9) -> list[float]:
    """Debiased exponential moving average, as in TensorBoard/W&B's smoothing slider."""
    out, avg = [], 0.0
    for i, y in enumerate(ys, start=1):
        avg = weight * avg + (1 - weight) * y
        out.append(avg / (1 - weight**i))
    return out


def use_log_x(name: str, values: Sequence[float]) -> bool:
    """Log x-axis for learning rates and for any positive parameter whose values span more than a decade."""
    positive = [v for v in values if v > 0]
    if len(positive) != len(values) or not positive:
        return False
    return name == "lr" or name.endswith("_lr") or max(positive) / min(positive) > 10


def spans_decades(values: Sequence[float], decades: float = 2.0) -> bool:
    """Positive values spanning at least `decades` powers of ten: the parallel-coordinates figure draws them on a
    log axis and the importance table correlates their log10 (on a linear scale the largest values would decide)."""
    positive = [float(v) for v in values if v > 0]
    return bool(positive) and len(positive) == len(values) and max(positive) / min(positive) >= 10**decades


MIN_LOG_TICKS = 3
# Multiples of each power of ten to tick at, fewest first: matplotlib's default labels only the powers of ten,
# which leaves a sweep over less than a decade (0.003 to 0.012) with one label or none.
LOG_SUBS = ((1.0,), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 5.0), (1.0, 1.5, 2.0, 3.0, 5.0, 7.0),
            tuple(float(d) for d in range(1, 10)))


def readable_log_ticks(axis: Any, values: Sequence[float]) -> None:
    """At least MIN_LOG_TICKS labelled ticks within the values' range on a log `axis` (ax.xaxis), at the
    sparsest multiples of powers of ten that give them, labelled as the values are written in a sweep YAML
    (0.003, 1e-05). A range too narrow even for that is labelled at the values themselves."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    low, high = min(values), max(values)
    for subs in LOG_SUBS:
        locator = LogLocator(base=10, subs=subs, numticks=40)
        if sum(low <= t <= high for t in locator.tick_values(low, high)) >= MIN_LOG_TICKS:
            axis.set_major_locator(locator)
            break
    else:  # the values tried, or both ends and their geometric middle
        ticks = sorted(set(values))
        axis.set_major_locator(FixedLocator(ticks if len(ticks) >= MIN_LOG_TICKS else
                                            [low, math.sqrt(low * high), high]))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))
    axis.set_minor_formatter(NullFormatter())  # minor ticks stay as grid marks; their labels would overlap

