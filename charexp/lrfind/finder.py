"""The range test itself: train on the training split while the learning rate grows exponentially.

Smith (arXiv 1506.01186) as Lightning and fastai run it, with the config's own model, batches, Adam and
grad_clip, so the curve belongs to the run the user is about to start. It stops early when the loss is
non-finite or its running average exceeds `diverge` times its lowest. Nothing is saved: the weights are
thrown away with the process.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch

from charexp.config import Config
from charexp.data.batching import EncodedSplit, plan_epoch
from charexp.errors import CharexpError
from charexp.model import CharLSTM
from charexp.train.step import make_autocast, new_optimizer, train_step

EMA_BETA = 0.9  # the early stop's running average only; the suggestion smooths the whole curve afterwards


@dataclass(frozen=True)
class RangeTest:
    start_lr: float = 1e-6
    end_lr: float = 1.0
    steps: int = 300
    diverge: float = 4.0
    skip_start: int = 10

    def check(self) -> None:
        if not (0 < self.start_lr < self.end_lr) or not math.isfinite(self.end_lr):
            raise CharexpError(f"--start-lr {self.start_lr:g} must be positive and below --end-lr {self.end_lr:g}; "
                               "try --start-lr 1e-6 --end-lr 1")
        if self.steps < self.skip_start + 20:
            raise CharexpError(f"--steps {self.steps} is too few to read a curve from; use at least "
                               f"{self.skip_start + 20} (300 is the default)")
        if self.diverge <= 1:
            raise CharexpError(f"--diverge {self.diverge:g} must be above 1 (the loss at that multiple of its "
                               "lowest ends the test); 4 is the default")

    def lrs(self) -> np.ndarray:
        return np.geomspace(self.start_lr, self.end_lr, self.steps)


@dataclass
class Curve:
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    chars: int = 0
    seconds: float = 0.0
    stopped: str | None = None  # why the test ended early; None: it ran the whole range


def batches(split: EncodedSplit, cfg: Config, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
    """The training split's batches in training order, epoch after epoch."""
    for epoch in range(1_000_000):
        plan = plan_epoch(split.lengths, cfg.batch_size, cfg.max_len, cfg.seed, epoch, device, cfg.batch_tokens)
        if not plan.batches:
            raise CharexpError("the training split has no utterances to batch; check data and split")
        for batch in plan.batches:
            inputs, targets = split.gather(plan.ids[batch.start : batch.stop], batch.width)
            yield inputs, targets, batch.tokens


def run_range_test(model: CharLSTM, split: EncodedSplit, cfg: Config, test: RangeTest,
                   on_step: Callable[[int, float, float], None] | None = None) -> Curve:
    """Measure the training loss at each rate of the ramp; `on_step(step, lr, loss)` after each."""
    device = next(model.parameters()).device
    autocast = make_autocast(device, cfg.amp)
    optimizer = new_optimizer(model, test.start_lr)
    model.train()
    curve, ema, lowest = Curve(), 0.0, math.inf
    started = time.perf_counter()
    for step, (lr, (inputs, targets, tokens)) in enumerate(zip(test.lrs(), batches(split, cfg, device))):
        for group in optimizer.param_groups:
            group["lr"] = float(lr)
        loss = float(train_step(model, optimizer, inputs, targets, tokens, cfg.grad_clip, autocast))  # a sync per step
        curve.lrs.append(float(lr))
        curve.losses.append(loss)
        curve.chars += tokens
        if on_step:
            on_step(step + 1, float(lr), loss)
        if not math.isfinite(loss):
            curve.stopped = f"the loss became {loss} at lr {lr:.3g}"
            break
        ema = EMA_BETA * ema + (1 - EMA_BETA) * loss
        average = ema / (1 - EMA_BETA ** (step + 1))
        if step >= test.skip_start:
            lowest = min(lowest, average)
            if average > test.diverge * lowest:
                curve.stopped = f"the loss diverged at lr {lr:.3g} ({test.diverge:g}x its lowest)"
                break
    curve.seconds = time.perf_counter() - started
    return curve
