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
from typing import Any

import torch
from rich.markup import escape

from charexp.store.artifacts import ArtifactStore
from charexp.data.batching import EncodedSplit, EpochPlan, plan_epoch
from charexp.store.checkpoint import save_state, write_checkpoint
from charexp.config import Config
from charexp.data.corpus import Corpus
from charexp.errors import TrainingDiverged
from charexp.train.evaluate import Evaluator, masked_loss_sum
from charexp.model import CharLSTM
from charexp.train.progress import TrainProgress
from charexp.sampling import generate
from charexp.train.signals import StopRequest
from charexp.tracking.tracker import Tracker

STATE_FORMAT = "charexp-state/1"


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
        fused = self.device.type == "cuda"
        self.optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=fused or None, foreach=None if fused else True)
        self.pos = Position()
        self.best: dict[str, Any] = {"test/loss": math.inf, "epoch": None, "step": None}
        self.versions: list[str] = []
        self.last_eval: tuple[int, dict[str, float]] | None = None
        self.published_step = -1

    # --- resume state -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "run_id": self.tracker.run_dir.run_id,
            "config": self.cfg.to_dict(),
            "vocab": list(self.corpus.vocab.chars),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "position": asdict(self.pos),
            "best": dict(self.best),
            "versions": list(self.versions),
            "published_step": self.published_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        self.pos = Position(**state["position"])
        self.best = dict(state["best"])
        self.versions = list(state["versions"])
        self.published_step = int(state["published_step"])

    def check_finite_weights(self) -> None:
        """An optimizer step can make the weights NaN after a finite loss: stop before they are evaluated,
        sampled or saved (one host sync, at those pauses only)."""
        if not bool(torch.stack([torch.isfinite(p).all() for p in self.model.parameters()]).all()):
            raise TrainingDiverged(f"the weights became NaN or infinite by step {self.pos.step}; lower lr (now {self.cfg.lr:g}) or set grad_clip, then start a new run")

    def save_state(self) -> None:
        self.check_finite_weights()
        save_state(self.tracker.run_dir.state_path, self.state_dict())

    def plan(self, epoch: int, device: torch.device) -> EpochPlan:
        cfg = self.cfg
        return plan_epoch(self.train_split.lengths, cfg.batch_size, cfg.max_len, cfg.seed, epoch, device, cfg.batch_tokens)

    def steps_in_epoch(self, epoch: int) -> int:
        batches = len(self.plan(epoch, torch.device("cpu")).batches)
        return min(batches, self.cfg.steps_per_epoch) if self.cfg.steps_per_epoch else batches

    def total_steps(self) -> int:
        return self.cfg.epochs * self.steps_in_epoch(0)

    # --- schedules ----------------------------------------------------------------------
    def epoch_progress(self, batches: int) -> float:
        return round(self.pos.epoch + self.pos.batch / max(batches, 1), 4)

    def run_eval(self, epoch: float, progress: TrainProgress) -> dict[str, float]:
        if self.last_eval and self.last_eval[0] == self.pos.step:
            return self.last_eval[1]
        self.check_finite_weights()
        metrics = self.evaluate(self.model, seeded(self.cfg.seed, self.pos.step, self.device))
        if not math.isfinite(metrics["test/loss"]):
            raise TrainingDiverged(f"test/loss became {metrics['test/loss']} at step {self.pos.step}; lower lr (now {self.cfg.lr:g}) or set grad_clip, then start a new run")
        self.tracker.log({**metrics, "epoch": epoch}, step=self.pos.step)
        if metrics["test/loss"] < self.best["test/loss"]:
            self.best = {"test/loss": metrics["test/loss"], "epoch": epoch, "step": self.pos.step}
        self.last_eval = (self.pos.step, metrics)
        progress.print(f"[bold]eval[/bold] step {self.pos.step} (epoch {epoch:g}): test/loss {metrics['test/loss']:.4f} "
                       f"({metrics['test/bpc']:.4f} bpc), acc_argmax {metrics['test/acc_argmax']:.3f}, acc_sampled {metrics['test/acc_sampled']:.3f}")
        return metrics

    def run_samples(self, epoch: float, progress: TrainProgress) -> None:
        self.check_finite_weights()
        cfg = self.cfg
        primes = list(cfg.sample_chars)
        with self.autocast:
            lines = generate(self.model, self.corpus.vocab, primes, cfg.sample_max_len, cfg.sample_temperature, cfg.sample_top_k,
                             seeded(cfg.seed, self.pos.step, self.device))
        self.tracker.log_samples(self.pos.step, epoch, list(zip(primes, lines)))
        progress.print(f"[dim]samples at step {self.pos.step} (epoch {epoch:g}):[/dim]")
        for line in lines:
            progress.print(f"  {escape(line)}")  # sampled text may hold [brackets] that rich would read as markup

    def publish(self, metrics: dict[str, float], epoch: float, aliases: list[str]) -> None:
        """A checkpoint version in the local store and in the W&B run (once per step, even across a resume)."""
        if self.published_step == self.pos.step:
            return
        run_id = self.tracker.run_dir.run_id
        epoch = int(epoch) if float(epoch).is_integer() else epoch
        meta = {"run_id": run_id, "project": self.tracker.project, "epoch": epoch, "step": self.pos.step,
                "test_loss": metrics["test/loss"], "metrics": metrics}
        version = self.store.add(lambda dest: write_checkpoint(dest, self.model, self.cfg, self.corpus.vocab, meta), meta, aliases)
        self.tracker.log_model(self.store.name, version.path, list(version.aliases), {**meta, "local_version": version.version})
        self.versions.append(f"{version.version} ({', '.join(version.aliases)})")
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

    def run(self, progress: TrainProgress) -> str:
        """Train to the end (returns "finished") or until a stop signal (returns "preempted")."""
        cfg, pos = self.cfg, self.pos
        self.model.train()
        started = time.perf_counter() - pos.seconds
        window_loss = torch.zeros((), device=self.device)
        window_tokens, window_start, paused = 0, time.perf_counter(), 0.0
        out_of_time, n_batches = False, 1
        while pos.epoch < cfg.epochs and not out_of_time:
            lr = cfg.lr * cfg.lr_decay**pos.epoch
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            plan = self.plan(pos.epoch, self.device)
            batches = plan.batches[: cfg.steps_per_epoch or None]
            n_batches = len(batches)
            while pos.batch < len(batches):
                batch = batches[pos.batch]
                inputs, targets = self.train_split.gather(plan.ids[batch.start : batch.stop], batch.width)
                window_loss += self.train_step(inputs, targets, batch.tokens) * batch.tokens
                window_tokens += batch.tokens
                pos.batch, pos.step, pos.chars = pos.batch + 1, pos.step + 1, pos.chars + batch.tokens
                progress.advance(pos.step)
                epoch = self.epoch_progress(n_batches)
                if pos.step % cfg.log_every == 0:
                    loss = window_loss.item() / window_tokens
                    if not math.isfinite(loss):
                        raise TrainingDiverged(f"train/loss became {loss} at step {pos.step}; lower lr (now {cfg.lr:g}) or set grad_clip, then start a new run")
                    now = time.perf_counter()
                    chars_per_sec = window_tokens / max(now - window_start - paused, 1e-9)
                    self.tracker.log({"train/loss": loss, "lr": lr, "epoch": epoch, "perf/chars_per_sec": chars_per_sec}, step=pos.step)
                    progress.update(pos.step, f"{epoch:.2f}", loss, chars_per_sec)
                    window_loss.zero_()
                    window_tokens, window_start, paused = 0, now, 0.0
                pause_start = time.perf_counter()
                if cfg.eval_every and pos.step % cfg.eval_every == 0:
                    self.run_eval(epoch, progress)
                if cfg.sample_every and pos.step % cfg.sample_every == 0:
                    self.run_samples(epoch, progress)
                # the epoch end below saves anyway, after its eval/samples/version (saving before them would repeat them on resume)
                if cfg.checkpoint_every and pos.step % cfg.checkpoint_every == 0 and pos.batch < n_batches:
                    pos.seconds = time.perf_counter() - started
                    self.save_state()
                paused += time.perf_counter() - pause_start
                if self.stop.requested:
                    pos.seconds = time.perf_counter() - started
                    self.save_state()
                    return "preempted"
                if cfg.max_minutes and time.perf_counter() - started >= cfg.max_minutes * 60:
                    out_of_time = True
                    break
            if out_of_time:
                break
            metrics = self.run_eval(float(pos.epoch + 1), progress)
            if not (cfg.sample_every and pos.step % cfg.sample_every == 0):
                self.run_samples(float(pos.epoch + 1), progress)
            self.publish(metrics, float(pos.epoch + 1), [f"epoch-{pos.epoch + 1}"])
            pos.epoch, pos.batch = pos.epoch + 1, 0
            pos.seconds = time.perf_counter() - started
            self.save_state()
        if self.published_step != pos.step:
            epoch = self.epoch_progress(n_batches)
            self.publish(self.run_eval(epoch, progress), epoch, [])
            pos.seconds = time.perf_counter() - started
            self.save_state()
        return "finished"
