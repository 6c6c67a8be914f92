"""The agent contract: commands, files and environment exactly as `wandb agent` makes them, train.py
reading every argument form, runs joining the sweep, and bad sweep YAMLs refused in one sentence."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from charexp import cli
from charexp.sweep.launch import build_launch
from charexp.tracking.wandb_files import find_run_files, read_run
from charexp.train.args import parse_train_args

from conftest import REPO, run_train_subprocess

ALL_MACROS = ["${args}", "${args_no_hyphens}", "${args_no_boolean_flags}", "${args_json}", "${args_json_file}",
              "${args_no_equals}"]
PARAMS = {"lr": 0.0003, "hidden": 48, "amp": True, "sample_chars": "KS", "dropout": 0.25}


def test_expansion_matches_the_wandb_agent_for_every_macro(monkeypatch, tmp_path):
    """Run W&B's own Agent._command_run (its process start replaced by a recorder) and compare."""
    from wandb import wandb_agent
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    started = {}

    class Recorder:
        def __init__(self, command=None, env=None, **kwargs):
            started.update(command=command, env=env)

    monkeypatch.setattr(wandb_agent, "AgentProcess", Recorder)
    env = {"WANDB_SWEEP_ID": "swp12345", "WANDB_RUN_ID": "-", "WANDB_SWEEP_PARAM_PATH": "-", "CHAREXP_TAG": "nightly"}
    for var, value in env.items():
        monkeypatch.setenv(var, value)  # the agent writes into os.environ; monkeypatch restores it
    command = ["${env}", "${interpreter}", "${program}", "--config", "tiny.yaml", *ALL_MACROS,
               "--tag=${envvar:CHAREXP_TAG}"]
    params = {**PARAMS, "amp": False}  # a false flag: ${args_no_boolean_flags} leaves it out
    agent = wandb_agent.Agent(api=None, queue=None, sweep_id="swp12345")
    agent._sweep_command = list(command)
    args = {k: {"value": v} for k, v in params.items()}
    agent._command_run({"run_id": "run00001", "program": "train.py", "args": args})
    agent_dir = tmp_path / "wandb" / "sweep-swp12345"
    agent_files = {p.name: p.read_bytes() for p in agent_dir.iterdir()}
    shutil.rmtree(agent_dir)  # ours must write the same files afresh, at the same paths

    launch = build_launch(command=list(command), program="train.py", params=params, sweep_id="swp12345",
                          run_id="run00001", project="proj", entity=None, offline=True, root=tmp_path, extra_env={})

    expected = list(started["command"])
    assert expected[1] == "python"  # the agent's ${interpreter}; ours is this interpreter
    expected[1] = sys.executable
    assert launch.argv == expected
    for key in ("WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH", "WANDB_DIR"):
        assert launch.env[key] == started["env"][key], key
    # the one deliberate difference: no sweep id the W&B server would not know (wandb/wandb#8115), tags instead
    assert started["env"]["WANDB_SWEEP_ID"] == "swp12345" and "WANDB_SWEEP_ID" not in launch.env
    assert "sweep-swp12345" in launch.env["WANDB_TAGS"].split(",")
    assert {p.name: p.read_bytes() for p in agent_dir.iterdir()} == agent_files  # same files, same bytes
    assert sorted(agent_files) == ["config-run00001.json", "config-run00001.yaml"]
    assert (launch.param_path.parent, launch.json_path.parent) == (agent_dir, agent_dir)
    # and every macro really expanded (not silently dropped)
    macros = create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    argv = " ".join(launch.argv)
    for name in ("args", "args_no_hyphens", "args_no_boolean_flags", "args_no_equals"):
        assert " ".join(macros[name]) in argv
    assert macros["args_json"][0] in launch.argv and str(launch.json_path) in launch.argv
    assert "--tag=nightly" in launch.argv and "--amp" not in macros["args_no_boolean_flags"]


@pytest.mark.parametrize("macro", ALL_MACROS)
def test_train_py_parses_every_macro_form(macro, tmp_path):
    launch = build_launch(command=["${env}", "${interpreter}", "${program}", "--config", "tiny.yaml", macro],
                          program="train.py", params=PARAMS, sweep_id="swp12345", run_id="run00001", project="p",
                          entity=None, offline=True, root=tmp_path, extra_env={})
    config, resume, overrides, _ = parse_train_args(launch.argv[3:])
    assert (config, resume) == ("tiny.yaml", None)
    assert overrides == PARAMS


