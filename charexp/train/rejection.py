"""`reject_worse`: the writeup's manual restart, automated (Kaldi's "newbob" does the same).

An epoch whose end-of-epoch test/loss is worse than that of the kept weights, or that made the
loss or the weights non-finite, is rejected: the model goes back to the kept weights, the caller
restarts the optimizer, and the rate is scaled by `reject_factor`. The kept weights are a CPU copy
held here (and in the resume state), so a rejection never depends on what a store still holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Rejections:
    count: int = 0
    scale: float = 1.0  # reject_factor ** count: multiplies the schedule's rate
    kept_loss: float = math.inf  # test/loss of the kept weights
    kept_epoch: int | None = None  # the epoch they are from (0: the weights the run started with)
    rejected: list[int] = field(default_factory=list)  # rejected epochs, 1-based
    kept_weights: dict[str, torch.Tensor] | None = None

    def keep(self, model: torch.nn.Module, loss: float, epoch: int) -> None:
        """These weights are the ones to come back to."""
        self.kept_weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        self.kept_loss, self.kept_epoch = loss, epoch

    def is_worse(self, loss: float) -> bool:
        return not math.isfinite(loss) or loss > self.kept_loss

    def reject(self, model: torch.nn.Module, epoch: int, factor: float) -> None:
        """Epoch `epoch` (1-based) is rejected: back to the kept weights (in place, so the parameters stay the
        same objects)."""
        if self.kept_weights is None:
            raise RuntimeError("reject() before keep(): there are no weights to go back to")
        model.load_state_dict(self.kept_weights)
        self.count += 1
        self.scale *= factor
        self.rejected.append(epoch)

    def exhausted(self, max_rejections: int) -> bool:
        return self.count >= max_rejections

    def kept_name(self) -> str:
        return "the starting weights" if not self.kept_epoch else f"the epoch-{self.kept_epoch} weights"

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "scale": self.scale, "kept_loss": self.kept_loss, "kept_epoch": self.kept_epoch,
                "rejected": list(self.rejected), "kept_weights": self.kept_weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count, self.scale = int(state["count"]), float(state["scale"])
        self.kept_loss, self.kept_epoch = float(state["kept_loss"]), state["kept_epoch"]
        self.rejected, self.kept_weights = list(state["rejected"]), state["kept_weights"]
