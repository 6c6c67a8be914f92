"""`charexp report RUN_DIR`: figures, samples and a summary of one run, from its local files only.

Reads runs/<run_id>/ (config.yaml, history.jsonl, samples.txt, summary.json) and the local
artifact store, and writes report/ inside it (or wherever asked): loss.png (train and test loss on one
figure), lr.png, train_loss.png, test_loss.png, accuracy.png (run_plots.py), samples.md, summary.md.
A run that was killed mid-way reports whatever it logged.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charexp.atomic import atomic_write_text
from charexp.errors import CharexpError
from charexp.numbers import finite
from charexp.report.plots import LN2, rejections
from charexp.report.run_plots import FIGURES as FIGURE_BUILDERS
from charexp.report.run_plots import write_figures
from charexp.store.artifacts import ArtifactStore
from charexp.summary_view import fmt, param_text
from charexp.tracking.rundir import RunDir, RunSummary

FIGURES = tuple(FIGURE_BUILDERS)  # loss.png (train and test together), lr.png, train_loss.png, test_loss.png, ...
STOPPED_EARLY = ("crashed", "preempted", "diverged")


@dataclass
class RunData:
    """Everything a report needs from one run directory."""

    run: RunDir
    config: dict[str, Any]
    summary: RunSummary
    history: list[dict[str, Any]]
    samples: list[dict[str, Any]]
    versions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.summary.run_id or self.run.run_id

    @property
    def state(self) -> str:
        return self.summary.state or "unknown (no summary.json)"

    @property
    def evals(self) -> list[dict[str, Any]]:
        return [r for r in self.history if finite(r.get("test/loss"))]

    @property
    def best(self) -> dict[str, Any] | None:
        """The eval row with the lowest test/loss (from history, so a killed run has one too)."""
        evals = self.evals
        if evals:
            return min(evals, key=lambda r: r["test/loss"])
        summary = self.summary
        if finite(summary.best_test_loss):
            return {"test/loss": summary.best_test_loss, "epoch": summary.best_epoch, "step": summary.best_step}
        return None

    @property
    def final_test_loss(self) -> float | None:
        evals = self.evals
        return evals[-1]["test/loss"] if evals else None

    @property
    def last_step(self) -> int | None:
        steps = [r["step"] for r in self.history if isinstance(r.get("step"), int)]
        return max(steps) if steps else self.summary.step

    @property
    def updated_at(self) -> float | None:
        """When the run last wrote one of its files (a killed run's summary.json is stale, its history is not)."""
        paths = (self.run.summary_path, self.run.history_path, self.run.samples_path, self.run.config_path)
        files = [p for p in paths if p.exists()]
        return max(p.stat().st_mtime for p in files) if files else None

    @property
    def updated(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.updated_at)) if self.updated_at else "-"


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in ("summary.json", "config.yaml", "history.jsonl"))


def load_run(path: str | Path, with_versions: bool = True) -> RunData:
    path = Path(path)
    if not is_run_dir(path):
        raise CharexpError(f"{path} is not a run directory (it has no config.yaml, summary.json or history.jsonl); "
                           "pass runs/<run_id>, see charexp runs")
    run = RunDir(path.parent, path.name)
    config = run.read_config()
    data = RunData(run, config if isinstance(config, dict) else {}, run.read_summary(),
                   [row for row in run.history() if isinstance(row, dict)], run.samples())
    if with_versions:
        data.versions = artifact_versions(data)
    return data


def artifact_versions(data: RunData) -> list[dict[str, Any]]:
    """This run's checkpoint versions in the local store, with their current aliases; else the summary's list."""
    name = data.config.get("artifact_name") or data.summary.artifact
    root = data.config.get("artifacts_dir") or "artifacts"
    if name:
        candidates = [Path(root)] if os.path.isabs(root) else [Path.cwd() / root, data.run.path.parent.parent / root]
        for base in dict.fromkeys(p.resolve() for p in candidates):
            try:
                versions = ArtifactStore(base, name).versions()
            except CharexpError:
                continue
            mine = [v for v in versions if v.meta.get("run_id") == data.run_id]
            if mine:
                return [{"name": f"{name}:{v.version}", "epoch": v.meta.get("epoch"), "step": v.meta.get("step"),
                         "test_loss": v.meta.get("test_loss"), "aliases": ", ".join(v.aliases), "path": str(v.path)}
                        for v in mine]
    return [{"name": entry, "epoch": None, "step": None, "test_loss": None, "aliases": "", "path": ""}
            for entry in data.summary.versions]


