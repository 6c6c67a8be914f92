"""What the training loop pauses for: evaluate on the test split, sample lines, publish a version.

The trainer decides when (on its step and epoch schedules); this module does the work and remembers
what the run's summary and resume state need of it: the best test/loss, the last eval, the versions.
Every pause first checks that the weights are finite, so NaN weights are never evaluated or saved.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from rich.markup import escape

from charexp.config import Config
from charexp.data.batching import EncodedSplit
from charexp.data.corpus import Corpus, fingerprint_test_set
from charexp.errors import TrainingDiverged
from charexp.model import CharLSTM
from charexp.sample.generate import generate
from charexp.store.artifacts import ArtifactStore
from charexp.store.checkpoint import write_checkpoint
from charexp.tracking.publish import Publisher
from charexp.tracking.tracker import Tracker
from charexp.train.evaluate import Evaluator
from charexp.train.progress import TrainProgress
from charexp.train.rejection import Rejections
from charexp.train.step import make_autocast


def diverged(what: str, lr: float, reason: str | None = None) -> TrainingDiverged:
    """`what` became non-finite: the error advises; its reason (what reject_worse reports) does not."""
    advice = f"{what}; lower lr (now {lr:g}) or set grad_clip, then start a new run"
    return TrainingDiverged(advice, reason=reason or what)


def seeded(seed: int, step: int, device: torch.device) -> torch.Generator:
    """A generator for eval/sampling that never touches the training RNG stream."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + step)


def check_finite_weights(model: torch.nn.Module, step: int, lr: float) -> None:
    """An optimizer step can make the weights NaN after a finite loss: stop before they are evaluated,
    sampled or saved (one host sync, at the pauses only)."""
    if not bool(torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all()):
        raise diverged(f"the weights became NaN or infinite by step {step}", lr)


class Pauses:
    def __init__(self, cfg: Config, corpus: Corpus, model: CharLSTM, tracker: Tracker, store: ArtifactStore):
        self.cfg, self.corpus, self.model, self.tracker = cfg, corpus, model, tracker
        self.device = next(model.parameters()).device
        self.autocast = make_autocast(self.device, cfg.amp)
        test = EncodedSplit(corpus.test, corpus.vocab, self.device)
        self.evaluator = Evaluator(test, make_autocast(self.device, cfg.amp))
        self.publisher = Publisher(store, tracker, fingerprint_test_set(corpus))
        # kept in the resume state
        self.best: dict[str, Any] = {"test/loss": math.inf, "epoch": None, "step": None}
        self.versions: list[str] = []
        self.published_step = -1
        self.last_eval: tuple[int, dict[str, float]] | None = None

    def evaluate(self, step: int, epoch: float, lr: float, progress: TrainProgress,
                 judge: Rejections | None = None) -> dict[str, float]:
        """Evaluate on the whole test split (once per step). With `judge` (an epoch end under reject_worse),
        the eval line says whether the epoch is rejected."""
        if self.last_eval and self.last_eval[0] == step:
            return self.last_eval[1]
        check_finite_weights(self.model, step, lr)
        metrics = self.evaluator(self.model, seeded(self.cfg.seed, step, self.device))
        loss = metrics["test/loss"]
        if not math.isfinite(loss):
            raise diverged(f"test/loss became {loss} at step {step}", lr, f"test/loss became {loss}")
        self.tracker.log({**metrics, "epoch": epoch}, step=step)
        if loss < self.best["test/loss"]:
            self.best = {"test/loss": loss, "epoch": epoch, "step": step}
        self.last_eval = (step, metrics)
        verdict = ""
        if judge is not None and judge.is_worse(loss):
            verdict = (f" [bold red]— worse than {judge.kept_loss:.4f} ({judge.kept_name()}): "
                       f"epoch {epoch:g} rejected[/bold red]")
        progress.print(f"[bold]eval[/bold] step {step} (epoch {epoch:g}): test/loss {loss:.4f} "
                       f"({metrics['test/bpc']:.4f} bpc), acc_argmax {metrics['test/acc_argmax']:.3f}, "
                       f"acc_sampled {metrics['test/acc_sampled']:.3f}{verdict}")
        return metrics

    def sample(self, step: int, epoch: float, lr: float, progress: TrainProgress, note: str = "") -> None:
        check_finite_weights(self.model, step, lr)
        cfg = self.cfg
        primes = list(cfg.sample_chars)
        with self.autocast:
            lines = generate(self.model, self.corpus.vocab, primes, cfg.sample_max_len, cfg.sample_temperature,
                             cfg.sample_top_k, seeded(cfg.seed, step, self.device))
        self.tracker.log_samples(step, epoch, list(zip(primes, lines)), note)
        progress.print(f"[dim]samples at step {step} (epoch {epoch:g}{', ' + note if note else ''}):[/dim]")
        for line in lines:
            progress.print(f"  {escape(line)}")  # sampled text may hold [brackets] that rich would read as markup

    def publish(self, step: int, metrics: dict[str, float], epoch: float, aliases: list[str]) -> None:
        """The current weights as a checkpoint version (once per step, even across a resume)."""
        if self.published_step == step:
            return

        def write(dest: Path, meta: dict[str, Any]) -> Path:
            return write_checkpoint(dest, self.model, self.cfg, self.corpus.vocab, meta)

        self.versions.append(self.publisher.publish(write, step, epoch, metrics, aliases))
        self.published_step = step

    def weights_replaced(self, step: int) -> None:
        """An epoch was rejected: the cached eval was of the rejected weights, and the weights now held
        are already a version (or the start), so there is nothing new to publish at this step."""
        self.last_eval = None
        self.published_step = step
