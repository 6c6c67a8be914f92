"""`charexp sweep --launcher slurm` through a real one-node cluster (slurm_cluster.py: munged, slurmctld, slurmd
from Debian's packages): a grid to its end, a hyperband stop by `scancel --signal=TERM --batch`, a job cancelled
from outside, and a runner killed mid-sweep while SLURM requeues one of its jobs, then resumed. `make test`
leaves these out (CHAREXP_SLURM_CLUSTER=0); `make test-slurm` runs them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster, skip_reason
from test_sweep_runner import FAKE_PROGRAM, charexp_grid, sweep_yaml, the_sweep, wandb_run

from charexp.sweep.command import run_sweep
from charexp.sweep.slurm import SlurmOptions

from conftest import synthetic_csv_text

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
