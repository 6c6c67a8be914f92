"""`charexp lr-find` end to end on a tiny corpus: the suggestion, its figure and sweep, its own W&B run (read
back from the offline .wandb file), nothing trained into the store, bad input in one sentence, Ctrl-C 130."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from charexp.lrfind.rule import bracket
from charexp.sweep.spec import load_sweep_spec
from charexp.tracking.wandb_files import find_run_files, read_run

from conftest import REPO
from foundation import torch_threads, wait_for

PNG = b"\x89PNG\r\n\x1a\n"


def lr_find(args: list[str]) -> int:
    from charexp.lrfind.command import main

    with torch_threads():
        return main(args)


def charexp_cli(monkeypatch, capsys, args: list[str]) -> tuple[int, str]:
    from charexp.cli import main

    monkeypatch.setattr(sys, "argv", ["charexp", "lr-find", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code, capsys.readouterr().err


def test_lr_find_suggests_a_rate_draws_it_and_writes_a_sweep_around_it(tiny_config, capsys):
    config = tiny_config("tiny.yaml", hidden=48)
    assert lr_find(["--config", str(config), "--steps", "80", "--write-sweep", "around.yaml", "--batch_size=4"]) == 0
    out = capsys.readouterr().out
    (run_dir,) = Path("lr-find").iterdir()
    result = json.loads((run_dir / "lr_find.json").read_text())
    lr = result["suggestion"]["lr"]
    assert 1e-6 <= lr <= 1.0 and len(result["lrs"]) == len(result["losses"]) <= 80
    assert result["config"]["hidden"] == 48 and result["config"]["batch_size"] == 4  # the config with its overrides
    assert (run_dir / "lr_find.png").read_bytes()[:8] == PNG
    assert len((run_dir / "history.jsonl").read_text().splitlines()) == len(result["lrs"])
    assert f"suggested lr: {lr:.2g}" in out
    assert f"python train.py --config {config} --batch_size=4 --lr={lr:.2g}" in out

    spec = yaml.safe_load(Path("around.yaml").read_text())
    assert spec["parameters"]["lr"]["values"] == bracket(lr)
    assert "--batch_size=4" in spec["command"]  # the overrides ride along, fixed
    load_sweep_spec("around.yaml", cwd=REPO)  # W&B's own engine accepts it (train.py lives in the repo)

    assert not Path("artifacts").exists() and not Path("runs").exists()  # trains no artifact, no training run


def test_lr_find_is_its_own_w_and_b_run(tiny_config):
    assert lr_find(["--config", str(tiny_config()), "--steps", "60"]) in (0, 1)
    (run_dir,) = Path("lr-find").iterdir()
    (path,) = wait_for(lambda: find_run_files(Path("wandb"), run_dir.name) or None, timeout=30)
    run = read_run(path)
    result = json.loads((run_dir / "lr_find.json").read_text())
    assert run.job_type == "lr-find"
    assert [loss for _, loss in run.metric("lr-find/loss")] == pytest.approx(result["losses"])
    assert run.config["lr_find"]["steps"] == 60
    assert run.summary["suggested_lr"] == result["suggestion"]["lr"]


@pytest.mark.parametrize("args, says", [
    (["--start-lr", "1", "--end-lr", "0.1"], "must be positive and below --end-lr"),
    (["--steps", "5"], "too few"),
    (["--diverge", "1"], "must be above 1"),
    (["--learning_rate=0.1"], "did you mean '--lr'"),
    ([], "no config given"),
])
def test_bad_input_is_one_sentence(args, says, monkeypatch, capsys, tiny_config):
    config = ["--config", str(tiny_config())] if args != [] else []
    code, err = charexp_cli(monkeypatch, capsys, [*config, *args])
    assert code == 2 and says in err and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not Path("lr-find").exists()


def test_an_existing_sweep_file_is_never_overwritten(monkeypatch, capsys, tiny_config):
    Path("mine.yaml").write_text("my own sweep\n")
    code, err = charexp_cli(monkeypatch, capsys, ["--config", str(tiny_config()), "--write-sweep", "mine.yaml"])
    assert code == 2 and "already exists" in err
    assert Path("mine.yaml").read_text() == "my own sweep\n"


def test_ctrl_c_during_the_ramp_is_130_and_ends_the_w_and_b_run(monkeypatch, capsys, tiny_config):
    import wandb

    from charexp.lrfind import finder

    calls = []

    def step_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    real_step = finder.train_step
    monkeypatch.setattr(finder, "train_step", step_then_interrupt)
    code, err = charexp_cli(monkeypatch, capsys, ["--config", str(tiny_config())])
    assert code == 130 and err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err
    assert wandb.run is None  # finished, not left open
    (run_dir,) = Path("lr-find").iterdir()
    (path,) = wait_for(lambda: find_run_files(Path("wandb"), run_dir.name) or None, timeout=30)
    assert read_run(path).exit_code == 130
