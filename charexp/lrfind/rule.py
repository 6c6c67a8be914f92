"""The learning-rate range test's suggestion rule, as plain functions of the measured curve.

The rule, in order (each step is a failure mode users of other finders report):
1. Cut the curve at its first non-finite loss (fastai #3476: NaN tails).
2. Smooth it without lag: a running median of 5 removes isolated spikes (Lightning #1767), then a centred
   Gaussian. An EMA, as Lightning and fastai use, lags behind the ramp; with 100 steps over 8 decades its
   50-step memory is 4 decades of learning rate.
3. Cut where the smoothed loss first exceeds `diverge` times its lowest value so far: the run has diverged.
4. Skip the first `skip_start` points, where the fresh optimizer's statistics are still warming up, and the
   flat head of the curve, up to where the smoothed loss is first FLAT (2%) below its value there: at rates
   too small to learn anything, its tiny drifts would otherwise stretch the descent over decades.
5. Suggest the middle of the longest descent: the longest strictly decreasing subsequence of the smoothed
   loss (fastai's `valley`), halfway between its first and last point on the log-lr axis.
The steepest slope, taken against log10(lr) (Lightning #14248 took it against lr), and the lowest loss / 10
are reported beside it, not used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d, median_filter

np.finfo(np.float64), np.finfo(np.float32)  # cached now: computed after torch flushes denormals, numpy would warn

SKIP_START = 10
DIVERGE = 4.0
SMOOTH_DECADES = 0.05  # the Gaussian's sigma, in decades of lr
FLAT = 0.02  # a descent smaller than this fraction of the starting loss is no descent
MIN_POINTS = 20


@dataclass(frozen=True)
class Suggestion:
    lr: float | None  # the suggestion; None when the curve gives none (`reason` says why)
    reason: str  # one line: how it was chosen, or why there is none
    smoothed: list[float]  # the smoothed loss over the usable part of the curve (indices 0..end-1)
    end: int  # points used: the curve is cut here (non-finite or diverged)
    valley: tuple[int, int] | None = None  # first and last index of the longest descent
    index: int | None = None  # the suggested point
    steepest_lr: float | None = None
    min_lr: float | None = None  # the lr of the lowest smoothed loss
    still_falling: bool = False  # the lowest loss is at the end of the range: the range may end too early

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def smooth(losses: np.ndarray, sigma: float) -> np.ndarray:
    """Running median of 5 (spikes), then a centred Gaussian of `sigma` points (noise); no lag either way."""
    if len(losses) == 0:
        return losses
    robust = median_filter(losses, size=min(5, len(losses)), mode="nearest")
    return gaussian_filter1d(robust, sigma, mode="nearest") if sigma > 0 else robust


def first_non_finite(losses: np.ndarray) -> int:
    bad = np.flatnonzero(~np.isfinite(losses))
    return int(bad[0]) if len(bad) else len(losses)


def divergence_point(smoothed: np.ndarray, diverge: float, skip_start: int) -> int:
    """The first index (after the warm-up) where the loss exceeds `diverge` x its lowest so far; len if none."""
    lowest = np.minimum.accumulate(smoothed)
    over = np.flatnonzero(smoothed[skip_start:] > diverge * lowest[skip_start:])
    return skip_start + int(over[0]) if len(over) else len(smoothed)


def longest_descent(values: np.ndarray) -> tuple[int, int]:
    """First and last index of the longest strictly decreasing subsequence (the first one found, on ties)."""
    n = len(values)
    length = np.ones(n, dtype=np.int64)
    previous = np.full(n, -1, dtype=np.int64)
    for i in range(1, n):
        higher = np.flatnonzero(values[:i] > values[i])
        if len(higher):
            j = higher[np.argmax(length[higher])]
            length[i], previous[i] = length[j] + 1, j
    last = int(np.argmax(length))
    first = last
    while previous[first] >= 0:
        first = int(previous[first])
    return first, last


def steps_per_decade(lrs: np.ndarray) -> float:
    span = math.log10(lrs[-1] / lrs[0]) if len(lrs) > 1 and lrs[0] > 0 else 0.0
    return (len(lrs) - 1) / span if span > 0 else 1.0


def suggest(lrs: list[float] | np.ndarray, losses: list[float] | np.ndarray, skip_start: int = SKIP_START,
            diverge: float = DIVERGE, smooth_decades: float = SMOOTH_DECADES) -> Suggestion:
    """The suggested learning rate for a range test that measured `losses` at the increasing `lrs`."""
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    if len(lrs) != len(losses):
        raise ValueError("lrs and losses differ in length")
    end = first_non_finite(losses)
    smoothed = smooth(losses[:end], smooth_decades * steps_per_decade(lrs))
    end = divergence_point(smoothed, diverge, skip_start)
    smoothed = smoothed[:end]
    curve = [float(x) for x in smoothed]
    if end - skip_start < MIN_POINTS:
        return Suggestion(None, f"only {max(end - skip_start, 0)} usable points before the loss diverged or became "
                          f"non-finite (at lr {lrs[min(end, len(lrs) - 1)]:.3g}); lower --start-lr or raise --steps",
                          curve, end)
    part = smoothed[skip_start:]
    lowest = skip_start + int(np.argmin(part))
    still_falling = lowest >= end - max(2, (end - skip_start) // 20) and end == len(lrs)
    drop = part[0] - part.min()
    if drop < FLAT * part[0]:
        return Suggestion(None, f"the loss barely fell ({part[0]:.4g} to {part.min():.4g}) between lr "
                          f"{lrs[skip_start]:.3g} and {lrs[end - 1]:.3g}; the model does not learn in this range: "
                          "widen it", curve, end,
                          min_lr=float(lrs[lowest]))
    falling = skip_start + int(np.flatnonzero(part <= (1 - FLAT) * part[0])[0])  # the end of the flat head
    first, last = (falling + i for i in longest_descent(smoothed[falling:]))
    index = first + (last - first) // 2  # the ramp is exponential: the middle index is the middle on log(lr)
    slope = np.gradient(smoothed, np.log10(lrs[:end])) if end > 1 else np.zeros(end)
    steepest = skip_start + int(np.argmin(slope[skip_start:]))
    reason = f"the middle of the longest descent of the smoothed loss, lr {lrs[first]:.3g} to {lrs[last]:.3g}"
    if still_falling:
        reason += f"; the loss was still falling at the end of the range (lr {lrs[end - 1]:.3g}): raise --end-lr"
    return Suggestion(float(lrs[index]), reason, curve, end, (first, last), index, float(lrs[steepest]),
                      float(lrs[lowest]), still_falling)


def bracket(lr: float, factor: float = 3.0) -> list[float]:
    """Three rates around a suggestion for a small grid: lr / factor, lr, lr x factor, at 2 significant digits."""
    return [float(f"{lr * m:.2g}") for m in (1 / factor, 1.0, factor)]
