"""The training loop: step, and on iteration/epoch schedules log, evaluate, sample, save.

No host sync happens inside the step loop: the running loss accumulates on the device and is
read only every `log_every` iterations. The loop's whole position (epoch, batch, step, RNG,
optimizer) goes into the resume state, so a killed run continues bit-identically on CPU.
What the loop pauses for (eval, samples, publishing a version) is in pauses.py.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from enum import Enum

import torch

from charexp.config import Config
from charexp.data.batching import EncodedSplit, EpochPlan, plan_epoch
from charexp.data.corpus import Corpus
from charexp.errors import TrainingDiverged
from charexp.model import CharLSTM
from charexp.store.artifacts import ArtifactStore
from charexp.store.checkpoint import ResumeState, save_state
from charexp.tracking.tracker import Tracker
from charexp.train.lr_schedule import RunClock, lr_at, run_steps
from charexp.train.metrics import LossWindow
from charexp.train.pauses import Pauses, check_finite_weights, diverged
from charexp.train.progress import TrainProgress
from charexp.train.rejection import Rejections
from charexp.train.signals import StopRequest
from charexp.train.step import make_autocast, new_optimizer, train_step


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
    threads: int = 0  # CPU threads it trains with (0: not recorded); a resume keeps them, for bit-identical results


class Trainer:
    def __init__(self, cfg: Config, corpus: Corpus, model: CharLSTM, tracker: Tracker, store: ArtifactStore,
                 stop: StopRequest):
        self.cfg, self.corpus, self.model, self.tracker, self.stop = cfg, corpus, model, tracker, stop
        self.device = next(model.parameters()).device
        self.autocast = make_autocast(self.device, cfg.amp)
        self.train_split = EncodedSplit(corpus.train, corpus.vocab, self.device)
        self.pauses = Pauses(cfg, corpus, model, tracker, store)
        self.optimizer = new_optimizer(self.model, self.cfg.lr)
        self.pos = Position()
        self.rejections = Rejections()
        self.window = LossWindow(self.device)
        self.started = time.perf_counter()
        self.batches_in_epoch = 1
        self._total_steps: int | None = None

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
            best=dict(self.pauses.best),
            versions=list(self.pauses.versions),
            published_step=self.pauses.published_step,
            rejections=self.rejections.state_dict(),
        )

    def load_state_dict(self, state: ResumeState) -> None:
        self.model.load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        torch.set_rng_state(state.rng_cpu)
        if state.rng_cuda and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state.rng_cuda)
        self.pos = Position(**state.position)
        self.pauses.best = dict(state.best)
        self.pauses.versions = list(state.versions)
        self.pauses.published_step = int(state.published_step)
        if state.rejections is not None:
            self.rejections.load_state_dict(state.rejections)

    def current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def save_state(self) -> None:
        check_finite_weights(self.model, self.pos.step, self.current_lr())
        self.pos.seconds = time.perf_counter() - self.started
        save_state(self.tracker.run_dir.state_path, self.state_dict().to_dict())

    def plan(self, epoch: int, device: torch.device) -> EpochPlan:
        cfg = self.cfg
        return plan_epoch(self.train_split.lengths, cfg.batch_size, cfg.max_len, cfg.seed, epoch, device,
                          cfg.batch_tokens)

    def total_steps(self) -> int:
        if self._total_steps is None:
            self._total_steps = run_steps(self.cfg, self.train_split.lengths)
        return self._total_steps

    # --- schedules ----------------------------------------------------------------------
    def epoch_progress(self, batches: int) -> float:
        return round(self.pos.epoch + self.pos.batch / max(batches, 1), 4)

    # --- pauses, at the current step and rate (the work is in pauses.py) ----------------
    def run_eval(self, epoch: float, progress: TrainProgress, judge: bool = False) -> dict[str, float]:
        """Evaluate; `judge`: an epoch end that reject_worse may reject, and the eval line says so."""
        rejections = self.rejections if judge and self.cfg.reject_worse else None
        return self.pauses.evaluate(self.pos.step, epoch, self.current_lr(), progress, rejections)

    def run_samples(self, epoch: float, progress: TrainProgress, note: str = "") -> None:
        self.pauses.sample(self.pos.step, epoch, self.current_lr(), progress, note)

    def publish(self, metrics: dict[str, float], epoch: float, aliases: list[str]) -> None:
        self.pauses.publish(self.pos.step, metrics, epoch, aliases)

    # --- the loop -----------------------------------------------------------------------
    def train_step(self, inputs: torch.Tensor, targets: torch.Tensor, tokens: int) -> torch.Tensor:
        return train_step(self.model, self.optimizer, inputs, targets, tokens, self.cfg.grad_clip, self.autocast)

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
        if cfg.reject_worse and self.rejections.kept_weights is None:  # to come back to if epoch 1 is worse
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
            if self.stop.requested and pos.epoch < cfg.epochs:  # signalled during the epoch end's eval or publish
                return Outcome.PREEMPTED
        else:
            ended = Outcome.FINISHED
        if ended is Outcome.PREEMPTED:
            return Outcome.PREEMPTED
        if self.pauses.published_step != pos.step:  # a max_minutes stop mid-epoch: evaluate, publish where it stopped
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
                row = {"train/loss": loss, "lr": lr, "epoch": epoch, "perf/chars_per_sec": chars_per_sec}
                self.tracker.log(row, step=pos.step)
                progress.update(pos.step, f"{epoch:.2f}", loss, chars_per_sec)
            pause_start = time.perf_counter()
            if cfg.eval_every and pos.step % cfg.eval_every == 0:
                self.run_eval(epoch, progress)
            # the epoch end samples and saves anyway, after its eval (saving before would repeat the eval on resume)
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
            loss, kept = metrics["test/loss"], self.rejections.kept_loss
            self.reject(progress, f"test/loss {loss:.4f} is worse than {kept:.4f}")
            return
        self.publish(metrics, float(n), [f"epoch-{n}"])
        if cfg.reject_worse:
            self.rejections.keep(self.model, metrics["test/loss"], n)

    def reject(self, progress: TrainProgress, reason: str) -> None:
        """Throw the current epoch away: back to the kept weights, a fresh optimizer, a lower rate."""
        cfg, n, rejections = self.cfg, self.pos.epoch + 1, self.rejections
        kept = rejections.kept_name()
        rejections.reject(self.model, n, cfg.reject_factor)
        self.optimizer = new_optimizer(self.model, self.cfg.lr)
        self.window.reset()
        self.pauses.weights_replaced(self.pos.step)
        lr = self.set_lr(time.perf_counter() - self.started)
        row = {"rejections": rejections.count, "rejected_epoch": n, "lr": lr, "epoch": float(n)}
        self.tracker.log(row, step=self.pos.step)
        end = ""
        if rejections.exhausted(cfg.max_rejections):
            end = "; that was the last one allowed (max_rejections), so the run ends here"
        progress.print(f"[bold red]epoch {n} rejected[/bold red] at step {self.pos.step}: {reason}; back to {kept}, "
                       f"fresh optimizer, lr now {lr:g} (rejection {rejections.count} of {cfg.max_rejections}){end}")
