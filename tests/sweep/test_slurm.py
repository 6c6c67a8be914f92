"""`charexp sweep --launcher slurm`: SLURM's output parsed, its endings decided, and sweeps run through a real
one-node cluster (slurm_cluster.py: munged, slurmctld, slurmd from Debian's packages): a grid to its end, a
hyperband stop by `scancel --signal=TERM --batch`, a job cancelled from outside, and a runner killed mid-sweep
while SLURM requeues one of its jobs, then resumed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slurm_cluster import SlurmCluster, skip_reason
from test_sweep_runner import FAKE_PROGRAM, charexp_grid, sweep_yaml, the_sweep, wandb_run

from charexp.sweep import slurm
from charexp.sweep.command import run_sweep, wandb_offline
from charexp.sweep.slurm import JobInfo, SlurmOptions
from charexp.sweep.slurm_jobs import settle_job
from charexp.sweep.state import RunRecord

from conftest import synthetic_csv_text

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


# --- a real cluster ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster():
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with SlurmCluster.start() as started:
        yield started


@pytest.fixture
def slurm_env(cluster, monkeypatch):
    """SLURM_CONF for the runner and its jobs; every job cancelled after the test."""
    monkeypatch.setenv("SLURM_CONF", str(cluster.conf))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield cluster
    cluster.cancel_all()


@pytest.fixture
def fake_program(tmp_path: Path) -> Path:
    path = tmp_path / "fake_train.py"
    path.write_text(FAKE_PROGRAM)
    return path


def wait_for(predicate, what: str, timeout: float = 120, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = predicate()
        except Exception:  # state.json not written yet
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{log.read_text()[-3000:]}" if log else ""))


def start_runner(tmp_path: Path, path: Path, *args: str) -> subprocess.Popen:
    log = open(tmp_path / "runner.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "charexp.cli", "sweep", str(path), "--launcher", "slurm", *args],
                            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)


def test_a_grid_sweep_runs_to_the_end_as_slurm_jobs_offline_and_reports(slurm_env, tiny_config, tmp_path, capsys,
                                                                        monkeypatch):
    # a W&B key and a W&B server that does not answer: compute nodes after `wandb login` on the login node
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    path = charexp_grid(tmp_path, tiny_config(epochs=1, sample_every=0), [0.01, 0.003, 0.001], [1.0])
    assert run_sweep(path, None, workers=3, launcher="slurm", slurm_options=SlurmOptions(cpus=1)) == "finished"
    out = capsys.readouterr().out
    sweep_dir, state = the_sweep(tmp_path)
    assert state.launcher == "slurm" and state.slurm["cpus"] == 1 and state.finished
    assert sorted(r.params["lr"] for r in state.runs) == [0.001, 0.003, 0.01]
    assert len({r.job_id for r in state.runs}) == 3
    for rec in state.runs:
        assert rec.state == "finished" and rec.exit_code == 0 and rec.jobs == [rec.job_id]
        job = slurm_env.job(rec.job_id)  # SLURM ran it: its job, its node, its exit code
        assert (job["JobState"], job["ExitCode"], job["JobName"]) == \
            ("COMPLETED", "0:0", f"charexp-{state.sweep_id}-{rec.run_id}-1")
        log = (sweep_dir / rec.log).read_text()
        assert f"SLURM job {rec.job_id} on " in log and f"run {rec.run_id} of sweep {state.sweep_id}, launch 1" in log
        assert "did not answer" not in log  # offline from the start: no probe of the unreachable server
        files, (run,) = wandb_run(tmp_path, rec.run_id)
        assert files[0].parent.name.startswith("offline-run-") and run.exit_code == 0
        assert rec.metric == pytest.approx(run.summary["test/loss"]["min"])
        assert re.search(rf"│\s*{rec.run_id}\s*│.*│\s*{rec.job_id}\s*│\s*finished\s*│\s*{rec.metric:.4f}\s*│", out), out
    assert f"started (1) as SLURM job {state.runs[0].job_id}" in out
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_API_KEY", "WANDB_BASE_URL")}
    report = subprocess.run([sys.executable, "-m", "charexp.cli", "report", str(sweep_dir)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    assert all(rec.run_id in report.stdout for rec in state.runs)


def test_hyperband_stops_a_losing_job_with_sigterm_and_it_saves(slurm_env, fake_program, tmp_path):
    path = sweep_yaml(tmp_path, program=str(fake_program), method="grid", metric={"name": "loss", "goal": "minimize"},
                      early_terminate={"type": "hyperband", "min_iter": 1, "eta": 3, "max_iter": 9, "s": 2},
                      parameters={"bad": {"values": [0, 1]}, "steps": {"value": 9}, "sleep": {"value": 0.05}})
    assert run_sweep(path, None, workers=1, launcher="slurm") == "finished"
    _, state = the_sweep(tmp_path)
    good, bad = sorted(state.runs, key=lambda r: r.params["bad"])
    assert good.state == "finished" and good.exit_code == 0
    assert bad.state == "stopped" and bad.stop_requested and bad.exit_code == 128 + signal.SIGTERM
    assert slurm_env.job(bad.job_id)["ExitCode"] == "143:0"  # the program itself got SIGTERM and exited 143
    _, (bad_run,) = wandb_run(tmp_path, bad.run_id)
    assert 1 <= len(bad_run.metric("loss")) < 9 and bad_run.preempting and bad_run.exit_code == 143


def test_a_job_cancelled_from_outside_is_recorded_and_the_sweep_goes_on(slurm_env, fake_program, tmp_path):
    path = sweep_yaml(tmp_path, program=str(fake_program), method="grid", metric={"name": "loss", "goal": "minimize"},
                      parameters={"lr": {"values": [0.001, 0.002]}, "steps": {"value": 400}, "sleep": {"value": 0.05}})
    runner = start_runner(tmp_path, path, "--workers", "2")
    try:
        victim = wait_for(lambda: next(r for r in the_sweep(tmp_path)[1].runs if r.job_id and r.metric is not None),
                          "a job that has logged", log=tmp_path / "runner.log")
        slurm_env.run("scancel", victim.job_id)  # someone else's decision: SIGTERM, SIGKILL after KillWait
        assert runner.wait(timeout=120) == 0, (tmp_path / "runner.log").read_text()[-3000:]
    finally:
        runner.kill()
    out = (tmp_path / "runner.log").read_text()
    _, state = the_sweep(tmp_path)
    cancelled = state.run(victim.run_id)
    other = next(r for r in state.runs if r.run_id != victim.run_id)
    assert (cancelled.state, cancelled.slurm_state, cancelled.requeue, cancelled.jobs) == \
        ("preempted", "CANCELLED", False, [victim.job_id])  # recorded as what it was, not relaunched
    assert f"run {victim.run_id} cancelled outside the sweep (SLURM job {victim.job_id}: SLURM CANCELLED" in out
    assert other.state == "finished" and state.finished
    assert re.search(rf"{victim.run_id}.*preempted \(CANCELLED\)", out)
    # a plain scancel sends SIGTERM to every process of the job, W&B's own service too, so the run's file can end
    # without an exit record (docs/slurm.md); what it logged is there, and it was launched once
    _, segments = wandb_run(tmp_path, victim.run_id)
    assert len(segments) == 1 and segments[0].metric("loss") and segments[0].exit_code in (None, 143)


def test_a_killed_runner_resumes_its_jobs_and_a_requeued_job_continues_its_run(slurm_env, tiny_config, tmp_path,
                                                                               capsys):
    """SIGKILL the runner mid-sweep; SLURM requeues one of its jobs meanwhile (SIGTERM: the run saves) and runs
    it again under the same job id; --resume follows the jobs, never submits a run twice, and the requeued
    run continues from its saved state (WANDB_RUN_ID + charexp's resume state)."""
    big = tmp_path / "big.csv"  # epochs long enough to requeue a job mid-run
    big.write_text(synthetic_csv_text(episodes=80), encoding="utf-8")
    config = tiny_config(epochs=2, checkpoint_every=20, sample_every=0, data=str(big))
    path = charexp_grid(tmp_path, config, [0.01, 0.003, 0.001], [1.0])
    runner = start_runner(tmp_path, path, "--workers", "2")

    def victim_with_state():
        running = [r for r in the_sweep(tmp_path)[1].runs if r.state == "running" and r.job_id]
        runs = tmp_path / "runs"
        return len(running) == 2 and next((r for r in running if (runs / r.run_id / "state.pt").exists()), None)

    try:
        victim = wait_for(victim_with_state, "two jobs, one with a saved state", log=tmp_path / "runner.log")
    finally:
        runner.kill()  # SIGKILL: the runner saves nothing more; its jobs run on in SLURM
        runner.wait()
    slurm_env.run("scontrol", "requeue", victim.job_id)
    wait_for(lambda: slurm_env.job(victim.job_id)["JobState"] == "PENDING", "the requeued job to be pending")
    slurm_env.run("scontrol", "update", f"jobid={victim.job_id}", "StartTime=now")  # not SLURM's 2-minute wait

    sweep_dir, _ = the_sweep(tmp_path)
    assert run_sweep(None, sweep_dir) == "finished"
    out = capsys.readouterr().out
    assert re.search(rf"run {victim.run_id} (is still running \(SLURM job {victim.job_id}\)|finished)", out), out
    _, state = the_sweep(tmp_path)
    assert sorted(r.params["lr"] for r in state.runs) == [0.001, 0.003, 0.01]  # the grid, each point once
    for rec in state.runs:
        assert rec.state == "finished" and rec.launches == 1 and len(rec.jobs) == 1, rec  # never submitted twice
        summary = json.loads((tmp_path / "runs" / rec.run_id / "summary.json").read_text())
        assert summary["state"] == "finished" and summary["epoch"] == 2
    assert slurm_env.job(victim.job_id)["Restarts"] == "1"
    log = (sweep_dir / state.run(victim.run_id).log).read_text()
    assert f"SLURM job {victim.job_id} on" in log and "restart 1" in log and f"resuming run {victim.run_id}" in log
    _, segments = wandb_run(tmp_path, victim.run_id)
    # SLURM's requeue SIGTERMs every process of the job, W&B's service too: the first segment may lack its exit record
    assert len(segments) == 2 and segments[0].exit_code != 0 and segments[-1].exit_code == 0
    first_step = min(int(row["_step"]) for row in segments[-1].history if "_step" in row)
    assert first_step > 0  # continued from its saved state, not trained again from step 0


def test_options_slurm_refuses_are_one_sentence_before_anything_is_written(slurm_env, tiny_config, tmp_path):
    from charexp.errors import CharexpError

    path = charexp_grid(tmp_path, tiny_config(), [0.01], [1.0])
    with pytest.raises(CharexpError, match=r"runs cannot be submitted to SLURM: sbatch --test-only refused: .*"
                                           r"[Ii]nvalid partition"):
        run_sweep(path, None, launcher="slurm", slurm_options=SlurmOptions(partition="nosuchpartition"))
    assert not (tmp_path / "sweep-runs").exists()


def test_without_slurm_commands_the_sweep_says_so(tiny_config, tmp_path, monkeypatch):
    from charexp.errors import CharexpError

    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    path = charexp_grid(tmp_path, tiny_config(), [0.01], [1.0])
    with pytest.raises(CharexpError, match="the SLURM commands sbatch, squeue, scontrol, scancel are not on PATH"):
        run_sweep(path, None, launcher="slurm", slurm_options=SlurmOptions())
    assert os.environ["PATH"] == str(tmp_path / "empty-bin")
