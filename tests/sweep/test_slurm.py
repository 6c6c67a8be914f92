"""`charexp sweep --launcher slurm` without a cluster: SLURM's output parsed (sbatch, scontrol, squeue, sacct),
the job script and sbatch options, how each ending is recorded, and the launcher's refusals. The runs through a
real cluster are in test_slurm_cluster.py (make test-slurm).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_sweep_runner import charexp_grid

from charexp.sweep import slurm
from charexp.sweep.command import run_sweep, wandb_offline
from charexp.sweep.slurm import JobInfo, SlurmOptions
from charexp.sweep.slurm_jobs import settle_job
from charexp.sweep.state import RunRecord

# --- SLURM's output, parsed (no cluster needed) -----------------------------------------------------

SCONTROL_LINE = (  # `scontrol -o show job 2` from slurm 22.05 after `scancel --signal=TERM --batch 2`
    "JobId=2 JobName=job.sh UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901758 Nice=0 "
    "Account=(null) QOS=(null) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Requeue=1 Restarts=0 "
    "BatchFlag=1 Reboot=0 ExitCode=143:0 RunTime=00:00:01 TimeLimit=UNLIMITED TimeMin=N/A "
    "Command=/tmp/sl/job.sh 60 WorkDir=/tmp/sl StdErr=/tmp/sl/j2.out StdIn=/dev/null StdOut=/tmp/sl/j2.out Power= ")


@given(st.integers(0, 255), st.integers(0, 64))
def test_exit_code_is_the_code_or_minus_the_signal(code, sig):
    assert slurm.parse_exit_code(f"{code}:{sig}") == (-sig if sig else code)


@given(st.text(max_size=30))
def test_any_exit_code_text_parses_to_an_int_or_none(text):
    assert slurm.parse_exit_code(text) is None or isinstance(slurm.parse_exit_code(text), int)


def test_scontrol_line_parses_to_state_reason_exit_code_and_restarts():
    info = slurm.parse_scontrol(SCONTROL_LINE)
    assert (info.job_id, info.state, info.reason, info.exit_code, info.code, info.restarts) == \
        ("2", "FAILED", "NonZeroExitCode", "143:0", 143, 0)
    assert info.ended
    requeued = slurm.parse_scontrol(SCONTROL_LINE.replace("JobState=FAILED Reason=NonZeroExitCode", "JobState=PENDING "
                                                          "Reason=BeginTime").replace("Restarts=0", "Restarts=1"))
    assert (requeued.state, requeued.reason, requeued.restarts, requeued.ended) == ("PENDING", "BeginTime", 1, False)
    assert slurm.parse_scontrol("slurm_load_jobs error: Invalid job id specified") is None


@given(st.text(max_size=200))
def test_any_scontrol_text_gives_a_job_or_none(text):
    info = slurm.parse_scontrol(text)
    assert info is None or (isinstance(info, JobInfo) and isinstance(info.restarts, int))


def test_squeue_lines_parse_by_job_id_with_base_state_and_no_empty_reason():
    jobs = slurm.parse_squeue("3|CANCELLED by 0|None|charexp-s-r-1\n 4|PENDING|Resources|x \n\ngarbage\n"
                              "5|COMPLETING|None|y\n")
    assert {k: (j.state, j.reason, j.ended) for k, j in jobs.items()} == {
        "3": ("CANCELLED", None, True), "4": ("PENDING", "Resources", False), "5": ("COMPLETING", None, False)}


@given(st.text(max_size=200))
def test_any_squeue_text_parses_to_jobs_with_ids(text):
    assert all(k and j.job_id == k for k, j in slurm.parse_squeue(text).items())


def test_sacct_lines_parse_and_the_last_line_of_a_job_wins():
    jobs = slurm.parse_sacct("7|TIMEOUT|0:15|None\n8|CANCELLED by 0|0:0|None\n8|COMPLETED|0:0|None\nJobID|x\n")
    assert {k: (j.state, j.code, j.reason) for k, j in jobs.items()} == {"7": ("TIMEOUT", -15, None),
                                                                         "8": ("COMPLETED", 0, None)}


def test_sbatch_parsable_output_gives_the_job_id():
    assert slurm.parse_sbatch("42\n") == "42" and slurm.parse_sbatch("43;cluster-a\n") == "43"
    with pytest.raises(slurm.SlurmError, match="no job id"):
        slurm.parse_sbatch("sbatch: error: Batch job submission failed\n")


def test_the_job_script_execs_exactly_the_agents_argv(tmp_path):
    argv = ["/usr/bin/env", sys.executable, "train.py", "--config", "a b.yaml", "--name=it's $HOME `x`"]
    script = slurm.job_script(argv, tmp_path / "work dir")
    exec_line = script.splitlines()[-1]
    assert exec_line.startswith("exec ") and shlex.split(exec_line)[1:] == argv  # exec: SIGTERM reaches the run
    # the shell runs it as written: echo the argv back through sh itself
    echo = subprocess.run(["sh", "-c", exec_line.replace("exec ", "printf '%s\\n' ", 1)], capture_output=True,
                          text=True)
    assert echo.stdout.splitlines() == argv


def test_sbatch_options_and_a_hand_edited_state_entry():
    opts = SlurmOptions(partition="gpu", cpus=4, gpus=1, time="10:00", extra=["--qos=low"])
    assert opts.args() == ["--partition=gpu", "--cpus-per-task=4", "--gpus-per-task=1", "--time=10:00", "--qos=low"]
    argv = slurm.sbatch_argv(opts, Path("/s/job.sh"), "charexp-a-b-1", Path("/s/b.log"), Path("/w"))
    assert argv[0] == "sbatch" and argv[-1] == "/s/job.sh" and "--export=ALL" in argv and "--open-mode=append" in argv
    assert SlurmOptions.from_dict({"cpus": 2, "extra": ["--a", {"x": 1}], "nonsense": 1}) == \
        SlurmOptions(cpus=2, extra=["--a"])


# --- how a job's end is recorded ---------------------------------------------------------------------

def settled(info: JobInfo | None, code: int | None, interrupted: bool = False, **rec_fields) -> tuple[RunRecord, str]:
    rec = RunRecord("r1", {"lr": 0.1}, state="running", job_id=info.job_id if info else "9", **rec_fields)
    note = settle_job(rec, info, code, interrupted=interrupted, finished_locally=False, metric="loss 1.0")
    return rec, note


@pytest.mark.parametrize("state,reason,code,fields,expected", [
    ("COMPLETED", None, 0, {}, ("finished", False)),
    ("FAILED", "NonZeroExitCode", 143, {"stop_requested": True}, ("stopped", False)),  # hyperband's SIGTERM
    ("CANCELLED", None, -9, {"stop_requested": True}, ("stopped", False)),  # ignored it: cancelled by the runner
    ("FAILED", "NonZeroExitCode", 1, {}, ("failed", False)),
    ("FAILED", "NonZeroExitCode", 143, {}, ("preempted", True)),  # someone's scancel --signal=TERM: requeued
    ("CANCELLED", None, 143, {}, ("preempted", False)),  # scancel from outside: saved, not relaunched
    ("CANCELLED", None, -9, {}, ("preempted", False)),
    ("TIMEOUT", "TimeLimit", -15, {}, ("preempted", True)),
    ("TIMEOUT", "TimeLimit", -15, {"requeues": 1}, ("preempted", False)),
    ("NODE_FAIL", "NodeDown", -9, {}, ("preempted", True)),
    ("PREEMPTED", None, 143, {}, ("preempted", True)),
    ("OUT_OF_MEMORY", "OutOfMemory", 0, {}, ("failed", False)),
])
def test_each_slurm_ending_is_recorded_as_what_it_was(state, reason, code, fields, expected):
    rec, note = settled(JobInfo("9", state, reason, f"{max(code, 0)}:{max(-code, 0)}"), code, **fields)
    assert (rec.state, rec.requeue) == expected
    assert (rec.slurm_state, rec.slurm_reason, rec.exit_code) == (state, reason, code)
    assert (rec.ended is None) == rec.requeue  # a requeued run has not ended
    if expected[0] != "finished":
        assert f"SLURM job 9: SLURM {state}" + (f", {reason}" if reason else "") in note


def test_a_job_the_runner_interrupted_continues_on_resume_whatever_slurm_calls_it():
    for state in ("CANCELLED", "TIMEOUT", "FAILED"):
        rec, note = settled(JobInfo("9", state, None, "143:0"), 143, interrupted=True)
        assert (rec.state, rec.requeue, rec.requeues) == ("preempted", True, 0) and "continues on --resume" in note


def test_a_cancelled_jobs_zero_exit_code_is_no_finish():
    assert JobInfo("1", "CANCELLED", None, "0:0").code is None  # cancelled while queued: nothing ran
    assert JobInfo("1", "CANCELLED", None, "143:0").code == 143 and JobInfo("1", "COMPLETED", None, "0:0").code == 0
    rec, note = settled(JobInfo("9", "CANCELLED", None, "0:0"), None, interrupted=True)
    assert (rec.state, rec.requeue) == ("preempted", True)  # Ctrl-C twice cancelled it while queued: again on --resume


def test_a_job_slurm_has_forgotten_falls_back_to_the_runs_own_exit_record():
    rec, note = settled(None, None)
    assert rec.state == "preempted" and rec.requeue and "SLURM no longer knows it" in note  # relaunched, same id
    rec, _ = settled(None, 0)
    assert rec.state == "finished"


def test_slurm_runs_are_offline_even_with_an_api_key(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_offline("slurm") and not wandb_offline("local")
    monkeypatch.setenv("WANDB_MODE", "online")
    assert not wandb_offline("slurm")  # asked for explicitly
    monkeypatch.delenv("WANDB_API_KEY")
    assert wandb_offline("slurm") and wandb_offline("local")


def test_without_slurm_commands_the_sweep_says_so(tiny_config, tmp_path, monkeypatch):
    from charexp.errors import CharexpError

    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    path = charexp_grid(tmp_path, tiny_config(), [0.01], [1.0])
    with pytest.raises(CharexpError, match="the SLURM commands sbatch, squeue, scontrol, scancel are not on PATH"):
        run_sweep(path, None, launcher="slurm", slurm_options=SlurmOptions())
    assert os.environ["PATH"] == str(tmp_path / "empty-bin")
