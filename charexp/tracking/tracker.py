"""The W&B run and the local run directory, behind one small interface.

The training loop calls log / log_samples / log_model / finish and never learns whether W&B
is online, offline or disabled. The tracker knows nothing about LSTMs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from charexp.tracking.rundir import RunDir
from charexp.wandb_env import has_api_key

def choose_mode(requested: str) -> tuple[str, str | None]:
    """(mode, note for the user). `auto` honours WANDB_MODE, else online only with an API key."""
    if requested != "auto":
        return requested, None
    env = os.environ.get("WANDB_MODE", "").lower()
    if env in ("online", "offline", "disabled"):
        return env, None
    if env in ("dryrun",):
        return "offline", None
    if has_api_key():
        return "online", None
    return "offline", "W&B: no API key configured, so this run is offline (upload it later with 'wandb sync'; 'wandb login' makes runs online)."


def _finite_or_none(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


class Tracker:
    def __init__(self, config: dict[str, Any], run_dir: RunDir, resume: bool, mode: str):
        os.environ.setdefault("WANDB_SILENT", "true")  # our own lines say what matters; keep wandb's terminal chatter out
        import wandb

        self.run_dir = run_dir
        self.mode = mode
        self.config_project = config["wandb_project"]
        self._finished = False
        self.run = wandb.init(
            project=config["wandb_project"],
            entity=config.get("wandb_entity"),
            id=run_dir.run_id,
            resume="allow" if resume else None,
            config=config,
            mode=mode,
            settings=wandb.Settings(console="off", quiet=True, silent=True),
        )
        self.run.define_metric("test/loss", summary="min")
        self.run.define_metric("test/bpc", summary="min")
        self._samples = wandb.Table(columns=["step", "epoch", "prime", "text"], log_mode="INCREMENTAL")

    @property
    def project(self) -> str:
        """The project the run really joined (a sweep's WANDB_PROJECT wins over the config)."""
        return getattr(self.run, "project", None) or self.config_project

    @property
    def sweep_id(self) -> str | None:
        return getattr(self.run, "sweep_id", None) or os.environ.get("WANDB_SWEEP_ID")

    @property
    def wandb_config(self) -> dict[str, Any]:
        return {k: v for k, v in dict(self.run.config).items() if not k.startswith("_")}

    @property
    def files_dir(self) -> str | None:
        """Where W&B keeps this run's files (offline: wandb/offline-run-*), for 'wandb sync'."""
        if self.mode == "disabled":
            return None
        return str(Path(self.run.settings.sync_dir)) if getattr(self.run.settings, "sync_dir", None) else None

    def log(self, row: dict[str, Any], step: int) -> None:
        self.run.log(row, step=step)
        self.run_dir.append_history({"step": step, **{k: _finite_or_none(v) for k, v in row.items()}})

    def log_samples(self, step: int, epoch: float, lines: list[tuple[str, str]]) -> None:
        for prime, text in lines:
            self._samples.add_data(step, epoch, prime, text)
        self.run.log({"samples": self._samples}, step=step)
        self.run_dir.append_samples(step, epoch, lines)

    def log_model(self, name: str, path: Path, aliases: list[str], metadata: dict[str, Any]) -> None:
        """One W&B artifact version per checkpoint; `wandb sync` uploads it with its aliases."""
        if self.mode == "disabled":
            return
        import wandb

        artifact = wandb.Artifact(name, type="model", metadata=metadata)
        artifact.add_dir(str(path))
        self.run.log_artifact(artifact, aliases=aliases)

    def summary(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            self.run.summary[key] = value

    def finish(self, exit_code: int = 0, preempting: bool = False) -> None:
        """End the W&B run once; later calls do nothing."""
        import wandb

        if self._finished:
            return
        self._finished = True
        if preempting:
            self.run.mark_preempting()
        self.run.finish(exit_code=exit_code)
        wandb.teardown()
