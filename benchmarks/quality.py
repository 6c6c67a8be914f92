"""Test loss after a fixed wall-clock training budget: how a change in batching or LR schedule is judged.

Trains configs/startrek.yaml (or --config) on the real corpus with the anchors' protocol: utterance
split (`random.Random(0).shuffle`, 90/10, split_seed 0), every test utterance scored whole from a zero
state. Reports test/loss in nats/char, bpc and argmax accuracy, and the anchors measured the same
way on 2 CPU cores after 10 minutes.

With --seeds N the budget is run N times, with training seeds 0..N-1 (initialisation, batch order,
sampling) on the one test set (split_seed 0), and the result is the mean ± standard deviation over
seeds: the run-to-run noise that any comparison between two settings has to beat.

    python benchmarks/quality.py [--minutes 10] [--seeds 3] [--config configs/startrek.yaml] [--device cpu]
                                 [KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from charexp.tracking.rundir import list_runs  # noqa: E402
from charexp.train.main import main as train_main  # noqa: E402

ANCHORS_BPC = {"tuned bucketed loop": 1.705, "homework batch-1 loop": 1.779,
               "pytorch/examples word_language_model": 1.791}


def run_budget(config: str, minutes: float, device: str, seed: int, overrides: list[str]) -> dict:
    """One training run of `minutes` on the anchors' test set; its summary figures."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["--config", config, "--split=line", "--test_fraction=0.1", "--split_seed=0", f"--seed={seed}",
                f"--device={device}", f"--max_minutes={minutes}", "--epochs=1000", "--sample_every=0",
                "--wandb_mode=disabled",
                f"--runs_dir={tmp}/runs", f"--artifacts_dir={tmp}/artifacts", *overrides]
        code = train_main(argv)
        if code != 0:
            raise SystemExit(code)
        run = list_runs(f"{tmp}/runs")[-1]
        summary = run.read_summary()
        evals = [r for r in run.history() if "test/loss" in r]
    last = summary["last_eval"]
    return {"seed": seed, "test_loss": last["test/loss"], "test_bpc": last["test/loss"] / math.log(2),
            "acc_argmax": last["test/acc_argmax"], "best_bpc": summary["best_test_loss"] / math.log(2),
            "steps": summary["step"], "chars": summary["chars"], "full_epochs": summary["epoch"],
            "device": summary["device"],
            "per_epoch_test_bpc": [round(r["test/bpc"], 4) for r in evals]}


def spread(values: list[float]) -> str:
    """mean ± sample standard deviation (n-1), or the one value."""
    if len(values) < 2:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall-clock budget per run")
    parser.add_argument("--seeds", type=int, default=1,
                        help="runs with training seeds 0..N-1 on the same test set (split_seed 0)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="start the seeds here (e.g. to add seeds 3..5 to an earlier 0..2)")
    parser.add_argument("--config", default=str(ROOT / "configs" / "startrek.yaml"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also append one JSON line per run to this file")
    parser.add_argument("overrides", nargs="*", help="extra config overrides, e.g. lr=0.003 lr_decay=0.7")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    overrides = [o if o.startswith("--") else f"--{o}" for o in args.overrides]

    results = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        result = run_budget(args.config, args.minutes, args.device, seed, overrides)
        result.update(minutes=args.minutes, config=args.config, overrides=args.overrides)
        results.append(result)
        print(json.dumps(result), flush=True)
        if args.json:
            with open(args.json, "a", encoding="utf-8") as f:
                f.write(json.dumps(result) + "\n")
        print(f"seed {seed}: budget {args.minutes:g} min on {result['device']}: {result['steps']} steps, "
              f"{result['chars']:,} chars, {result['full_epochs']} full epochs + part; "
              f"test/loss {result['test_loss']:.4f} nats/char = {result['test_bpc']:.4f} bpc; "
              f"test/acc_argmax {result['acc_argmax']:.4f}", flush=True)
    bpc = [r["test_bpc"] for r in results]
    print(f"test bpc over {len(results)} seed(s): {spread(bpc)} (seeds {', '.join(str(r['seed']) for r in results)}; "
          f"chars trained {spread([r['chars'] / 1e6 for r in results])} M)")
    mean = statistics.mean(bpc)
    for name, anchor in ANCHORS_BPC.items():
        print(f"  anchor {name:<40} {anchor:.3f} bpc  (charexp mean - anchor = {mean - anchor:+.3f})")


if __name__ == "__main__":
    main()
