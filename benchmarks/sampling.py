"""Generation speed (sampled chars/s) of `CharLSTM.step` against nn.LSTM's sequence path, measured in one run.

A sampler reads one character per row per call, the whole time: during training (samples at every epoch
end and every `sample_every` steps) and in `sample.py`. (a) is charexp's loop, which steps through
LSTMCells sharing the LSTM's weights; (b) is the same loop calling `model(token[:, None], state)`, the
nn.LSTM (cuDNN / oneDNN) path. Both draw from the same seeded generator, so the script also checks
that they write the same lines. Calls are interleaved (a, b, a, b, ...); medians over repeats.

    python benchmarks/sampling.py [--device cpu|cuda] [--config configs/startrek.yaml] [--primes KSKSKS] [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from charexp.config import load_config  # noqa: E402
from charexp.data.corpus import Vocab  # noqa: E402
from charexp.model import CharLSTM, configure_cuda, resolve_device  # noqa: E402
from charexp.sample.generate import generate  # noqa: E402

TEXT = ("KIRK: Mister Spock, report. SPOCK: Fascinating, Captain. McCOY: He's dead, Jim! "
        "UHURA: Hailing frequencies open.")


def sequence_path(model: CharLSTM):
    """The reference step: one-character sequences through nn.LSTM."""

    def step(token: torch.Tensor, state):
        logits, state = CharLSTM.forward(model, token[:, None], state)
        return logits[:, -1], state

    return step


def timed(model: CharLSTM, vocab: Vocab, primes: list[str], max_len: int, seed: int,
          device: torch.device) -> tuple[float, list[str]]:
    generator = torch.Generator(device=device).manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    lines = generate(model, vocab, primes, max_len, 1.0, 0, generator)  # ends with a host copy: no sync needed after
    return time.perf_counter() - start, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "configs" / "startrek.yaml"),
                        help="model shape and sample_max_len come from this config (default: configs/startrek.yaml)")
    parser.add_argument("--primes", default="KSKSKS", help="one line per character, as in sample.py (default: KSKSKS)")
    parser.add_argument("--repeats", type=int, default=15,
                        help="timed calls per implementation, after one warm-up each")
    args = parser.parse_args()

    device = resolve_device(args.device)
    if device.type == "cuda":
        configure_cuda()
    cfg = load_config(args.config)
    vocab = Vocab.from_texts([TEXT])
    torch.manual_seed(0)
    fast = CharLSTM.from_config(cfg, len(vocab)).to(device).eval()
    with torch.no_grad():
        fast.head.bias[vocab.eol] = -1e4  # no line ends early: every call runs the full sample_max_len steps
    reference = CharLSTM.from_config(cfg, len(vocab)).to(device).eval()
    reference.load_state_dict(fast.state_dict())
    reference.step = sequence_path(reference)
    primes = list(args.primes)

    times: dict[str, list[float]] = {"a": [], "b": []}
    same = True
    for repeat in range(args.repeats + 1):
        ta, lines_a = timed(fast, vocab, primes, cfg.sample_max_len, repeat, device)
        tb, lines_b = timed(reference, vocab, primes, cfg.sample_max_len, repeat, device)
        same &= lines_a == lines_b
        if repeat:  # the first call of each is the warm-up
            times["a"].append(ta)
            times["b"].append(tb)
    chars = len(primes) * cfg.sample_max_len
    a, b = (statistics.median(times[k]) for k in "ab")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; model {cfg.layers}x{cfg.hidden}, {len(primes)} lines x {cfg.sample_max_len} chars "
          f"per call, {args.repeats} calls each; torch {torch.__version__}")
    for label, t in (("(a) CharLSTM.step (LSTMCell)", a), ("(b) nn.LSTM sequence path", b)):
        print(f"{label:<30} {t * 1000:8.1f} ms/call  {t / cfg.sample_max_len * 1e6:7.1f} us/char step  "
              f"{chars / t:>9,.0f} chars/s")
    print(f"ratio (a)/(b) speed = {b / a:.2f}; same lines from the same seeds: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
