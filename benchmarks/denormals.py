"""Forward + backward time with saturated LSTM gates, with and without flushing denormal floats, in one run.

A learning rate far too high (E4: lr 3e-2 on configs/startrek.yaml) drives the LSTM into a state where
activations and gradients underflow into denormal floats, which x86 CPUs compute in microcode, many times
slower: E4's lr-3e-2 runs fell from about 35k to 2.5k chars/s. charexp's CPU runs therefore call
`torch.set_flush_denormal(True)` (`charexp.model.configure_cpu`). Scaling a fresh model's weights does not
reproduce it, so this script first trains such a model (one epoch of configs/startrek.yaml at a constant
lr 3e-2 on the real corpus, about a minute on 2 cores) unless --checkpoint names one. It then times
forward + backward on one fixed batch, alternating (a) flush on and (b) flush off; medians over repeats.

    python benchmarks/denormals.py [--checkpoint DIR] [--batch 20] [--length 75] [--repeats 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from charexp.errors import run_cli  # noqa: E402
from charexp.model import CharLSTM  # noqa: E402
from charexp.store.artifacts import ArtifactStore  # noqa: E402
from charexp.store.checkpoint import load_checkpoint  # noqa: E402
from charexp.train.main import main as train_main  # noqa: E402


def step_seconds(model: CharLSTM, batch: torch.Tensor, flush: bool) -> float:
    torch.set_flush_denormal(flush)
    start = time.perf_counter()
    logits, _ = model(batch[:, :-1])
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
    model.zero_grad()
    loss.backward()
    return time.perf_counter() - start


def saturated_checkpoint(tmp: str) -> Path:
    """One epoch of configs/startrek.yaml at a constant lr of 3e-2: E4's too-high rate."""
    root = Path(__file__).resolve().parents[1]
    code = train_main(["--config", str(root / "configs" / "startrek.yaml"), "--lr_schedule=constant", "--lr=0.03",
                       "--epochs=1", "--sample_every=0", "--wandb_mode=disabled", f"--runs_dir={tmp}/runs",
                       f"--artifacts_dir={tmp}/artifacts"])
    if code != 0:
        raise SystemExit(code)
    return ArtifactStore(f"{tmp}/artifacts", "charlstm").resolve("latest").path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="a checkpoint directory to time (default: train one at lr 3e-2 first)")
    parser.add_argument("--batch", type=int, default=20,
                        help="utterances per batch (about what batch_tokens 1536 gives)")
    parser.add_argument("--length", type=int, default=75, help="characters per utterance")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (a sweep worker's share of a 2-core CPU is 1)")
    args = parser.parse_args()
    if not torch.set_flush_denormal(True):
        raise SystemExit("this CPU cannot flush denormals (it is not x86 with SSE3): nothing to compare")

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = load_checkpoint(args.checkpoint or saturated_checkpoint(tmp))
    torch.set_num_threads(args.threads)
    model = checkpoint.model.train()
    vocab = model.embedding.num_embeddings
    batch = torch.randint(0, vocab, (args.batch, args.length), generator=torch.Generator().manual_seed(0))
    for flush in (True, False):  # warm-up
        step_seconds(model, batch, flush)
    flushed, kept = [], []
    for _ in range(args.repeats):
        flushed.append(step_seconds(model, batch, True))
        kept.append(step_seconds(model, batch, False))
    torch.set_flush_denormal(True)
    a, b = statistics.median(flushed), statistics.median(kept)
    chars = args.batch * (args.length - 1)
    model = args.checkpoint or "a 2x200 model after one epoch at lr 3e-2"
    print(f"forward + backward of {model}, batch {args.batch} x {args.length}, {args.threads} thread(s), "
          f"medians of {args.repeats}")
    print(f"(a) flush denormals (charexp):      {a * 1000:7.1f} ms/step  {chars / a:9,.0f} chars/s")
    print(f"(b) keep denormals (torch default): {b * 1000:7.1f} ms/step  {chars / b:9,.0f} chars/s")
    print(f"(b)/(a) = {b / a:.2f}")


if __name__ == "__main__":
    run_cli(main)  # a bad --checkpoint is one sentence, as in train.py
