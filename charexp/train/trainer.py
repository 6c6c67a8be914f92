"""The training loop: step, and on iteration/epoch schedules log, evaluate, sample, save.

No host sync happens inside the step loop: the running loss accumulates on the device and is
read only every `log_every` iterations. The loop's whole position (epoch, batch, step, RNG,
optimizer) goes into the resume state, so a killed run continues bit-identically on CPU.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import torch
from rich.markup import escape

from charexp.config import Config
from charexp.data.batching import EncodedSplit, EpochPlan, plan_epoch
from charexp.data.corpus import Corpus, fingerprint_test_set
from charexp.errors import TrainingDiverged
from charexp.model import CharLSTM
from charexp.sample.generate import generate
from charexp.store.artifacts import ArtifactStore
from charexp.store.checkpoint import ResumeState, save_state, write_checkpoint
from charexp.tracking.publish import Publisher
from charexp.tracking.tracker import Tracker
from charexp.train.evaluate import Evaluator, masked_loss_sum
from charexp.train.lr_schedule import RunClock, lr_at, run_steps
from charexp.train.metrics import LossWindow
from charexp.train.progress import TrainProgress
from charexp.train.rejection import Rejections
from charexp.train.signals import StopRequest


class Outcome(str, Enum):
    """How the loop (or one epoch of it) ended; the values are what summary.json records."""

    EPOCH = "epoch"  # train_epoch only: the epoch's last batch is done
    PREEMPTED = "preempted"  # a stop signal: the state is saved, the run continues with --resume
    OUT_OF_TIME = "out_of_time"  # train_epoch only: max_minutes is up
    FINISHED = "finished"  # every epoch done, max_rejections reached, or out of time (evaluated and published)


@dataclass
class Position:
    epoch: int = 0  # epoch being trained, 0-based
    batch: int = 0  # batches of that epoch already done
    step: int = 0  # iterations done in total
    seconds: float = 0.0  # wall time spent in the loop, across resumes
    chars: int = 0  # characters trained on


def make_autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    if amp:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def diverged(what: str, lr: float, reason: str | None = None) -> TrainingDiverged:
    """`what` became non-finite: the error advises; its reason (what reject_worse reports) does not."""
    return TrainingDiverged(f"{what}; lower lr (now {lr:g}) or set grad_clip, then start a new run", reason=reason or what)


def seeded(seed: int, step: int, device: torch.device) -> torch.Generator:
    """A generator for eval/sampling that never touches the training RNG stream."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + step)


