"""Online and offline alike, a training run's W&B group is its replicate group: runs that differ only in seed
share it, so W&B's UI draws them as one line with a band; a WANDB_RUN_GROUP the user set wins."""

from __future__ import annotations

from pathlib import Path

from charexp.config import replicate_group
from charexp.tracking.rundir import RunDir
from charexp.tracking.wandb_files import find_run_files, read_run

from foundation import run_main, wait_for

TINY_RUN = {"epochs": 1, "steps_per_epoch": 2, "sample_every": 0, "checkpoint_every": 0, "wandb_mode": "offline"}


def offline_run(tiny_config, name: str, **overrides) -> tuple[str, object]:
    before = set(p.name for p in Path("runs").iterdir()) if Path("runs").is_dir() else set()
    code, log = run_main(["--config", str(tiny_config(name, **{**TINY_RUN, **overrides}))])
    assert code == 0, log
    (run_id,) = set(p.name for p in Path("runs").iterdir()) - before
    (path,) = wait_for(lambda: find_run_files(Path("wandb"), run_id) or None, timeout=30)
    return run_id, read_run(path)


def test_runs_that_differ_only_in_seed_share_a_w_and_b_group(tiny_config, tmp_path, monkeypatch):
    a_id, a = offline_run(tiny_config, "a.yaml", seed=0, log_every=1)
    b_id, b = offline_run(tiny_config, "b.yaml", seed=5, log_every=2)  # seed and reporting keys only
    c_id, c = offline_run(tiny_config, "c.yaml", seed=0, lr=0.002)  # the control: another experiment
    assert a.group == b.group == replicate_group(RunDir("runs", a_id).read_config()) and a.group.startswith("config-")
    assert c.group != a.group
    assert a.job_type == b.job_type == c.job_type == "train"

    monkeypatch.setenv("WANDB_RUN_GROUP", "my-own-group")
    _, mine = offline_run(tiny_config, "d.yaml", seed=1)
    assert mine.group == "my-own-group"
