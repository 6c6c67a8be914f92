"""The W&B run and the local run directory, behind one small interface.

The training loop calls log / log_samples / log_model / finish and never learns whether W&B
is online, offline or disabled. The tracker knows nothing about LSTMs.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

from charexp.errors import CharexpError
from charexp.tracking.rundir import RunDir
from charexp.wandb_env import REACH_TIMEOUT_S, base_url, check_wandb_env, has_api_key, server_answers


def choose_mode(requested: str) -> tuple[str, str | None]:
    """(mode, note for the user). `auto` honours WANDB_MODE, else online only with an API key and a W&B server
    that answers within a few seconds; otherwise offline, said in one line. An explicit online mode (the config's
    or WANDB_MODE's) that has no key or no answering server is one sentence within those seconds, not a
    90-second retry inside wandb.init that ends in a traceback.

    First, a WANDB_* variable that wandb.init would die on (`WANDB_MODE=`, a misspelt mode) is one
    sentence here, before the run starts, whatever the mode."""
    check_wandb_env()
    env = os.environ.get("WANDB_MODE", "").lower()
    mode = requested
    if requested == "auto" and env in ("online", "offline", "disabled", "dryrun"):
        mode = "offline" if env == "dryrun" else env
    if mode == "online":
        where = "wandb_mode online" if requested == "online" else "WANDB_MODE=online"
        if not has_api_key():
            raise CharexpError(f"{where} needs a W&B API key and none is configured; "
                               "run 'wandb login' (or set WANDB_API_KEY), "
                               "or train offline with wandb_mode: offline and upload later with wandb sync")
        if not server_answers():
            raise CharexpError(f"{where}, but the W&B server {base_url()} did not answer within {REACH_TIMEOUT_S:g} s; "
                               "check the network (or WANDB_BASE_URL), "
                               "or train offline with wandb_mode: offline and upload later with wandb sync")
        return mode, None
    if mode != "auto":
        return mode, None
    if not has_api_key():
        return "offline", ("W&B: no API key configured, so this run is offline "
                           "(upload it later with 'wandb sync'; 'wandb login' makes runs online).")
    if not server_answers():
        return "offline", (f"W&B: an API key is configured but {base_url()} did not answer within "
                           f"{REACH_TIMEOUT_S:g} s, so this run is offline; "
                           "upload it later with the 'wandb sync' command printed at the end.")
    return "online", None


def local_sweep_id(environ: dict[str, str] | None = None) -> str | None:
    """The sweep id in WANDB_SWEEP_PARAM_PATH (.../sweep-<id>/config-<run>.yaml), if any."""
    path = (os.environ if environ is None else environ).get("WANDB_SWEEP_PARAM_PATH")
    parent = Path(path).parent.name if path else ""
    return parent[len("sweep-"):] if parent.startswith("sweep-") and len(parent) > len("sweep-") else None


def run_project(config_project: str, environ: dict[str, str] | None = None) -> str:
    """A sweep's project wins over the config's, as under `wandb agent` (where W&B ignores init's project).
    charexp sweep runs have no server-side sweep id, so W&B would honour init's project: pass WANDB_PROJECT."""
    environ = os.environ if environ is None else environ
    in_sweep = environ.get("WANDB_SWEEP_ID") or environ.get("WANDB_SWEEP_PARAM_PATH")
    return environ.get("WANDB_PROJECT") or config_project if in_sweep else config_project


def _finite_or_none(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


class Tracker:
    def __init__(self, config: dict[str, Any], run_dir: RunDir, resume: bool, mode: str, group: str | None = None,
                 job_type: str = "train"):
        """`group`: the W&B run group (charexp passes the config's replicate group, so runs that differ only in
        seed are one line with a band in W&B's UI); a WANDB_RUN_GROUP the user set wins. `job_type` keeps
        kinds of runs apart (train; lr-find)."""
        os.environ.setdefault("WANDB_SILENT", "true")  # our own lines say what matters, not wandb's terminal chatter
        import wandb

        self.run_dir = run_dir
        self.mode = mode
        self.config_project = config["wandb_project"]
        self._finished = False
        self.run = wandb.init(
            project=run_project(config["wandb_project"]),
            entity=(os.environ.get("WANDB_ENTITY") if local_sweep_id() else None) or config.get("wandb_entity"),
            id=run_dir.run_id,
            resume="allow" if resume else None,
            config=config,
            group=os.environ.get("WANDB_RUN_GROUP") or group,
            job_type=os.environ.get("WANDB_JOB_TYPE") or job_type,
            mode=mode,
            settings=wandb.Settings(console="off", quiet=True, silent=True),
        )
        self.run.define_metric("test/loss", summary="min")
        self.run.define_metric("test/bpc", summary="min")
        self._samples = wandb.Table(columns=["step", "epoch", "prime", "text", "note"], log_mode="INCREMENTAL")

    @property
    def project(self) -> str:
        """The project the run really joined (a sweep's WANDB_PROJECT wins over the config)."""
        return getattr(self.run, "project", None) or self.config_project

    @property
    def sweep_id(self) -> str | None:
        """W&B's sweep id; for a `charexp sweep` run (no server-side sweep) the local one, from the
        parameter file's folder, which `wandb agent` and charexp sweep both name wandb/sweep-<id>/."""
        return getattr(self.run, "sweep_id", None) or os.environ.get("WANDB_SWEEP_ID") or local_sweep_id()

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

    def log_samples(self, step: int, epoch: float, lines: list[tuple[str, str]], note: str = "") -> None:
        """`note` marks lines from weights that were thrown away (an epoch that reject_worse rejected)."""
        for prime, text in lines:
            self._samples.add_data(step, epoch, prime, text, note)
        self.run.log({"samples": self._samples}, step=step)
        self.run_dir.append_samples(step, epoch, lines, note)

    def log_model(self, name: str, path: Path, aliases: list[str], metadata: dict[str, Any]) -> str | None:
        """One W&B artifact version per checkpoint.

        Offline, it carries the local store's aliases, and `wandb sync` uploads them as they are.
        Online, the best-test-loss aliases are left out of `log_artifact` and decided against the
        project's collection once the version is committed (charexp.tracking.online_best); returns
        that decision's line, or a warning line when W&B could not be asked (training goes on)."""
        if self.mode == "disabled":
            return None
        import wandb

        from charexp.store.best import is_best_alias

        artifact = wandb.Artifact(name, type="model", metadata=metadata)
        artifact.add_dir(str(path))
        if self.mode != "online":
            self.run.log_artifact(artifact, aliases=aliases)
            return None
        logged = self.run.log_artifact(artifact, aliases=[a for a in aliases if not is_best_alias(a)])
        try:
            from charexp.tracking.online_best import settle_best

            logged.wait()
            return settle_best(f"{self.run.entity}/{self.run.project}/{name}", logged.version, metadata)
        except Exception as err:  # the W&B client raises many types; a checkpoint must not be lost over an alias
            why = (str(err).splitlines() or [type(err).__name__])[0][:120]
            line = f"W&B: could not update best-test-loss for {name} ({why}); the local store is unaffected"
            print(line, file=sys.stderr)
            return line

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
