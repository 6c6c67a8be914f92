"""Test loss after a fixed wall-clock training budget: how a change in batching or LR schedule is judged.

Trains configs/startrek.yaml (or --config) on the real corpus with the anchors' protocol: utterance
split (`random.Random(0).shuffle`, 90/10), seed 0, every test utterance scored whole from a zero
state. Reports test/loss in nats/char, bpc and argmax accuracy, and the anchors measured the same
way on 2 CPU cores after 10 minutes.

    python benchmarks/quality.py [--minutes 10] [--config configs/startrek.yaml] [--device cpu] [KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from charexp.tracking.rundir import list_runs  # noqa: E402
from charexp.train.main import main as train_main  # noqa: E402

ANCHORS_BPC = {"tuned bucketed loop": 1.705, "homework batch-1 loop": 1.779, "pytorch/examples word_language_model": 1.791}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall-clock budget")
    parser.add_argument("--config", default=str(ROOT / "configs" / "startrek.yaml"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("overrides", nargs="*", help="extra config overrides, e.g. lr=0.003 lr_decay=0.7")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        argv = ["--config", args.config, "--split=line", "--test_fraction=0.1", "--seed=0", f"--device={args.device}",
                f"--max_minutes={args.minutes}", "--epochs=1000", "--sample_every=0", "--wandb_mode=disabled",
                f"--runs_dir={tmp}/runs", f"--artifacts_dir={tmp}/artifacts", *args.overrides]
        code = train_main(argv)
        run = list_runs(f"{tmp}/runs")[-1]
        summary = run.read_summary()
        evals = [r for r in run.history() if "test/loss" in r]
    if code != 0:
        raise SystemExit(code)
    last = summary["last_eval"]
    print(json.dumps({"per_epoch_test_bpc": [round(r["test/bpc"], 4) for r in evals]}))
    print(f"budget {args.minutes:g} min on {summary['device']}: {summary['step']} steps, {summary['chars']:,} chars, "
          f"{summary['epoch']} full epochs + part")
    print(f"test/loss {last['test/loss']:.4f} nats/char = {last['test/loss'] / math.log(2):.4f} bpc; "
          f"test/acc_argmax {last['test/acc_argmax']:.4f}; best {summary['best_test_loss'] / math.log(2):.4f} bpc")
    for name, bpc in ANCHORS_BPC.items():
        print(f"  anchor {name:<40} {bpc:.3f} bpc  (charexp - anchor = {last['test/loss'] / math.log(2) - bpc:+.3f})")


if __name__ == "__main__":
    main()
