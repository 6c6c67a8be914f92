"""`python train.py`: resolve the config, build data and model, run the loop, track and store it."""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import string
from dataclasses import dataclass

import numpy as np
import torch
from rich.console import Console

from charexp.config import Config, load_config, replicate_group, stored_config
from charexp.console import make_console, shown_path
from charexp.cpu_load import choose_threads
from charexp.data.corpus import Corpus, Vocab, load_corpus
from charexp.data.download import resolve_data_path
from charexp.errors import CharexpError, TrainingDiverged, run_cli
from charexp.model import CharLSTM, configure_cpu, configure_cuda, training_device
from charexp.sample.generate import check_primes
from charexp.store.artifacts import ArtifactStore
from charexp.store.checkpoint import Checkpoint, ResumeState, load_state
from charexp.summary_view import run_summary_table
from charexp.tracking.rundir import RunDir, RunSummary, list_runs
from charexp.tracking.tracker import Tracker, choose_mode
from charexp.train.args import parse_train_args
from charexp.train.init_from import adopt_architecture, adopt_split, adopted_line, load_init, split_note
from charexp.train.lr_schedule import inert_schedule_keys
from charexp.train.progress import TrainProgress, config_table
from charexp.train.signals import StopRequest
from charexp.train.trainer import Outcome, Position, Trainer

STORED_FIX = "the saved state is damaged, start a new run"


def new_run_id() -> str:
    """W&B-style 8-character id; a sweep agent's WANDB_RUN_ID wins."""
    alphabet = string.ascii_lowercase + string.digits
    return os.environ.get("WANDB_RUN_ID") or "".join(secrets.choice(alphabet) for _ in range(8))


@dataclass
class Resume:
    run_id: str
    state: dict


def resumable(runs_dir: str) -> list[RunDir]:
    """Runs with a saved state that have not finished (a finished run's state has nothing left to do)."""
    return [r for r in list_runs(runs_dir) if r.state_path.exists() and r.read_summary().get("state") != "finished"]


def finished_message(run: RunDir) -> str:
    """--resume of a finished run: name the reference that continues from its weights in a new run."""
    summary = run.read_summary()
    last = summary.versions[-1].split()[0] if summary.versions else None
    which = f" (its last version, {summary.artifact or 'charlstm'}:{last})" if last else ""
    return (f"run '{run.run_id}' already finished; to continue from its weights start a new run with "
            f"--init_from=run-{run.run_id}{which}")


def find_resume(resume: str | None, cfg: Config | None, runs_dir: str) -> Resume | None:
    """The saved state to continue from: --resume ID / last, or a requeued sweep run's own state."""
    if resume is None:
        run_id = os.environ.get("WANDB_RUN_ID")
        run = RunDir(runs_dir, run_id) if run_id else None
        if not (run and run.state_path.exists() and run.read_summary().get("state") != "finished"):
            return None
    elif resume == "last":
        candidates = resumable(runs_dir)
        if not candidates:
            raise CharexpError(f"no unfinished run under {runs_dir}/ has a saved state to resume; "
                               "start one with python train.py --config ...")
        run = max(candidates, key=lambda r: r.state_path.stat().st_mtime)
    else:
        run = RunDir(runs_dir, resume)
        if run.read_summary().get("state") == "finished":
            raise CharexpError(finished_message(run))
        if not run.state_path.exists():
            known = ", ".join(r.run_id for r in resumable(runs_dir)) or "none"
            raise CharexpError(f"run '{resume}' has no saved state under {runs_dir}/; "
                               f"runs that can be resumed: {known}")
    state = load_state(run.state_path)
    if state.get("run_id") != run.run_id:
        raise CharexpError(f"{run.state_path} belongs to run {state.get('run_id')!r}, not {run.run_id!r}; "
                           "it is stale, start a new run")
    saved = stored_config(state["config"], source=str(run.state_path), fix=STORED_FIX)
    if cfg is not None:
        differs = [k for k, v in cfg.to_dict().items() if saved.to_dict()[k] != v]
        if differs:
            k = differs[0]
            raise CharexpError(f"run '{run.run_id}' was started with {k}={saved.to_dict()[k]!r}, "
                               f"not {cfg.to_dict()[k]!r}; resume it with the same config (or none)")
    return Resume(run.run_id, state)