# --- markdown ---------------------------------------------------------------------------------
def samples_markdown(data: RunData) -> str:
    """Every sampled line, grouped by epoch (a sample at epoch 1.4 was taken during epoch 2), then by step."""
    lines = [f"# Samples — run {data.run_id}", ""]
    if not data.samples:
        return "\n".join(lines + ["No samples logged yet.", ""])
    total_epochs = data.config.get("epochs")
    lines += [f"{len(data.samples)} lines sampled at {len({s['step'] for s in data.samples})} points "
              f"(temperature {data.config.get('sample_temperature', '-')}, "
              f"primes {data.config.get('sample_chars', '-')!r}).", ""]
    by_epoch: dict[int, dict[int, list[dict[str, Any]]]] = {}
    for sample in data.samples:
        by_epoch.setdefault(max(1, math.ceil(sample["epoch"])), {}).setdefault(sample["step"], []).append(sample)
    for epoch, steps in sorted(by_epoch.items()):
        lines += [f"## Epoch {epoch}" + (f" of {total_epochs}" if total_epochs else ""), ""]
        for step, group in sorted(steps.items()):
            text = [s["text"] for s in group]
            fence = "`" * max(3, 1 + max((_longest_run(t, "`") for t in text), default=0))
            note = f", {group[0]['note']}: its weights were thrown away" if group[0].get("note") else ""
            lines += [f"### step {step} (epoch {group[0]['epoch']:g}{note})", "", fence + "text", *text, fence, ""]
    return "\n".join(lines)


def status_note(data: RunData) -> str | None:
    """One sentence for a run that has no clean end, or None."""
    resume = f" Continue it with `python train.py --resume {data.run_id}`." if data.run.state_path.exists() else ""
    upto = f"the report shows what it logged up to step {fmt(data.last_step)}."
    if data.state == "running" or data.summary.empty:
        return (f"This run has not finished (state: {data.state}): it is still training, or it was killed; "
                f"{upto}{resume}")
    if data.state in STOPPED_EARLY:
        return f"This run stopped early (state: {data.state}); {upto}{resume if data.state != 'diverged' else ''}"
    return None


def summary_markdown(data: RunData) -> str:
    best, cfg, summary = data.best, data.config, data.summary
    lines = [f"# Run {data.run_id}", ""]
    if note := status_note(data):
        lines += [f"> {note}", ""]
    facts = [
        ("state", data.state),
        ("best test/loss", f"{fmt(best['test/loss'])} nats/char = {fmt(best['test/loss'] / LN2)} bpc, "
                           f"at epoch {param_text(best.get('epoch'))} (step {fmt(best.get('step'))})" if best else "-"),
        ("final test/loss", fmt(data.final_test_loss)),
        ("last eval", ", ".join(f"{k} {fmt(v)}" for k, v in data.evals[-1].items() if k.startswith("test/"))
         if data.evals else "-"),
        ("trained", f"{fmt(data.last_step)} steps"
         + (f", {summary.chars:,} chars in {fmt(summary.seconds, 1)} s on {summary.device}" if summary.chars else "")),
        ("model", f"{cfg.get('layers', '?')}×{cfg.get('hidden', '?')} LSTM, embed {cfg.get('embed', '?')}, "
                  f"dropout {cfg.get('dropout', '?')}"),
        ("rejected epochs", ", ".join(f"{e} (step {s:g})" for s, e in rejections(data.history)) or "none"),
        ("W&B", f"{summary.wandb_mode or '-'} {summary.wandb_dir or ''}".strip()
         + (f", sweep {summary.sweep_id}" if summary.sweep_id else "")),
        ("updated", data.updated),
    ]
    lines += ["| | |", "|---|---|", *(f"| {k} | {_cell(v)} |" for k, v in facts), ""]
    lines += ["## Figures", "", *(f"![{name[:-4]}]({name})" for name in FIGURES), "",
              "Samples across epochs: [samples.md](samples.md).", ""]
    lines += ["## Artifact versions", ""]
    if data.versions:
        lines += ["| version | epoch | step | test/loss | aliases |", "|---|---|---|---|---|"]
        lines += [f"| {_cell(v['name'])} | {param_text(v['epoch'])} | {fmt(v['step'])} | {fmt(v['test_loss'])} "
                  f"| {_cell(v['aliases'])} |" for v in data.versions]
    else:
        lines += ["No checkpoint published yet (one is published at the end of every epoch)."]
    lines += ["", "## Config", "", "| key | value |", "|---|---|",
              *(f"| {k} | {_cell(repr(v) if isinstance(v, str) else v)} |" for k, v in cfg.items()), ""]
    return "\n".join(lines)


def write_run_report(run_path: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the report of one run into `out_dir` (default RUN_DIR/report/) and return that directory."""
    data = load_run(run_path)
    return write_report(data, Path(out_dir) if out_dir else data.run.path / "report")


def write_report(data: RunData, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    write_figures(data, out)
    atomic_write_text(out / "samples.md", samples_markdown(data))
    atomic_write_text(out / "summary.md", summary_markdown(data))
    return out


def _longest_run(text: str, char: str) -> int:
    best = run = 0
    for c in text:
        run = run + 1 if c == char else 0
        best = max(best, run)
    return best


def _cell(value: Any) -> str:
    """A markdown table cell: pipes escaped, newlines flattened."""
    return str(value).replace("|", "\\|").replace("\n", " ")