def test_a_run_started_like_the_agent_logs_into_the_sweep(tiny_config, tmp_path):
    """Environment and files made independently of charexp, the way wandb agent makes them."""
    from wandb.sdk.lib import config_util

    swept = {"lr": 0.004, "hidden": 24, "lr_decay": 0.5}
    param_path = tmp_path / "wandb" / "sweep-agentsw1" / "config-agentrn1.yaml"
    config_util.save_config_file_from_dict(str(param_path), {k: {"value": v} for k, v in swept.items()})
    env = {"WANDB_SWEEP_ID": "agentsw1", "WANDB_RUN_ID": "agentrn1", "WANDB_SWEEP_PARAM_PATH": str(param_path),
           "WANDB_PROJECT": "sweep-project", "WANDB_MODE": "offline"}
    # the ${args_no_hyphens} form
    args = ["--config", str(tiny_config(epochs=1)), *(f"{k}={v}" for k, v in swept.items())]
    done = run_train_subprocess(args, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-2000:]

    files = find_run_files(tmp_path / "wandb", "agentrn1")
    assert len(files) == 1
    run = read_run(files[0])
    assert (run.run_id, run.sweep_id, run.project) == ("agentrn1", "agentsw1", "sweep-project")
    assert {k: run.config[k] for k in swept} == swept
    assert run.exit_code == 0 and isinstance(run.summary["test/loss"]["min"], float)
    local = yaml.safe_load((tmp_path / "runs" / "agentrn1" / "config.yaml").read_text())
    assert {k: local[k] for k in swept} == swept  # the sweep's values won over tiny.yaml's