def build(cfg: Config, vocab: Vocab | None) -> tuple[Config, Corpus, Checkpoint | None]:
    init = load_init(cfg)
    cfg = adopt_split(adopt_architecture(cfg, init), init)
    vocab = vocab or (init.vocab if init else None)
    corpus = load_corpus(resolve_data_path(cfg.data), cfg.split, cfg.test_fraction, cfg.split_seed, vocab)
    return cfg, corpus, init


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def new_model(cfg: Config, vocab_size: int, device: torch.device, init: Checkpoint | None) -> CharLSTM:
    """The run's starting model: seeded, its device configured, init_from's weights loaded, on the device. A
    range test (charexp lr-find) starts from exactly the model a run with this config would."""
    seed_everything(cfg.seed)
    if device.type == "cuda":
        configure_cuda()
    elif device.type == "cpu":
        configure_cpu()
    model = CharLSTM.from_config(cfg, vocab_size)
    if init:
        model.load_state_dict(init.model.state_dict())
    return model.to(device)


def set_cpu_threads(pos: Position, console: Console) -> None:
    """Fewer threads than cores when other processes hold some (charexp.cpu_load); a resumed run keeps the
    count it started with, unless OMP_NUM_THREADS says otherwise."""
    if pos.threads and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(pos.threads)
    else:
        threads, note = choose_threads(torch.get_num_threads())
        torch.set_num_threads(threads)
        if note:
            console.print(f"note: {note}", highlight=False)
    pos.threads = torch.get_num_threads()


def prepare(cfg: Config, vocab: Vocab | None) -> tuple[Config, Corpus, Checkpoint | None, torch.device]:
    """Everything that can reject the config, done before any run, file or W&B record exists (only the
    artifact store's directory is made, to prove that checkpoints can be written there). Returns the config
    with what init_from's checkpoint settles (its split_seed) filled in."""
    device = training_device(cfg.device, cfg.amp)
    cfg, corpus, init = build(cfg, vocab)
    check_primes(list(cfg.sample_chars), corpus.vocab)
    ArtifactStore(cfg.artifacts_dir, cfg.artifact_name).check_writable()  # now, not after the first epoch
    return cfg, corpus, init, device


def main(argv: list[str] | None = None) -> int:
    config_path, resume_arg, overrides, check = parse_train_args(argv)
    cfg = load_config(config_path, overrides) if (config_path or overrides) else None
    resume = find_resume(resume_arg, cfg, cfg.runs_dir if cfg else Config.model_fields["runs_dir"].default)
    if resume:
        cfg = stored_config(resume.state["config"], source="the resume state", fix=STORED_FIX)
    elif cfg is None:
        raise CharexpError("no config given; pass --config configs/quick.yaml (or --resume last), "
                           "see python train.py --help")
    vocab = Vocab(tuple(resume.state["vocab"])) if resume else None
    cfg, corpus, init, device = prepare(cfg, vocab)  # bad data or init_from: one sentence, before anything is printed
    if check:  # everything that could refuse the config has run; nothing is started, no W&B run, no run directory
        make_console().print(config_table(cfg.to_dict(), title="charexp config (resolved)"))
        print(f"config OK: {corpus.describe()}; device {device}; nothing was started (drop --check to train)")
        return 0
    mode, note = choose_mode(cfg.wandb_mode)
    console = make_console()
    console.print(config_table(cfg.to_dict(), title="charexp config"))
    if note:
        console.print(note, highlight=False)

    run_id = resume.run_id if resume else new_run_id()
    tracker = Tracker(cfg.to_dict(), RunDir(cfg.runs_dir, run_id), resume=bool(resume), mode=mode,
                      group=replicate_group(cfg.to_dict()))
    try:
        swept = {k: v for k, v in tracker.wandb_config.items() if k in Config.model_fields and v != getattr(cfg, k)}
        if swept and not resume:  # wandb.config wins (a sweep's values); rebuild what depends on it
            cfg = cfg.updated(swept, source="wandb.config")
            cfg, corpus, init, device = prepare(cfg, None)
            tracker.run_dir = RunDir(cfg.runs_dir, run_id)
        return train(cfg, corpus, init, device, tracker, resume, console)
    except BaseException:
        tracker.finish(exit_code=1)  # no-op when train() already finished the run
        raise


