"""LR schedules: the formula, and what a real run logs to W&B (read back from its offline file)."""

from __future__ import annotations

import math

import pytest

from charexp.config import build_config
from charexp.tracking.wandb_files import find_run_files
from charexp.train.lr_schedule import RunClock, inert_schedule_keys, lr_at

from conftest import TINY
from foundation import leet_records, only_run_id, run_main, write_config


def cfg(**values):
    return build_config({"lr": 0.01, **values})


def test_exponential_is_per_epoch_and_the_default():
    c = cfg(lr_decay=0.5)
    assert c.lr_schedule == "exponential"
    rates = [lr_at(c, RunClock(step=s, epoch=e, total_steps=100)) for s, e in ((0, 0), (49, 0), (50, 1), (99, 3))]
    assert rates == [0.01, 0.01, 0.005, 0.00125]


def test_constant_ignores_decay_and_position():
    c = cfg(lr_schedule="constant", lr_decay=0.5)
    assert {lr_at(c, RunClock(step=s, epoch=s // 10, total_steps=100)) for s in range(100)} == {0.01}


def test_cosine_starts_at_lr_passes_the_midpoint_and_ends_on_min_lr_at_the_last_step():
    c = cfg(lr_schedule="cosine", min_lr=0.001)
    at = [lr_at(c, RunClock(step=s, epoch=0, total_steps=101)) for s in range(101)]
    assert at[0] == pytest.approx(0.01)
    assert at[50] == pytest.approx((0.01 + 0.001) / 2)
    assert at[100] == pytest.approx(0.001)
    assert all(a > b for a, b in zip(at, at[1:]))


def test_cosine_under_a_time_limit_follows_the_clock_when_it_runs_ahead_of_the_steps():
    c = cfg(lr_schedule="cosine", max_minutes=1.0)
    # half the minutes
    assert lr_at(c, RunClock(step=10, epoch=0, total_steps=1000, seconds=30.0)) == pytest.approx(0.005)
    # the limit: min_lr
    assert lr_at(c, RunClock(step=10, epoch=0, total_steps=1000, seconds=60.0)) == pytest.approx(0.0)


def test_warmup_rises_linearly_from_near_zero_then_hands_over_to_every_schedule():
    for schedule in ("exponential", "cosine", "constant"):
        c = cfg(lr_schedule=schedule, warmup_steps=10)
        first, tenth = (lr_at(c, RunClock(step=s, epoch=0, total_steps=1000)) for s in (0, 9))
        plain = lr_at(cfg(lr_schedule=schedule), RunClock(step=9, epoch=0, total_steps=1000))
        assert first == pytest.approx(plain / 10, rel=0.01) and tenth == pytest.approx(plain)


def test_the_rejection_scale_multiplies_the_rate():
    assert lr_at(cfg(), RunClock(step=5, epoch=0, total_steps=10), scale=0.01) == pytest.approx(1e-4)


def test_min_lr_above_lr_is_refused_in_one_sentence():
    from charexp.errors import CharexpError

    with pytest.raises(CharexpError, match=r"^config: min_lr \(0\.1\) should not exceed lr \(0\.01\);"):
        cfg(min_lr=0.1)


def test_keys_that_the_schedule_ignores_are_named():
    assert inert_schedule_keys(cfg()) == [] and inert_schedule_keys(cfg(lr_decay=0.5)) == []
    assert inert_schedule_keys(cfg(lr_schedule="cosine", min_lr=0.001)) == []
    (note,) = inert_schedule_keys(cfg(lr_schedule="cosine", lr_decay=0.5))
    assert note == "note: lr_decay 0.5 has no effect with lr_schedule cosine; it applies to lr_schedule exponential"
    notes = inert_schedule_keys(cfg(lr_schedule="constant", lr_decay=0.5, min_lr=0.001))
    assert [n.split()[1] for n in notes] == ["lr_decay", "min_lr"]


@pytest.mark.parametrize("schedule", ["exponential", "cosine", "constant"])
def test_each_schedules_lr_is_what_wandb_history_shows(schedule, tmp_path, tiny_csv):
    """A real run, logging every step: the `lr` rows of its offline .wandb file, read by `wandb leet`, follow lr_at."""
    overrides = {"lr_schedule": schedule, "lr_decay": 0.5, "min_lr": 0.001, "warmup_steps": 5, "log_every": 1,
                 "sample_every": 0}
    config = write_config(tmp_path / "s.yaml", tiny_csv, **overrides)
    code, log = run_main(["--config", str(config)])
    assert code == 0, log
    (wandb_file,) = find_run_files(tmp_path / "wandb", only_run_id(tmp_path / "runs"))
    logged = {r["history"]["step"]["num"]: r["history"]["item"]["lr"] for r in leet_records(wandb_file)
              if r["type"] == "history" and "lr" in r["history"]["item"]}
    c = build_config({"data": str(tiny_csv), **TINY, **overrides})
    steps_per_epoch = 20  # 160 train utterances / batch 8
    total = 2 * steps_per_epoch
    assert sorted(logged) == list(range(1, total + 1))
    expected = {s: lr_at(c, RunClock(step=s - 1, epoch=(s - 1) // steps_per_epoch, total_steps=total)) for s in logged}
    assert logged == pytest.approx(expected)
    assert logged[1] == pytest.approx(0.01 / 5)  # warm-up starts from near zero
    if schedule == "cosine":
        assert logged[total] == pytest.approx(0.001)  # min_lr on the run's last step
    if schedule == "exponential":
        assert logged[total] == pytest.approx(0.005)  # epoch 2: lr x decay
    assert not any(math.isnan(v) for v in logged.values())
    ignored = {"exponential": ["min_lr"], "cosine": ["lr_decay"], "constant": ["lr_decay", "min_lr"]}[schedule]
    assert [key for key in ("lr_decay", "min_lr") if f"note: {key} " in log] == ignored  # said once, at the start
