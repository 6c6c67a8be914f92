"""Wall time of whole `sample.py` processes, against `python -c "import torch"` measured in the same run.

`sample.py KSKSKS --checkpoint DIR` should cost little more than importing torch: wandb, matplotlib
and the sweep machinery are never imported on that path.

    python benchmarks/startup.py [--checkpoint DIR] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wall(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def make_checkpoint(tmp: Path) -> Path:
    """A real 2x200 checkpoint written by charexp itself (untrained weights: sampling cost is the same)."""
    sys.path.insert(0, str(ROOT))
    from charexp.config import build_config
    from charexp.data.corpus import Vocab
    from charexp.model import CharLSTM
    from charexp.store.checkpoint import write_checkpoint

    cfg = build_config({})
    vocab = Vocab.from_texts(["KIRK: Mister Spock, report. SPOCK: Fascinating, Captain."])
    return write_checkpoint(tmp / "ckpt", CharLSTM.from_config(cfg, len(vocab)), cfg, vocab,
                            {"run_id": "bench", "epoch": 0, "step": 0})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="checkpoint directory (default: a fresh 2x200 one)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(args.checkpoint) if args.checkpoint else make_checkpoint(Path(tmp))
        commands = {
            "python -c 'import torch'": [sys.executable, "-c", "import torch"],
            "sample.py KSKSKS --checkpoint DIR": [sys.executable, str(ROOT / "sample.py"), "KSKSKS", "--checkpoint",
                                                  str(ckpt), "--seed", "0"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for name, cmd in commands.items():  # warm the page cache
            wall(cmd, Path(tmp))
        for _ in range(args.repeats):  # interleaved, so machine noise hits both alike
            for name, cmd in commands.items():
                times[name].append(wall(cmd, Path(tmp)))
    torch_s, sample_s = (statistics.median(t) for t in times.values())
    for name, t in times.items():
        print(f"{name:<36} median {statistics.median(t):.3f} s   (runs: {', '.join(f'{x:.2f}' for x in t)})")
    print(f"sample.py beyond importing torch: {sample_s - torch_s:+.3f} s; "
          f"ratio sample/torch-import = {sample_s / torch_s:.2f}")


if __name__ == "__main__":
    main()
