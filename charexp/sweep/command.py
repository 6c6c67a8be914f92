"""`charexp sweep`: run a W&B sweep YAML offline with W&B's own engine, or resume one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import typer

from charexp.errors import CharexpError

app = typer.Typer()

EXIT_CODES = {"finished": 0, "failing": 1, "interrupted": 130, "terminated": 143}  # 128 + SIGINT / SIGTERM
SLURM_WORKERS = 4  # --launcher slurm: jobs in flight by default (SLURM queues them where the cluster is full)


def wandb_offline(launcher: str) -> bool:
    """Runs are offline without an API key; SLURM runs are offline with one too, unless WANDB_MODE=online is set:
    compute nodes often have no network, and there an online wandb.init retries for about 90 s and dies
    (charexp's own `auto` mode would probe first, but a sweep's program may be any W&B program)."""
    from charexp.wandb_env import has_api_key

    if launcher == "slurm":
        return os.environ.get("WANDB_MODE", "").lower() != "online" or not has_api_key()
    return not has_api_key()


@app.command("sweep")
def sweep(
    config: Optional[Path] = typer.Argument(
        None, metavar="SWEEP.yaml",
        help="a W&B sweep YAML, e.g. sweeps/lr.yaml (run from the directory its program path is relative to)"),
    count: Optional[int] = typer.Option(
        None, "--count", help="stop after this many runs in the sweep (like wandb agent --count)"),
    workers: Optional[int] = typer.Option(
        None, "--workers", help="runs in parallel; default: one per GPU, else 1 (CPU threads are shared out); "
                                "with --launcher slurm: jobs queued or running at once, default 4"),
    project: Optional[str] = typer.Option(
        None, "--project", help="W&B project the runs join; default: the YAML's project, else 'charexp'"),
    parent: Path = typer.Option(Path("sweep-runs"), "--dir", help="where the sweep directory <sweep_id>/ goes"),
    resume: Optional[Path] = typer.Option(
        None, "--resume", metavar="SWEEP_DIR", help="continue a sweep whose runner was stopped or killed"),
    upload: Optional[Path] = typer.Option(
        None, "--upload", metavar="SWEEP_DIR",
        help="upload an offline sweep's ended runs to W&B (wandb sync; tagged sweep-<id>); needs wandb login"),
    dry_run: bool = typer.Option(False, "--dry-run", help="with --upload: show what would be uploaded, upload nothing"),
    entity: Optional[str] = typer.Option(
        None, "--entity",
        help="with --upload: the W&B entity to upload into; default: the YAML's entity, else your own"),
    launcher: Optional[str] = typer.Option(
        None, "--launcher", metavar="local|slurm",
        help="where runs start: local processes (default), or one SLURM job each (sbatch; W&B offline)"),
    partition: Optional[str] = typer.Option(None, "--partition", help="slurm: the partition of each run's job"),
    cpus: Optional[int] = typer.Option(
        None, "--cpus-per-run", help="slurm: CPUs per run's job (--cpus-per-task; also its OMP_NUM_THREADS)"),
    gpus: Optional[int] = typer.Option(None, "--gpus-per-run", help="slurm: GPUs per run's job (--gpus-per-task)"),
    time_limit: Optional[str] = typer.Option(
        None, "--time", help="slurm: time limit per job (sbatch --time); a run that hits it is requeued once"),
    sbatch_args: Optional[list[str]] = typer.Option(
        None, "--sbatch-arg", help="slurm: one more sbatch argument, as given (repeat it: --sbatch-arg=--qos=low)"),
) -> None:
    """Run a sweep offline: W&B's engine proposes (grid, random, bayes; hyperband stops), each run
    starts exactly as `wandb agent` would start it, and metrics come from the runs' own W&B files.

    Online, the same YAML runs with: wandb sweep SWEEP.yaml && wandb agent ENTITY/PROJECT/SWEEP_ID
    """
    if upload is not None:
        if config is not None or resume is not None:
            raise CharexpError("--upload SWEEP_DIR takes no sweep YAML and no --resume; "
                               "run charexp sweep --upload sweep-runs/<sweep_id> alone")
        from charexp.sweep.upload import upload as upload_sweep

        raise typer.Exit(upload_sweep(upload, dry_run=dry_run, project=project, entity=entity))
    if (config is None) == (resume is None):
        raise CharexpError("give either a sweep YAML (charexp sweep sweeps/lr.yaml) or --resume SWEEP_DIR, "
                           "not both or neither")
    if workers is not None and workers < 1:
        raise CharexpError(f"--workers must be at least 1 (got {workers})")
    if count is not None and count < 1:
        raise CharexpError(f"--count must be at least 1 (got {count})")
    if launcher not in (None, "local", "slurm"):
        raise CharexpError(f"--launcher is local or slurm (got {launcher!r})")
    slurm_given = any(v for v in (partition, cpus, gpus, time_limit, sbatch_args))
    if slurm_given and launcher != "slurm" and resume is None:
        raise CharexpError("--partition, --cpus-per-run, --gpus-per-run, --time and --sbatch-arg go with "
                           "--launcher slurm")
    if resume is not None and slurm_given:
        raise CharexpError("a resumed sweep submits its jobs as it was started; give --resume SWEEP_DIR without "
                           "SLURM options")
    for name, value in (("--cpus-per-run", cpus), ("--gpus-per-run", gpus)):
        if value is not None and value < 1:
            raise CharexpError(f"{name} must be at least 1 (got {value})")
    slurm_options = None
    if launcher == "slurm" and resume is None:
        from charexp.sweep.slurm import SlurmOptions

        slurm_options = SlurmOptions(partition, cpus, gpus, time_limit, list(sbatch_args or []))
    outcome = run_sweep(config, resume, count=count, workers=workers, project=project, parent=parent,
                        launcher=launcher, slurm_options=slurm_options)
    raise typer.Exit(EXIT_CODES[outcome])


def run_sweep(config: Path | None, resume: Path | None, *, count: int | None = None, workers: int | None = None,
              project: str | None = None, parent: Path = Path("sweep-runs"), launcher: str | None = None,
              slurm_options: Any = None) -> str:
    """Create (or reload) the sweep directory, run the sweep, print the table; returns the outcome.

    `launcher` "slurm" submits each run as a SLURM job with `slurm_options` (a slurm.SlurmOptions)."""
    from dataclasses import asdict

    from charexp.atomic import atomic_write_text
    from charexp.console import make_console
    from charexp.sweep.launch import visible_gpus, wandb_root
    from charexp.sweep.runner import SweepRunner
    from charexp.sweep.spec import load_sweep_spec, read_sweep_yaml, spec_from_config
    from charexp.sweep.state import SWEEP_YAML, SweepState, load_state, new_id, now_iso, save_state, to_plain
    from charexp.sweep.table import check_metric_seen, print_report
    from charexp.wandb_env import check_wandb_env, has_api_key

    if resume is not None:
        state = load_state(resume)
        if launcher is not None and launcher != state.launcher:
            raise CharexpError(f"sweep {state.sweep_id} was started with --launcher {state.launcher}; "
                               "resume it without --launcher")
        launcher = state.launcher
    launcher = launcher or "local"
    offline = wandb_offline(launcher)
    # what each run's wandb.init will read, checked before any file is written
    check_wandb_env(overrides={"WANDB_MODE": "offline"} if offline else None)
    if launcher == "slurm" and not (resume is not None and state.finished):
        from charexp.sweep.slurm import SlurmOptions, check_cluster

        slurm_options = slurm_options or (SlurmOptions.from_dict(state.slurm) if resume else SlurmOptions())
        refused = check_cluster(slurm_options)
        if refused:
            raise CharexpError(f"runs cannot be submitted to SLURM: {refused}; check the SLURM options "
                               "(--partition, --time, ...) with sinfo, or run without --launcher slurm")

    console = make_console(stderr=False)  # the sweep's table and lines are its output, on stdout as before
    if resume is not None:
        sweep_dir = resume
        state = load_state(sweep_dir)
        if project and project != state.project:
            raise CharexpError(f"sweep {state.sweep_id} runs in project {state.project!r}; resume it without --project")
        text, loaded = read_sweep_yaml(sweep_dir / SWEEP_YAML)
        spec = spec_from_config(text, loaded, str(sweep_dir / SWEEP_YAML), state.project, Path(state.cwd))
        state.workers = workers or state.workers
        state.count = count if count is not None else state.count
        if state.finished:
            console.print(f"sweep {state.sweep_id} already finished", highlight=False)
            print_report(state, console, sweep_dir)
            check_metric_seen(state)
            return "finished"
    else:
        spec = load_sweep_spec(config, project)  # refuses bad input before anything is written
        gpus = visible_gpus()
        sweep_id = new_id()
        sweep_dir = parent / sweep_id
        sweep_dir.mkdir(parents=True, exist_ok=False)
        atomic_write_text(sweep_dir / SWEEP_YAML, spec.text)
        state = SweepState(sweep_id=sweep_id, project=spec.project, method=spec.method,
                           metric={"name": spec.metric_name, "goal": spec.goal}, config=to_plain(spec.config),
                           created=now_iso(), source=str(config), cwd=str(Path.cwd().absolute()),
                           wandb_dir=str(wandb_root()), count=count,
                           workers=workers or (SLURM_WORKERS if launcher == "slurm" else max(1, len(gpus))),
                           launcher=launcher, slurm=asdict(slurm_options) if launcher == "slurm" else {})
        save_state(sweep_dir, state)
    limits = (("count", state.count), ("run_cap", spec.run_cap), ("target", spec.target))
    caps = [f"{n} {v}" for n, v in limits if v is not None]
    if offline:
        why = "SLURM jobs" if launcher == "slurm" and has_api_key() else "no API key"
        wandb = f"offline ({why}; upload later with: charexp sweep --upload {sweep_dir})"
    else:
        wandb = "as configured (API key found)"
    where = f"{state.workers} SLURM job(s) at a time" if launcher == "slurm" else f"{state.workers} worker(s)"
    console.print(f"sweep [bold]{state.sweep_id}[/bold] ({'resumed' if resume else 'new'}): {spec.method} over "
                  f"{', '.join(spec.params)}; {where}; project {state.project}; W&B {wandb}"
                  f"{'; ' + ', '.join(caps) if caps else ''}\n"
                  f"  directory {sweep_dir}  (resume with: charexp sweep --resume {sweep_dir})",
                  highlight=False)
    if spec.method != "grid" and not caps:
        console.print(f"  {spec.method} search has no end of its own: stop it with Ctrl-C, or set --count / run_cap",
                      highlight=False)
    outcome = SweepRunner(spec, state, sweep_dir, console, offline).run()
    print_report(state, console, sweep_dir)
    if outcome in ("interrupted", "terminated"):
        console.print(f"interrupted: continue with  charexp sweep --resume {sweep_dir}", highlight=False)
    else:
        check_metric_seen(state)  # every run has ended: a metric no run logged is an error, not a quiet exit 0
    return outcome
