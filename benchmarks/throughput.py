"""Training throughput (chars/s) of three implementations of the same model, measured in one run.

  (a) charexp: the real Trainer loop on real corpus batches, with the overheads a real run has
      (rich progress, metrics logged to an offline W&B run every log_every steps, and a periodic
      eval whose share of the time matches one full test-split eval per training epoch);
  (b) bare: the same model and the same batch shapes on random tensors, nothing else (the ceiling);
  (c) homework: batch 1, one whole utterance per step, same model (the slow baseline).

Windows of the three are interleaved (a, b, c, a, b, c, ...) so that machine noise hits all of
them alike; the figures are medians over windows after a warm-up, and the ratios between them.
(b) cycles through every batch shape of a real epoch, in the epoch's order, so that (a) and (b)
train on the same mix of widths. A last line splits (a)'s time into the step loop and each kind
of pause (eval, samples, checkpoint version, resume state, epoch plan), timed between device syncs.

    python benchmarks/throughput.py [--device cpu|cuda] [--config configs/startrek.yaml] [--batch-size N]
                                    [--batch-tokens N]
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from charexp.config import load_config  # noqa: E402
from charexp.data.batching import EncodedSplit, plan_epoch  # noqa: E402
from charexp.data.corpus import load_corpus  # noqa: E402
from charexp.data.download import resolve_data_path  # noqa: E402
from charexp.model import CharLSTM, configure_cuda, resolve_device  # noqa: E402
from charexp.store.artifacts import ArtifactStore  # noqa: E402
from charexp.tracking.rundir import RunDir  # noqa: E402
from charexp.tracking.tracker import Tracker  # noqa: E402
from charexp.train.progress import TrainProgress  # noqa: E402
from charexp.train.signals import StopRequest  # noqa: E402
from charexp.train.step import make_autocast  # noqa: E402
from charexp.train.trainer import Trainer  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class WindowClock(TrainProgress):
    """A live progress bar (rendered into a buffer) that also hands control back every `window` steps."""

    def __init__(self, window: int, device: torch.device, on_window):
        super().__init__(total_steps=0, console=Console(file=io.StringIO(), force_terminal=True, width=120))
        self.window, self.device, self.on_window = window, device, on_window

    def advance(self, step: int) -> None:
        super().advance(step)
        if step % self.window == 0:
            sync(self.device)
            self.on_window(step)


PAUSES = ("run_eval", "run_samples", "publish", "save_state", "plan")


def time_pauses(trainer: Trainer, device: torch.device, spent: dict[str, list[float]]) -> None:
    """Wrap the trainer's pause methods so that each call's wall time (after the queued steps finish) adds to
    `spent`."""
    for name in PAUSES:
        method = getattr(trainer, name)

        def timed(*args, _method=method, _name=name, **kwargs):
            sync(device)  # the steps queued before the pause are the step loop's time, not the pause's
            start = time.perf_counter()
            result = _method(*args, **kwargs)
            sync(device)
            spent[_name].append(time.perf_counter() - start)
            return result

        setattr(trainer, name, timed)


def charexp_windows(cfg, corpus, device, window: int, windows: int, eval_fraction: float,
                    between) -> tuple[list[float], list[dict]]:
    """Run the real Trainer; call `between()` (the other implementations' windows) at every window boundary.
    Returns chars/s per window and, per window, the seconds and calls of each pause kind plus the window's length."""
    rates: list[float] = []
    breakdown: list[dict] = []
    spent: dict[str, list[float]] = {name: [] for name in PAUSES}
    # A window shorter than an epoch gets a proportional slice of the test split evaluated once per window;
    # a window spanning epoch ends already holds the real per-epoch evals (and samples and versions).
    short = eval_fraction < 1
    test = corpus.test[: max(1, int(len(corpus.test) * eval_fraction))] if short else corpus.test
    corpus = type(corpus)(corpus.train, test, corpus.vocab, corpus.split, corpus.episodes, corpus.source, 0)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = cfg.updated({"runs_dir": f"{tmp}/runs", "artifacts_dir": f"{tmp}/artifacts", "epochs": 1000,
                           "eval_every": window if short else 0, "sample_every": 0, "checkpoint_every": 0,
                           "wandb_mode": "offline"})
        os.environ["WANDB_DIR"] = tmp
        run_dir = RunDir(cfg.runs_dir, "bench")
        run_dir.create()
        tracker = Tracker(cfg.to_dict(), run_dir, resume=False, mode="offline")
        model = CharLSTM.from_config(cfg, len(corpus.vocab)).to(device)
        trainer = Trainer(cfg, corpus, model, tracker, ArtifactStore(cfg.artifacts_dir, "bench"), StopRequest())
        time_pauses(trainer, device, spent)
        state = {"t": None, "chars": 0}

        def on_window(step: int) -> None:
            now = time.perf_counter()
            if state["t"] is not None:  # the first window is the warm-up
                rates.append((trainer.pos.chars - state["chars"]) / (now - state["t"]))
                breakdown.append({"window": now - state["t"], "chars": trainer.pos.chars - state["chars"],
                                  **{name: (sum(calls), len(calls)) for name, calls in spent.items()}})
            for calls in spent.values():
                calls.clear()
            between()
            if len(rates) == windows:
                trainer.stop.signum = signal.SIGINT  # end the run the way Ctrl-C does
            sync(device)
            state["t"], state["chars"] = time.perf_counter(), trainer.pos.chars

        with WindowClock(window, device, on_window) as clock:
            trainer.run(clock)
        tracker.finish()
    return rates, breakdown


def describe_breakdown(breakdown: list[dict]) -> str:
    """Medians over windows: each pause kind's share of the window and time per call, and the step loop's own rate."""
    total = statistics.median(w["window"] for w in breakdown)
    parts = []
    for name in PAUSES:
        seconds = statistics.median(w[name][0] for w in breakdown)
        calls = sum(w[name][1] for w in breakdown)
        if calls:
            per_call = sum(w[name][0] for w in breakdown) / calls
            parts.append(f"{name} {seconds / total:.1%} ({per_call * 1000:.1f} ms/call, "
                         f"{calls / len(breakdown):.1f}/window)")
    loop = statistics.median(w["chars"] / (w["window"] - sum(w[n][0] for n in PAUSES)) for w in breakdown)
    return f"(a) time: pauses {', '.join(parts) or 'none'}; step loop alone {loop:,.0f} chars/s"


class BareLoop:
    """Same model, same batch shapes, random ids: forward (under the same autocast), loss, backward, clip, Adam.
    Nothing else."""

    def __init__(self, cfg, vocab_size: int, shapes: list[tuple[int, int]], device: torch.device):
        self.model = CharLSTM.from_config(cfg, vocab_size).to(device)
        fused = device.type == "cuda"
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, fused=fused or None,
                                    foreach=None if fused else True)
        self.shapes, self.device, self.vocab_size, self.clip, self.i = shapes, device, vocab_size, cfg.grad_clip, 0
        self.autocast = make_autocast(device, cfg.amp)
        self.batches = [torch.randint(vocab_size, (b, t + 1), device=device) for b, t in shapes]

    def window(self, steps: int) -> float:
        sync(self.device)
        start, chars = time.perf_counter(), 0
        for _ in range(steps):
            tokens = self.batches[self.i % len(self.batches)]
            self.i += 1
            with self.autocast:
                logits, _ = self.model(tokens[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, self.vocab_size).float(), tokens[:, 1:].reshape(-1))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
            self.opt.step()
            chars += tokens.numel() - tokens.size(0)
        sync(self.device)
        return chars / (time.perf_counter() - start)


