"""One range test from config to W&B: build the data and model as training would, ramp, suggest, draw, log."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from charexp.atomic import atomic_write_text
from charexp.config import load_config
from charexp.data.batching import EncodedSplit
from charexp.lrfind.finder import Curve, RangeTest, run_range_test
from charexp.lrfind.plot import plot_range_test
from charexp.lrfind.rule import Suggestion, suggest
from charexp.model import training_device
from charexp.numbers import finite_or_none
from charexp.tracking.rundir import RunDir
from charexp.tracking.tracker import Tracker, choose_mode
from charexp.train.main import build, new_model

JOB_TYPE = "lr-find"
PRINT_EVERY = 50  # plain progress lines when the output is not a terminal


@dataclass
class RangeTestResult:
    run_id: str
    out_dir: str
    config: dict[str, Any]
    curve: Curve
    suggestion: Suggestion
    sync_dir: str | None  # the offline W&B run's directory, for wandb sync


def progress_bar(console: Console, total: int) -> Progress:
    return Progress(TextColumn("[bold]lr-find"), BarColumn(), MofNCompleteColumn(), TextColumn("lr {task.fields[lr]}"),
                    TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), console=console,
                    disable=not console.is_terminal)


def run_session(config_path: str | None, overrides: dict[str, Any], test: RangeTest, out_root: Path,
                console: Console) -> RangeTestResult:
    import wandb
    from wandb.sdk.lib.runid import generate_id  # W&B's own run ids

    cfg = load_config(config_path, overrides)
    device = training_device(cfg.device, cfg.amp)
    cfg, corpus, init = build(cfg, None)  # init_from: the test starts from that checkpoint's weights
    mode, note = choose_mode(cfg.wandb_mode)
    if note:
        console.print(note, highlight=False)
    console.print(corpus.describe(), highlight=False)
    model = new_model(cfg, len(corpus.vocab), device, init)
    split = EncodedSplit(corpus.train, corpus.vocab, device)

    run_dir = RunDir(out_root, generate_id())
    run_dir.create()
    tracker = Tracker({**cfg.to_dict(), "lr_find": asdict(test)}, run_dir, resume=False, mode=mode, job_type=JOB_TYPE)
    try:
        tracker.run.define_metric("lr-find/loss", step_metric="lr-find/lr")
        with progress_bar(console, test.steps) as bar:
            task = bar.add_task("lr-find", total=test.steps, lr="-", loss="-")

            def on_step(step: int, lr: float, loss: float) -> None:
                tracker.log({"lr-find/lr": lr, "lr-find/loss": loss}, step=step)
                bar.update(task, completed=step, lr=f"{lr:.2g}", loss=f"{loss:.3f}")
                if not console.is_terminal and step % PRINT_EVERY == 0:
                    console.print(f"lr-find step {step:>5} | lr {lr:.3g} | loss {loss:.4f}", highlight=False)

            curve = run_range_test(model, split, cfg, test, on_step)
        suggestion = suggest(curve.lrs, curve.losses, skip_start=test.skip_start, diverge=test.diverge)
        figure = plot_range_test(curve, suggestion, run_dir.path / "lr_find.png",
                                 f"lr-find: {Path(config_path).name if config_path else 'config'}")
        atomic_write_text(run_dir.path / "lr_find.json", json.dumps(
            {"run_id": run_dir.run_id, "config": cfg.to_dict(), "range_test": asdict(test), "stopped": curve.stopped,
             "seconds": round(curve.seconds, 2), "chars": curve.chars, "lrs": curve.lrs,
             "losses": [finite_or_none(x) for x in curve.losses], "suggestion": suggestion.to_dict()}, indent=1) + "\n")
        rows = [[lr, loss, suggestion.smoothed[i] if i < len(suggestion.smoothed) else None]
                for i, (lr, loss) in enumerate(zip(curve.lrs, curve.losses))]
        tracker.run.log({"lr-find/curve": wandb.Table(columns=["lr", "loss", "smoothed"], data=rows),
                         "lr-find/figure": wandb.Image(str(figure))}, step=len(curve.lrs))
        tracker.summary({"suggested_lr": suggestion.lr, "steepest_lr": suggestion.steepest_lr,
                         "min_loss_lr": suggestion.min_lr, "stopped": curve.stopped, "reason": suggestion.reason})
    except KeyboardInterrupt:
        tracker.finish(exit_code=130)
        raise
    except BaseException:
        tracker.finish(exit_code=1)
        raise
    sync_dir = tracker.files_dir if tracker.mode == "offline" else None
    tracker.finish(exit_code=0)
    return RangeTestResult(run_dir.run_id, str(run_dir.path), cfg.to_dict(), curve, suggestion, sync_dir)
