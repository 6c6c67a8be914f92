"""Running training metrics between log lines."""

from __future__ import annotations

import time

import torch


class LossWindow:
    """train/loss and chars/s since the last log line; the loss stays on the device until read."""

    def __init__(self, device: torch.device):
        self.loss = torch.zeros((), device=device)
        self.reset()

    def reset(self) -> None:
        self.loss.zero_()
        self.tokens, self.start, self.paused = 0, time.perf_counter(), 0.0

    def add(self, loss: torch.Tensor, tokens: int) -> None:
        self.loss += loss * tokens
        self.tokens += tokens

    def pause(self, seconds: float) -> None:
        self.paused += seconds  # evals, samples and saves do not count against chars/s

    def read(self) -> tuple[float, float]:
        """(mean loss, chars/s) of the window, then start a new one."""
        loss = self.loss.item() / self.tokens
        chars_per_sec = self.tokens / max(time.perf_counter() - self.start - self.paused, 1e-9)
        self.reset()
        return loss, chars_per_sec