def train(cfg: Config, corpus: Corpus, init: Checkpoint | None, device: torch.device, tracker: Tracker,
          resume: Resume | None, console: Console) -> int:
    run_dir = tracker.run_dir
    run_dir.create()
    run_dir.write_config(cfg.to_dict())
    if resume:
        run_dir.rewind_to(int(resume.state["position"]["step"]))
    console.print(corpus.describe())
    for note in inert_schedule_keys(cfg):
        console.print(note, highlight=False)

    model = new_model(cfg, len(corpus.vocab), device, init)
    if init:
        console.print(f"initialised from {init.path} (run {init.meta.get('run_id')}, epoch {init.meta.get('epoch')})"
                      + (f"\n  init_from {init.source}" if init.source else ""), highlight=False)
        for note in (adopted_line(cfg, init), split_note(corpus, init)):
            if note:
                console.print(note, highlight=False)
    stop = StopRequest()
    trainer = Trainer(cfg, corpus, model, tracker, ArtifactStore(cfg.artifacts_dir, cfg.artifact_name), stop)
    if resume:
        trainer.load_state_dict(ResumeState.from_dict(resume.state, run_dir.state_path))
        console.print(f"resuming run {run_dir.run_id} at epoch {trainer.pos.epoch + 1}, step {trainer.pos.step}")
    if device.type == "cpu":
        set_cpu_threads(trainer.pos, console)

    def summary(state: str) -> RunSummary:
        pauses, pos = trainer.pauses, trainer.pos
        best = pauses.best
        return RunSummary(
            run_id=run_dir.run_id, state=state, project=tracker.project, sweep_id=tracker.sweep_id,
            wandb_mode=tracker.mode, wandb_dir=tracker.files_dir, device=str(device),
            best_test_loss=best["test/loss"] if best["step"] is not None else None, best_epoch=best["epoch"],
            best_step=best["step"], last_eval=pauses.last_eval[1] if pauses.last_eval else None,
            epoch=pos.epoch, step=pos.step, chars=pos.chars, seconds=round(pos.seconds, 2), artifact=cfg.artifact_name,
            versions=pauses.versions, rejected_epochs=list(trainer.rejections.rejected),
        )

    run_dir.write_summary(summary("running"))
    stop.install()
    try:
        with TrainProgress(total_steps=trainer.total_steps(), completed=trainer.pos.step, console=console) as bar:
            outcome = trainer.run(bar)
    except BaseException as err:
        with contextlib.suppress(CharexpError):  # best effort: a full disk must not hide the error that stopped the run
            run_dir.write_summary(summary("diverged" if isinstance(err, TrainingDiverged) else "crashed"))
        raise
    finally:
        stop.uninstall()
    final = summary(outcome.value)
    final.versions = trainer.pauses.publisher.standing(final.versions)  # aliases as they stand now, not at publish
    run_dir.write_summary(final)
    tracker.summary({"best_test_loss": final.best_test_loss, "best_epoch": final.best_epoch, "state": final.state,
                     "rejected_epochs": final.rejected_epochs})
    if outcome is Outcome.PREEMPTED:
        tracker.finish(exit_code=stop.exit_code, preempting=True)
        console.print(f"stopped: resume state saved in {run_dir.state_path}; "
                      f"continue with python train.py --resume {run_dir.run_id}")
        return stop.exit_code
    tracker.finish(exit_code=0)
    if not cfg.keep_state:  # only after summary.json says finished: a crash before that can still resume
        run_dir.discard_state()
    console.print(run_summary_table(final))
    if tracker.mode == "offline" and tracker.files_dir:
        console.print(f"W&B offline run: upload it with  wandb sync {shown_path(tracker.files_dir)}")
    return 0


def cli() -> None:
    run_cli(main)
