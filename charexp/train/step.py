"""One optimizer step on one batch: the training loop's and the learning-rate range test's."""

from __future__ import annotations

import contextlib

import torch

from charexp.model import CharLSTM
from charexp.train.evaluate import masked_loss_sum


def make_autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    if amp:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(model: CharLSTM, optimizer: torch.optim.Optimizer, inputs: torch.Tensor, targets: torch.Tensor,
               tokens: int, grad_clip: float, autocast: contextlib.AbstractContextManager) -> torch.Tensor:
    """Mean loss per scored character, detached (no host sync: the caller decides when to read it)."""
    with autocast:
        logits, _ = model(inputs)
    loss = masked_loss_sum(logits, targets) / tokens
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.detach()


def new_optimizer(model: CharLSTM, lr: float) -> torch.optim.Optimizer:
    """Adam, fused on CUDA, foreach elsewhere."""
    fused = next(model.parameters()).device.type == "cuda"
    return torch.optim.Adam(model.parameters(), lr=lr, fused=fused or None, foreach=None if fused else True)
