"""E5's summary figure: each panel is one config's test/loss against lr (the grid's truth), with the range
test's suggestions over seeds as vertical lines.

    python docs/experiments/e5/figure.py OUT.png \
        --panel "TITLE" --finder lr-find/e5-startrek --sweep sweep-runs/ID [--sweep ...] [--points 0.001:1.26,...]

--sweep reads each finished run's lr and metric from a charexp sweep's state.json (several seeds of one lr are
drawn as mean +- std); --points gives lr:loss pairs from an earlier write-up; --finder reads every lr_find.json
under a directory. Panels are drawn in the order given.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def parse(argv: list[str]) -> tuple[str, list[dict]]:
    out, panels = argv[0], []
    parser = argparse.ArgumentParser()
    parser.add_argument("--panel")
    parser.add_argument("--finder", action="append", default=[])
    parser.add_argument("--sweep", action="append", default=[])
    parser.add_argument("--points", default="")
    chunks, current = [], []
    for arg in argv[1:]:
        if arg == "--panel" and current:
            chunks.append(current)
            current = []
        current.append(arg)
    chunks.append(current)
    for chunk in chunks:
        panels.append(vars(parser.parse_args(chunk)))
    return out, panels


def grid_points(panel: dict) -> dict[float, list[float]]:
    points: dict[float, list[float]] = defaultdict(list)
    for sweep in panel["sweep"]:
        for run in json.loads((Path(sweep) / "state.json").read_text())["runs"]:
            if run["state"] == "finished" and run.get("metric") is not None:
                points[float(run["params"]["lr"])].append(float(run["metric"]))
    for pair in filter(None, panel["points"].split(",")):
        lr, loss = pair.split(":")
        points[float(lr)].append(float(loss))
    return points


def suggestions(panel: dict) -> list[tuple[str, float]]:
    found = []
    for finder in panel["finder"]:
        for path in sorted(Path(finder).glob("*/lr_find.json")):
            result = json.loads(path.read_text())
            if result["suggestion"]["lr"]:
                found.append((Path(finder).name, float(result["suggestion"]["lr"])))
    return found


def main(argv: list[str]) -> None:
    out, panels = parse(argv)
    cols = min(2, len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(5.2 * cols, 4.2 * rows), dpi=110)
    FigureCanvasAgg(fig)
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        points = grid_points(panel)
        lrs = sorted(points)
        means = [statistics.fmean(points[lr]) for lr in lrs]
        stds = [statistics.stdev(points[lr]) if len(points[lr]) > 1 else 0.0 for lr in lrs]
        ax.errorbar(lrs, means, yerr=stds, marker="o", color="C0", capsize=3, label="grid (mean ± std over seeds)")
        colours: dict[str, str] = {}
        for name, lr in suggestions(panel):
            first = name not in colours
            colour = colours.setdefault(name, f"C{len(colours) + 1}")
            ax.axvline(lr, color=colour, linestyle="--", linewidth=1, label=f"lr-find: {name}" if first else None)
        ax.set_xscale("log")
        ax.set_title(panel["panel"], fontsize=10)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("test/loss (nats/char)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    print(out)


if __name__ == "__main__":
    main(sys.argv[1:])