class Trainer:
    def __init__(self, cfg: Config, corpus: Corpus, model: CharLSTM, tracker: Tracker, store: ArtifactStore, stop: StopRequest):
        self.cfg, self.corpus, self.model, self.tracker, self.store, self.stop = cfg, corpus, model, tracker, store, stop
        self.device = next(model.parameters()).device
        self.autocast = make_autocast(self.device, cfg.amp)
        self.train_split = EncodedSplit(corpus.train, corpus.vocab, self.device)
        self.evaluate = Evaluator(EncodedSplit(corpus.test, corpus.vocab, self.device), make_autocast(self.device, cfg.amp))
        self.optimizer = self.new_optimizer()
        self.publisher = Publisher(store, tracker, fingerprint_test_set(corpus))
        self.pos = Position()
        self.rejections = Rejections()
        self.window = LossWindow(self.device)
        self.started = time.perf_counter()
        self.batches_in_epoch = 1
        self._total_steps: int | None = None
        self.best: dict[str, Any] = {"test/loss": math.inf, "epoch": None, "step": None}
        self.versions: list[str] = []
        self.last_eval: tuple[int, dict[str, float]] | None = None
        self.published_step = -1

    def new_optimizer(self) -> torch.optim.Optimizer:
        fused = self.device.type == "cuda"
        return torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr, fused=fused or None, foreach=None if fused else True)

    # --- resume state -------------------------------------------------------------------
    def state_dict(self) -> ResumeState:
        return ResumeState(
            run_id=self.tracker.run_dir.run_id,
            config=self.cfg.to_dict(),
            vocab=list(self.corpus.vocab.chars),
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            rng_cpu=torch.get_rng_state(),
            rng_cuda=torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            position=asdict(self.pos),
            best=dict(self.best),
            versions=list(self.versions),
            published_step=self.published_step,
            rejections=self.rejections.state_dict(),
        )

    def load_state_dict(self, state: ResumeState) -> None:
        self.model.load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        torch.set_rng_state(state.rng_cpu)
        if state.rng_cuda and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state.rng_cuda)
        self.pos = Position(**state.position)
        self.best = dict(state.best)
        self.versions = list(state.versions)
        self.published_step = int(state.published_step)
        if state.rejections is not None:
            self.rejections.load_state_dict(state.rejections)

    def check_finite_weights(self) -> None:
        """An optimizer step can make the weights NaN after a finite loss: stop before they are evaluated,
        sampled or saved (one host sync, at those pauses only)."""
        if not bool(torch.stack([torch.isfinite(p).all() for p in self.model.parameters()]).all()):
            raise diverged(f"the weights became NaN or infinite by step {self.pos.step}", self.current_lr())

    def current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def save_state(self) -> None:
        self.check_finite_weights()
        self.pos.seconds = time.perf_counter() - self.started
        save_state(self.tracker.run_dir.state_path, self.state_dict().to_dict())

    def plan(self, epoch: int, device: torch.device) -> EpochPlan:
        cfg = self.cfg
        return plan_epoch(self.train_split.lengths, cfg.batch_size, cfg.max_len, cfg.seed, epoch, device, cfg.batch_tokens)

    def total_steps(self) -> int:
        if self._total_steps is None:
            self._total_steps = run_steps(self.cfg, self.train_split.lengths)
        return self._total_steps

    # --- schedules ----------------------------------------------------------------------
    def epoch_progress(self, batches: int) -> float:
        return round(self.pos.epoch + self.pos.batch / max(batches, 1), 4)

    def run_eval(self, epoch: float, progress: TrainProgress, judge: bool = False) -> dict[str, float]:
        """Evaluate on the whole test split; `judge`: an epoch end that reject_worse may reject, and the line says so."""
        if self.last_eval and self.last_eval[0] == self.pos.step:
            return self.last_eval[1]
        self.check_finite_weights()
        metrics = self.evaluate(self.model, seeded(self.cfg.seed, self.pos.step, self.device))
        if not math.isfinite(metrics["test/loss"]):
            loss = metrics["test/loss"]
            raise diverged(f"test/loss became {loss} at step {self.pos.step}", self.current_lr(), f"test/loss became {loss}")
        self.tracker.log({**metrics, "epoch": epoch}, step=self.pos.step)
        if metrics["test/loss"] < self.best["test/loss"]:
            self.best = {"test/loss": metrics["test/loss"], "epoch": epoch, "step": self.pos.step}
        self.last_eval = (self.pos.step, metrics)
        verdict = ""
        if judge and self.cfg.reject_worse and self.rejections.is_worse(metrics["test/loss"]):
            verdict = f" [bold red]— worse than {self.rejections.kept_loss:.4f} ({self.rejections.kept_name()}): epoch {epoch:g} rejected[/bold red]"
        progress.print(f"[bold]eval[/bold] step {self.pos.step} (epoch {epoch:g}): test/loss {metrics['test/loss']:.4f} "
                       f"({metrics['test/bpc']:.4f} bpc), acc_argmax {metrics['test/acc_argmax']:.3f}, acc_sampled {metrics['test/acc_sampled']:.3f}{verdict}")
        return metrics

    def run_samples(self, epoch: float, progress: TrainProgress, note: str = "") -> None:
        self.check_finite_weights()
        cfg = self.cfg
        primes = list(cfg.sample_chars)
        with self.autocast:
            lines = generate(self.model, self.corpus.vocab, primes, cfg.sample_max_len, cfg.sample_temperature, cfg.sample_top_k,
                             seeded(cfg.seed, self.pos.step, self.device))
        self.tracker.log_samples(self.pos.step, epoch, list(zip(primes, lines)), note)
        progress.print(f"[dim]samples at step {self.pos.step} (epoch {epoch:g}{', ' + note if note else ''}):[/dim]")
        for line in lines:
            progress.print(f"  {escape(line)}")  # sampled text may hold [brackets] that rich would read as markup

    def publish(self, metrics: dict[str, float], epoch: float, aliases: list[str]) -> None:
        """The current weights as a checkpoint version (once per step, even across a resume)."""
        if self.published_step == self.pos.step:
            return

        def write(dest: Path, meta: dict[str, Any]) -> Path:
            return write_checkpoint(dest, self.model, self.cfg, self.corpus.vocab, meta)

        self.versions.append(self.publisher.publish(write, self.pos.step, epoch, metrics, aliases))
        self.published_step = self.pos.step

    # --- the loop -----------------------------------------------------------------------
    def train_step(self, inputs: torch.Tensor, targets: torch.Tensor, tokens: int) -> torch.Tensor:
        with self.autocast:
            logits, _ = self.model(inputs)
        loss = masked_loss_sum(logits, targets) / tokens
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        return loss.detach()

    def set_lr(self, elapsed: float) -> float:
        clock = RunClock(self.pos.step, self.pos.epoch, self.total_steps(), elapsed)
        lr = lr_at(self.cfg, clock, self.rejections.scale)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def run(self, progress: TrainProgress) -> Outcome:
        """Train to the end (FINISHED) or until a stop signal (PREEMPTED)."""
        cfg, pos = self.cfg, self.pos
        self.model.train()
        self.started = time.perf_counter() - pos.seconds
        if cfg.reject_worse and self.rejections.kept_weights is None:  # the weights to come back to if epoch 1 is worse
            self.rejections.keep(self.model, self.run_eval(0.0, progress)["test/loss"], 0)
        while pos.epoch < cfg.epochs and not self.rejections.exhausted(cfg.max_rejections):
            try:
                ended = self.train_epoch(progress)
                if ended is not Outcome.EPOCH:
                    break
                self.end_epoch(progress)
            except TrainingDiverged as err:
                if not cfg.reject_worse:
                    raise
                self.reject(progress, f"{err.reason}")
            pos.epoch, pos.batch = pos.epoch + 1, 0
            self.save_state()
        else:
            ended = Outcome.FINISHED
        if ended is Outcome.PREEMPTED:
            return Outcome.PREEMPTED
        if self.published_step != pos.step:  # a max_minutes stop mid-epoch: evaluate and publish where it stopped
            epoch = self.epoch_progress(self.batches_in_epoch)
            self.publish(self.run_eval(epoch, progress), epoch, [])
            self.save_state()
        return Outcome.FINISHED

    def train_epoch(self, progress: TrainProgress) -> Outcome:
        """The rest of the current epoch: EPOCH at its end, or PREEMPTED / OUT_OF_TIME."""
        cfg, pos, window = self.cfg, self.pos, self.window
        plan = self.plan(pos.epoch, self.device)
        batches = plan.batches[: cfg.steps_per_epoch or None]
        self.batches_in_epoch = len(batches)
        while pos.batch < len(batches):
            lr = self.set_lr(time.perf_counter() - self.started)
            batch = batches[pos.batch]
            inputs, targets = self.train_split.gather(plan.ids[batch.start : batch.stop], batch.width)
            window.add(self.train_step(inputs, targets, batch.tokens), batch.tokens)
            pos.batch, pos.step, pos.chars = pos.batch + 1, pos.step + 1, pos.chars + batch.tokens
            progress.advance(pos.step)
            epoch = self.epoch_progress(len(batches))
            if pos.step % cfg.log_every == 0:
                loss, chars_per_sec = window.read()
                if not math.isfinite(loss):
                    raise diverged(f"train/loss became {loss} at step {pos.step}", lr)
                self.tracker.log({"train/loss": loss, "lr": lr, "epoch": epoch, "perf/chars_per_sec": chars_per_sec}, step=pos.step)
                progress.update(pos.step, f"{epoch:.2f}", loss, chars_per_sec)
            pause_start = time.perf_counter()
            if cfg.eval_every and pos.step % cfg.eval_every == 0:
                self.run_eval(epoch, progress)
            # the epoch end samples and saves anyway, after its eval (saving before it would repeat the eval on resume)
            mid_epoch = pos.batch < len(batches)
            if cfg.sample_every and pos.step % cfg.sample_every == 0 and mid_epoch:
                self.run_samples(epoch, progress)
            if cfg.checkpoint_every and pos.step % cfg.checkpoint_every == 0 and mid_epoch:
                self.save_state()
            window.pause(time.perf_counter() - pause_start)
            if self.stop.requested:
                self.save_state()
                return Outcome.PREEMPTED
            if cfg.max_minutes and time.perf_counter() - self.started >= cfg.max_minutes * 60:
                return Outcome.OUT_OF_TIME
        return Outcome.EPOCH

    def end_epoch(self, progress: TrainProgress) -> None:
        """Evaluate, sample and publish the epoch's weights; with reject_worse, keep them or reject the epoch."""
        cfg, n = self.cfg, self.pos.epoch + 1
        metrics = self.run_eval(float(n), progress, judge=True)
        worse = cfg.reject_worse and self.rejections.is_worse(metrics["test/loss"])
        self.run_samples(float(n), progress, note="rejected" if worse else "")
        if worse:
            self.reject(progress, f"test/loss {metrics['test/loss']:.4f} is worse than {self.rejections.kept_loss:.4f}")
            return
        self.publish(metrics, float(n), [f"epoch-{n}"])
        if cfg.reject_worse:
            self.rejections.keep(self.model, metrics["test/loss"], n)

    def reject(self, progress: TrainProgress, reason: str) -> None:
        """Throw the current epoch away: back to the kept weights, a fresh optimizer, a lower rate."""
        cfg, n, rejections = self.cfg, self.pos.epoch + 1, self.rejections
        kept = rejections.kept_name()
        rejections.reject(self.model, n, cfg.reject_factor)
        self.optimizer = self.new_optimizer()
        self.window.reset()
        self.last_eval = None  # the cached eval was of the rejected weights
        self.published_step = self.pos.step  # the weights now held are already a version (or the start): nothing new to publish
        lr = self.set_lr(time.perf_counter() - self.started)
        self.tracker.log({"rejections": rejections.count, "rejected_epoch": n, "lr": lr, "epoch": float(n)}, step=self.pos.step)
        end = "; that was the last one allowed (max_rejections), so the run ends here" if rejections.exhausted(cfg.max_rejections) else ""
        progress.print(f"[bold red]epoch {n} rejected[/bold red] at step {self.pos.step}: {reason}; back to {kept}, fresh optimizer, "
                       f"lr now {lr:g} (rejection {rejections.count} of {cfg.max_rejections}){end}")
