"""The learning rate at every step: a schedule, a linear warm-up, and the rejections' scale.

A plain function of where the run is, so that the trainer, the tests and a plot all agree on
the same number, and a resumed run picks up exactly where it stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from charexp.config import Config
from charexp.data.batching import plan_epoch

EXACT_EPOCHS = 50


@dataclass(frozen=True)
class RunClock:
    """Where the run is when a step starts."""

    step: int  # steps already done (the step about to run is step + 1)
    epoch: int  # epoch being trained, 0-based
    total_steps: int  # steps in the whole run
    seconds: float = 0.0  # training wall time so far (for max_minutes)

    def fraction(self, max_minutes: float) -> float:
        """How far through the run this step is, 0 at the first step and 1 at the last; with a time
        limit, whichever of steps and minutes is further along (the run ends at whichever comes first)."""
        by_steps = self.step / max(self.total_steps - 1, 1)
        by_time = self.seconds / (max_minutes * 60) if max_minutes else 0.0
        return min(1.0, max(by_steps, by_time))


def scheduled_lr(cfg: Config, clock: RunClock) -> float:
    """The schedule's rate before warm-up and rejections."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "cosine":
        t = clock.fraction(cfg.max_minutes)
        return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))
    return cfg.lr * cfg.lr_decay**clock.epoch


def inert_schedule_keys(cfg: Config) -> list[str]:
    """Set schedule keys that the chosen schedule ignores, as one line each: a sweep over lr_decay on a
    cosine config would otherwise run the same rate N times without a word."""
    notes = []
    if cfg.lr_decay != 1.0 and cfg.lr_schedule != "exponential":
        notes.append(f"note: lr_decay {cfg.lr_decay:g} has no effect with lr_schedule {cfg.lr_schedule}; "
                     "it applies to lr_schedule exponential")
    if cfg.min_lr and cfg.lr_schedule != "cosine":
        notes.append(f"note: min_lr {cfg.min_lr:g} has no effect with lr_schedule {cfg.lr_schedule}; "
                     "it applies to lr_schedule cosine")
    return notes


def lr_at(cfg: Config, clock: RunClock, scale: float = 1.0) -> float:
    """The rate for the step after `clock.step`: schedule x warm-up x `scale` (reject_factor^rejections)."""
    warmup = min(1.0, (clock.step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
    return scheduled_lr(cfg, clock) * warmup * scale


def run_steps(cfg: Config, lengths: np.ndarray) -> int:
    """Steps in the whole run, for a training split of utterances of these `lengths`. Epochs can differ by a batch
    or two when batches are capped by characters, so each is planned (cosine ends on min_lr at the true last step);
    past EXACT_EPOCHS (a max_minutes run with epochs=1000, say) the first epoch's count stands for all, as planning
    them would take minutes."""

    def steps_in_epoch(epoch: int) -> int:
        plan = plan_epoch(lengths, cfg.batch_size, cfg.max_len, cfg.seed, epoch, torch.device("cpu"), cfg.batch_tokens)
        return min(len(plan.batches), cfg.steps_per_epoch) if cfg.steps_per_epoch else len(plan.batches)

    if cfg.epochs <= EXACT_EPOCHS:
        return sum(steps_in_epoch(epoch) for epoch in range(cfg.epochs))
    return cfg.epochs * steps_in_epoch(0)
