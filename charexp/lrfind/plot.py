"""The range test's figure: loss against learning rate on a log axis, with the suggestion marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from charexp.lrfind.finder import Curve
from charexp.lrfind.rule import Suggestion
from charexp.report.plots import new_figure, save


def plot_range_test(curve: Curve, suggestion: Suggestion, path: Path, title: str) -> Path:
    fig, ax = new_figure(title, "learning rate (log scale)", "training loss (nats/char)")
    ax.set_xscale("log")
    lrs, losses = np.asarray(curve.lrs), np.asarray(curve.losses, dtype=float)
    finite = np.isfinite(losses)
    ax.plot(lrs[finite], losses[finite], color="0.75", linewidth=0.8, label="loss per batch")
    smoothed = np.asarray(suggestion.smoothed)
    ax.plot(lrs[: len(smoothed)], smoothed, color="C0", linewidth=2, label="smoothed (median 5, then Gaussian)")
    if suggestion.valley:
        first, last = suggestion.valley
        ax.axvspan(lrs[first], lrs[last], color="C0", alpha=0.08, label="longest descent")
    if suggestion.lr is not None and suggestion.index is not None:
        ax.axvline(suggestion.lr, color="C3", linestyle="--", linewidth=1.2)
        ax.plot([suggestion.lr], [smoothed[suggestion.index]], "o", color="C3", label=f"suggestion {suggestion.lr:.2g}")
    if suggestion.steepest_lr:
        ax.axvline(suggestion.steepest_lr, color="C2", linestyle=":", linewidth=1,
                   label=f"steepest {suggestion.steepest_lr:.2g}")
    if suggestion.min_lr:
        ax.axvline(suggestion.min_lr / 10, color="C1", linestyle=":", linewidth=1,
                   label=f"lowest / 10 = {suggestion.min_lr / 10:.2g}")
    if len(smoothed):  # the diverged tail would flatten the part that matters
        top = float(np.max(smoothed[: max(len(smoothed) // 10, 1)]))
        ax.set_ylim(float(np.min(smoothed)) * 0.95, max(top, float(np.min(smoothed))) * 1.15)
    ax.legend(loc="upper left", fontsize=8)
    return save(fig, path)
