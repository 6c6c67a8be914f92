"""E6's table: how much compute each search needed to come within TOLERANCE of the best test/loss any found.

    python docs/experiments/e6/analyse.py --sweep grid=sweep-runs/ID --sweep bayes=sweep-runs/ID \
        --sweep lr-find+3=sweep-runs/ID --extra-minutes lr-find+3=0.5

For each search, runs are taken in the order they ended; run-epochs count the epochs each run trained (a run
hyperband stopped after epoch 1 counts 1), and wall minutes run from the sweep's creation to the end of the
first run that reached the target (plus --extra-minutes, e.g. the range test before its grid). Prints markdown.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

TOLERANCE = 0.01


def load(sweep: Path) -> tuple[datetime, list[dict]]:
    state = json.loads((sweep / "state.json").read_text())
    runs = [r for r in state["runs"] if r.get("ended") and r.get("metric") is not None]
    return datetime.fromisoformat(state["created"]), sorted(runs, key=lambda r: r["ended"])


def epochs_trained(run: dict) -> float:
    return float((run.get("summary") or {}).get("epoch") or 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sweep", action="append", required=True, metavar="NAME=DIR")
    parser.add_argument("--extra-minutes", action="append", default=[], metavar="NAME=MIN")
    parser.add_argument("--figure", metavar="PNG", help="also draw the best test/loss so far against run-epochs")
    args = parser.parse_args()
    extra = {k: float(v) for k, v in (item.split("=", 1) for item in args.extra_minutes)}
    searches = {name: load(Path(d)) for name, d in (item.split("=", 1) for item in args.sweep)}
    best = min(r["metric"] for _, runs in searches.values() for r in runs)
    target = best + TOLERANCE
    print(f"best test/loss of all: {best:.4f}; target: within {TOLERANCE} (<= {target:.4f})\n")
    print("| search | runs | stopped early | run-epochs in all | best test/loss (lr) | reached target after "
          "| run-epochs then | wall minutes then |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (created, runs) in searches.items():
        stopped = sum(1 for r in runs if r["state"] != "finished")
        top = min(runs, key=lambda r: r["metric"])
        spent, reached = 0.0, None
        for i, run in enumerate(runs):
            spent += epochs_trained(run)
            if run["metric"] <= target:
                minutes = (datetime.fromisoformat(run["ended"]) - created).total_seconds() / 60 + extra.get(name, 0.0)
                reached = f"{i + 1} runs | {spent:g} | {minutes:.1f}"
                break
        total = sum(epochs_trained(r) for r in runs)
        print(f"| {name} | {len(runs)} | {stopped} | {total:g} | {top['metric']:.4f} ({top['params'].get('lr'):.3g}) "
              f"| {reached or 'never | - | -'} |")
    if args.figure:
        draw(searches, target, args.figure)


def draw(searches: dict[str, tuple[datetime, list[dict]]], target: float, path: str) -> None:
    """Best test/loss so far against the run-epochs spent, one step line per search."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, (_, runs) in searches.items():
        spent, best, xs, ys = 0.0, float("inf"), [0.0], []
        for run in runs:
            spent += epochs_trained(run)
            best = min(best, run["metric"])
            xs.append(spent)
            ys.append(best)
        ax.step(xs[1:], ys, where="post", marker="o", markersize=3, label=name)
    ax.axhline(target, color="0.4", linestyle="--", linewidth=1, label=f"target (best + {TOLERANCE})")
    ax.set_xlabel("run-epochs spent (epochs of 400 steps, runs in the order they ended)")
    ax.set_ylabel("best test/loss so far (nats/char)")
    ax.set_ylim(target - 0.05, 2.0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