class HomeworkLoop:
    """Batch 1: one whole utterance per step from a zero state, as the homework trained."""

    def __init__(self, cfg, corpus, device: torch.device):
        self.model = CharLSTM.from_config(cfg, len(corpus.vocab)).to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        split = EncodedSplit(corpus.train, corpus.vocab, device)
        starts, lengths = split.offsets_dev.tolist()[:5000], split.lengths.tolist()[:5000]
        self.utterances = [split.flat[o : o + n] for o, n in zip(starts, lengths)]
        self.device, self.i = device, 0

    def window(self, seconds: float) -> float:
        sync(self.device)
        start, chars = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            seq = self.utterances[self.i % len(self.utterances)][None]
            self.i += 1
            logits, _ = self.model(seq[:, :-1])
            loss = F.cross_entropy(logits[0], seq[0, 1:])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            chars += seq.size(1) - 1
        sync(self.device)
        return chars / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "configs" / "startrek.yaml"),
                        help="model and batching come from this config (default: configs/startrek.yaml)")
    parser.add_argument("--batch-size", type=int, help="override the config's batch_size")
    parser.add_argument("--batch-tokens", type=int, help="override the config's batch_tokens (0 = no cap)")
    parser.add_argument("--window", type=int, default=0, help="steps per window (default: 60 on CPU, 400 on CUDA)")
    parser.add_argument("--windows", type=int, default=5,
                        help="measured windows per implementation (after one warm-up)")
    parser.add_argument("--data", default="startrek", help="corpus (default: the cached Star Trek CSV)")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast for (a) and (b)")
    args = parser.parse_args()

    device = resolve_device(args.device)
    if device.type == "cuda":
        configure_cuda()
    torch.manual_seed(0)
    overrides = {"batch_size": args.batch_size, "batch_tokens": args.batch_tokens}
    cfg = load_config(args.config, {k: v for k, v in overrides.items() if v is not None}).updated(
        {"data": args.data, "device": str(device), "amp": args.amp, "split": "line", "seed": 0})
    corpus = load_corpus(resolve_data_path(cfg.data), cfg.split, cfg.test_fraction, cfg.split_seed)
    window = args.window or (400 if device.type == "cuda" else 60)
    lengths = np.array([len(t) + 1 for t in corpus.train])
    plan = plan_epoch(lengths, cfg.batch_size, cfg.max_len, cfg.seed, 0, torch.device("cpu"), cfg.batch_tokens)
    shapes = [(b.stop - b.start, b.width) for b in plan.batches]
    steps_per_epoch = len(plan.batches)
    eval_fraction = window / steps_per_epoch

    bare = BareLoop(cfg, len(corpus.vocab), shapes, device)
    homework = HomeworkLoop(cfg, corpus, device)
    bare_rates, homework_rates = [], []
    bare.window(max(5, window // 10))
    homework.window(1.0)
    first = {"done": False}

    def between() -> None:
        if not first["done"]:  # warm-up boundary
            first["done"] = True
            return
        bare_rates.append(bare.window(window))
        homework_rates.append(homework.window(max(2.0, 0.25 * window * cfg.batch_size * 70 / max(bare_rates[-1], 1))))

    charexp_rates, breakdown = charexp_windows(cfg, corpus, device, window, args.windows, eval_fraction, between)
    a, b, c = (statistics.median(r) for r in (charexp_rates, bare_rates, homework_rates))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    if eval_fraction < 1:
        pauses = f"eval share {eval_fraction:.1%} of the test split per window"
    else:
        pauses = f"{eval_fraction:.1f} epoch ends (eval, samples, version) per window"
    print(f"device: {name}; model {cfg.layers}x{cfg.hidden}, batch {cfg.batch_size} "
          f"(tokens cap {cfg.batch_tokens or 'none'}), {steps_per_epoch} steps/epoch, "
          f"window {window} steps x {len(charexp_rates)}, {pauses}; torch {torch.__version__}")
    print(f"(a) charexp Trainer   {a:>12,.0f} chars/s   (windows: {', '.join(f'{r:,.0f}' for r in charexp_rates)})")
    print(f"(b) bare loop ceiling {b:>12,.0f} chars/s   (windows: {', '.join(f'{r:,.0f}' for r in bare_rates)})")
    print(f"(c) homework batch-1  {c:>12,.0f} chars/s   (windows: {', '.join(f'{r:,.0f}' for r in homework_rates)})")
    print(f"ratios: (a)/(b) = {a / b:.3f}   (a)/(c) = {a / c:.2f}   (b)/(c) = {b / c:.2f}")
    print(describe_breakdown(breakdown))


if __name__ == "__main__":
    main()
