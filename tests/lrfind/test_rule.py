"""The suggestion rule as a plain function, on curves with the shapes that fool other finders (issue 20):
early spikes, NaN tails, flat curves, curves with no minimum, and a flat head before the descent."""

from __future__ import annotations

import math

import numpy as np
import pytest

from charexp.lrfind.rule import bracket, longest_descent, suggest

LRS = np.geomspace(1e-6, 1.0, 300)
LOG = np.log10(LRS)


def descent(low: float = -4.0, high: float = -1.5, diverge_at: float = -0.7, noise: float = 0.02, seed: int = 0):
    """Loss 4 at small rates, falling (linearly in log lr) between 10^low and 10^high to 2, rising after diverge_at."""
    rng = np.random.default_rng(seed)
    frac = np.clip((LOG - low) / (high - low), 0, 1)
    loss = 4.0 - 2.0 * frac + np.where(LOG > diverge_at, 30 * (LOG - diverge_at) ** 2, 0)
    return loss + rng.normal(0, noise, len(LRS))


def test_a_clean_descent_is_suggested_in_its_middle_on_the_log_axis():
    s = suggest(LRS, descent())
    assert s.lr is not None and not s.still_falling
    assert abs(math.log10(s.lr) - (-4.0 + -1.5) / 2) < 0.35  # the descent's middle, 10^-2.75
    first, last = s.valley
    assert -4.2 < LOG[first] < -3.5 and -1.8 < LOG[last] < -0.8
    assert s.min_lr == pytest.approx(10 ** -1.5, rel=1.5)


def test_the_steepest_slope_is_taken_against_log_lr_not_lr():
    """A gentle descent over two decades, then a steep one over half a decade. Per decade the steep one is
    steeper; per unit of lr the gentle one is (1/lr is large there), which is what a linear axis would pick."""
    gentle = np.clip((LOG + 4.0) / 2.0, 0, 1) * 0.5
    steep = np.clip((LOG + 1.6) / 0.5, 0, 1) * 1.5
    loss = 4.0 - gentle - steep + np.where(LOG > -0.7, 30 * (LOG + 0.7) ** 2, 0)
    s = suggest(LRS, loss)
    assert -1.7 < math.log10(s.steepest_lr) < -1.0


def test_spikes_do_not_move_the_suggestion():
    clean = suggest(LRS, descent())
    spiky = descent()
    spiky[[12, 13, 60, 150, 151, 200]] += [40.0, 25.0, 15.0, 30.0, 30.0, 20.0]  # early and mid-descent
    s = suggest(LRS, spiky)
    assert s.lr is not None and abs(math.log10(s.lr / clean.lr)) < 0.1
    assert s.end == clean.end  # no spike was taken for divergence


def test_a_nan_tail_is_cut_at_the_first_nan():
    loss = descent(diverge_at=0.5)  # no divergence before the NaNs
    first_nan = int(np.searchsorted(LOG, -1.0))
    loss[first_nan:] = np.nan
    loss[first_nan + 5] = 1.0  # a finite value after the first NaN is not trusted either
    s = suggest(LRS, loss)
    assert s.end == first_nan and len(s.smoothed) == first_nan
    assert s.lr is not None and s.lr < LRS[first_nan]
    assert all(math.isfinite(x) for x in s.smoothed)


def test_an_infinite_loss_counts_as_a_nan():
    loss = descent()
    loss[100] = math.inf
    assert suggest(LRS, loss).end == 100


def test_a_flat_curve_gives_no_suggestion_and_says_why():
    rng = np.random.default_rng(1)
    s = suggest(LRS, 4.0 + rng.normal(0, 0.01, len(LRS)))
    assert s.lr is None and "barely fell" in s.reason and "widen" in s.reason


def test_a_curve_with_no_minimum_is_flagged_and_asks_for_a_wider_range():
    loss = 4.0 - 2.0 * np.clip((LOG + 5) / 5, 0, 1)  # still falling at lr 1
    s = suggest(LRS, loss)
    assert s.still_falling and s.lr is not None
    assert "still falling" in s.reason and "--end-lr" in s.reason


def test_a_curve_that_diverges_at_once_gives_no_suggestion():
    loss = np.concatenate([np.full(15, 4.0), np.full(len(LRS) - 15, 40.0)])
    s = suggest(LRS, loss)
    assert s.lr is None and "usable points" in s.reason and "--start-lr" in s.reason


def test_a_long_flat_head_does_not_stretch_the_descent():
    """Six decades of tiny drift before the loss moves must not drag the suggestion down into them."""
    loss = descent(low=-3.0, high=-1.2) - 1e-4 * np.arange(len(LRS))  # strictly decreasing, but flat, head
    s = suggest(LRS, loss)
    assert LOG[s.valley[0]] > -3.3
    assert abs(math.log10(s.lr) - (-3.0 + -1.2) / 2) < 0.35


def test_divergence_cuts_the_curve_where_the_loss_passes_diverge_times_its_lowest():
    s = suggest(LRS, descent(diverge_at=-1.0, noise=0.0), diverge=4.0)
    smoothed_end = s.smoothed[-1]
    assert s.end < len(LRS) and smoothed_end <= 4.0 * min(s.smoothed)


def test_longest_descent_finds_the_longest_strictly_decreasing_subsequence():
    assert longest_descent(np.array([5.0, 1.0, 4.0, 3.0, 3.5, 2.0, 0.5, 9.0])) == (0, 6)  # 5, 4, 3, 2, 0.5
    assert longest_descent(np.array([1.0, 2.0, 3.0])) == (0, 0)


def test_bracket_is_a_third_and_three_times_at_two_significant_digits():
    assert bracket(0.00296) == [0.00099, 0.003, 0.0089]


def test_lengths_must_match():
    with pytest.raises(ValueError):
        suggest([1e-3, 1e-2], [1.0])