# --- bad input -------------------------------------------------------------------------------------
def charexp_main(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["charexp", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return exit_info.value.code, capsys.readouterr().err


def write_sweep(tmp_path: Path, **changes) -> Path:
    config = {"program": str(REPO / "train.py"), "method": "grid", "metric": {"name": "test/loss", "goal": "minimize"},
              "parameters": {"lr": {"values": [0.01, 0.003]}},
              "command": ["${env}", "${interpreter}", "${program}", "${args}"]}
    config.update(changes)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("case, words", [
    ("not yaml", ["not valid YAML", "line"]),
    ("missing", ["does not exist"]),
    ("bad method", ["method 'grdi'", "grid, random or bayes"]),
    ("malformed distribution", ["parameter 'lr'", "malformed"]),
    ("unknown parameter", ["parameter 'lrr'", "not a config key of train.py", "did you mean 'lr'"]),
    ("refused value", ["parameter 'lr_decay'", "1.5"]),
    ("bayes without metric", ["needs a metric"]),
    ("continuous grid", ["cannot be run", "grid"]),
    ("zero workers", ["--workers must be at least 1"]),
])
def test_bad_sweep_input_is_one_clear_error_before_any_run(case, words, tmp_path, monkeypatch, capsys):
    args = []
    if case == "not yaml":
        path = tmp_path / "sweep.yaml"
        path.write_text("method: grid\nparameters:\n  lr: [values: 1\n")
    elif case == "missing":
        path = tmp_path / "nope.yaml"
    elif case == "bad method":
        path = write_sweep(tmp_path, method="grdi")
    elif case == "malformed distribution":
        path = write_sweep(tmp_path, method="random",
                           parameters={"lr": {"distribution": "log_uniform_values", "min": 0.1}})
    elif case == "unknown parameter":
        path = write_sweep(tmp_path, parameters={"lrr": {"values": [0.1]}})
    elif case == "refused value":
        path = write_sweep(tmp_path, parameters={"lr_decay": {"values": [0.5, 1.5]}})
    elif case == "bayes without metric":
        config = write_sweep(tmp_path, method="bayes", parameters={"lr": {"min": 0.001, "max": 0.01}})
        loaded = yaml.safe_load(config.read_text())
        del loaded["metric"]
        config.write_text(yaml.safe_dump(loaded))
        path = config
    elif case == "continuous grid":
        path = write_sweep(tmp_path, parameters={"lr": {"min": 0.001, "max": 0.01}})
    else:
        path, args = write_sweep(tmp_path), ["--workers", "0"]
    code, err = charexp_main(monkeypatch, capsys, "sweep", str(path), *args)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]
    assert not (tmp_path / "sweep-runs").exists() and not (tmp_path / "runs").exists()


def test_the_project_sweep_yamls_are_valid():
    from charexp.sweep.spec import load_sweep_spec

    decay = ["lr_decay", "lr_schedule"]  # lr_decay only acts on the exponential schedule, so these pin it
    for name, params in (("lr", ["lr", *decay]), ("lr_bayes", ["lr", *decay]), ("arch", ["layers", "hidden"]),
                         ("phase2", ["init_from", "lr", *decay])):
        spec = load_sweep_spec(REPO / "sweeps" / f"{name}.yaml", cwd=REPO)
        assert spec.params == params and spec.is_charexp
        assert spec.command == ["${env}", "${interpreter}", "${program}", "--config", "configs/startrek.yaml",
                                "${args}"]
        assert (spec.metric_name, spec.goal) == ("test/loss", "minimize")
        if "lr_decay" in params:
            swept = yaml.safe_load((REPO / "sweeps" / f"{name}.yaml").read_text())["parameters"]
            assert swept["lr_schedule"] == {"value": "exponential"}
    grid = yaml.safe_load((REPO / "sweeps" / "lr.yaml").read_text())["parameters"]
    assert grid["lr"]["values"] == [1e-3, 3e-4, 1e-4, 3e-5, 1e-5] and grid["lr_decay"]["values"] == [1.0, 0.5, 0.1]
    bayes = yaml.safe_load((REPO / "sweeps" / "lr_bayes.yaml").read_text())
    assert {"min_iter", "eta", "max_iter", "s"} <= set(bayes["early_terminate"])


def test_each_worker_gets_its_gpu_or_its_share_of_the_cpu(monkeypatch):
    from charexp.sweep.launch import resource_env, visible_gpus

    assert [resource_env(slot, 2, ["0", "1"]) for slot in (0, 1)] == [{"CUDA_VISIBLE_DEVICES": "0"},
                                                                      {"CUDA_VISIBLE_DEVICES": "1"}]
    cores = len(os.sched_getaffinity(0))
    share = resource_env(0, 2, [])
    assert share == {"OMP_NUM_THREADS": str(max(1, cores // 2)), "MKL_NUM_THREADS": str(max(1, cores // 2))}
    assert resource_env(0, 64, [])["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []


def test_how_a_run_ended_follows_the_agent_conventions():
    from charexp.sweep.outcome import settle
    from charexp.sweep.state import RunRecord

    def end(code, rec=None, **flags):
        rec = rec or RunRecord("r1", {"lr": 0.1})
        settle(rec, code, interrupted=flags.get("interrupted", False), finished_locally=flags.get("local", False),
               metric="m")
        return rec

    assert end(0).state == "finished" and end(0).ended
    assert end(1).state == "failed" and end(2).exit_code == 2
    preempted = end(143)  # SIGTERM from elsewhere (a scheduler): saved state, requeued with the same id
    assert (preempted.state, preempted.requeue, preempted.requeues, preempted.ended) == ("preempted", True, 1, None)
    preempted.requeue = False  # relaunched ...
    end(-9, preempted)  # ... and preempted again: not requeued a second time
    assert (preempted.state, preempted.requeue, preempted.requeues) == ("preempted", False, 1) and preempted.ended
    stopped = RunRecord("r2", {}, stop_requested=True)  # hyperband sent the SIGTERM
    assert end(143, stopped).state == "stopped" and not stopped.requeue
    interrupted = end(130, interrupted=True)  # Ctrl-C to the runner: continues on --resume, budget untouched
    assert (interrupted.state, interrupted.requeue, interrupted.requeues) == ("preempted", True, 0)
    lost = end(None)  # not our child, no W&B exit record: relaunch with the same id
    assert (lost.state, lost.requeue) == ("preempted", True)
    assert end(None, local=True).state == "finished"  # train.py recorded the finish; only W&B's exit record is missing
