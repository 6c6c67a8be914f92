"""An offline `charexp sweep` stays uploadable: its runs carry the sweep as tags (no sweep id
that a W&B server would refuse, wandb/wandb#8115), their swept values are in wandb.config, and
`charexp sweep --upload SWEEP_DIR` hands exactly those run directories to `wandb sync`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from charexp.sweep.command import run_sweep
from charexp.sweep.launch import build_launch
from charexp.sweep.state import load_state
from charexp.sweep.upload import plan_upload
from charexp.tracking.wandb_files import find_run_files, read_run

from foundation import leet_summary

PROGRAM = '''
import wandb
run = wandb.init(config={"lr": 0.001, "width": 1})
for step in range(3):
    run.log({"loss": run.config["lr"] * 100 + run.config["width"] / (step + 1)}, step=step)
run.finish()
wandb.teardown()
'''


def test_launch_is_the_agents_but_with_tags_instead_of_a_sweep_id(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SWEEP_ID", "inherited")  # e.g. the runner itself started under an agent
    monkeypatch.setenv("WANDB_TAGS", "mine")
    launch = build_launch(command=["${env}", "${interpreter}", "${program}", "${args}"], program="train.py",
                          params={"lr": 0.5}, sweep_id="swp12345", run_id="run00001", project="p", entity=None,
                          offline=True, root=tmp_path, extra_env={})
    env = launch.env
    assert "WANDB_SWEEP_ID" not in env
    assert "WANDB_RUN_GROUP" not in env  # the program's own (train.py: the replicate group)
    assert env["WANDB_TAGS"] == "mine,charexp-sweep,sweep-swp12345" and env["CHAREXP_SWEEP_ID"] == "swp12345"
    assert (env["WANDB_RUN_ID"], env["WANDB_PROJECT"], env["WANDB_MODE"]) == ("run00001", "p", "offline")
    assert Path(env["WANDB_SWEEP_PARAM_PATH"]) == tmp_path / "wandb" / "sweep-swp12345" / "config-run00001.yaml"
    assert launch.argv[-1] == "--lr=0.5"


def charexp_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "charexp.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_an_offline_sweeps_runs_carry_what_the_upload_needs_and_upload_syncs_exactly_them(tmp_path):
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"program": str(program), "method": "grid",
                                     "metric": {"name": "loss", "goal": "minimize"},
                                     "parameters": {"lr": {"values": [0.01, 0.02]}, "width": {"value": 7}},
                                     "command": ["${env}", "${interpreter}", "${program}", "${args}"]}))
    assert run_sweep(sweep, None, workers=1, project="upload-proj") == "finished"
    (sweep_dir,) = (tmp_path / "sweep-runs").iterdir()
    state = load_state(sweep_dir)
    assert len(state.runs) == 2

    for rec in state.runs:
        (wandb_file,) = find_run_files(tmp_path / "wandb", rec.run_id)
        run = read_run(wandb_file)
        assert run.sweep_id is None  # nothing for the server to refuse
        # a group is the program's to set
        assert not run.group and {"charexp-sweep", f"sweep-{state.sweep_id}"} <= set(run.tags)
        assert (run.project, run.exit_code) == ("upload-proj", 0)
        # the sweep's values won
        assert {k: run.config[k] for k in ("lr", "width")} == {"lr": rec.params["lr"], "width": 7}
        summary = leet_summary(wandb_file)  # and W&B's own reader agrees on the config
        assert "sweep-" not in str(summary.get("sweep_id", ""))
        assert str(rec.params["lr"]) in str(summary.get("config", summary))

    plan = plan_upload(sweep_dir)
    assert sorted(plan.runs) == sorted(r.run_id for r in state.runs) and not plan.skipped
    files = [f for r in state.runs for f in find_run_files(tmp_path / "wandb", r.run_id)]
    assert sorted(d.name for d in plan.run_dirs) == sorted(f.parent.name for f in files)
    assert plan.argv()[-len(plan.run_dirs):] == [str(d) for d in plan.run_dirs] and "sync" in plan.argv()

    dry = charexp_cli("sweep", "--upload", str(sweep_dir), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert f"tagged charexp-sweep and sweep-{state.sweep_id}" in dry.stdout
    assert "Would sync 2 run(s)" in dry.stdout + dry.stderr

    refused = charexp_cli("sweep", "--upload", str(sweep_dir), cwd=tmp_path)  # no API key here
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("error: uploading sweep") and "wandb login" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
