"""Ctrl-C in every command is exit 130 and one line, never a traceback (issue 18): one error path, errors.run_cli.

Where a real SIGINT can be timed, it is sent to a subprocess; elsewhere KeyboardInterrupt is raised inside the
command, as Python raises it on Ctrl-C. (Ctrl-C during training itself is tests/faults/test_signals.py.)
"""

from __future__ import annotations

import errno
import os
import runpy
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO

TRAIN_ENTRY = "charexp.train.main"  # the module behind python train.py and charexp train


def as_from_a_shell() -> None:
    """In the child before exec: SIGINT unblocked and at its default, as a shell starts a foreground command. A
    child inherits an ignored or blocked SIGINT from whatever the test process runs (in the full suite, some
    in-process run leaves it so), and would then never see the Ctrl-C."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def ctrl_c(*args, **kwargs):
    raise KeyboardInterrupt


def interrupted(capsys, run) -> None:
    with pytest.raises(SystemExit) as exit_:
        run()
    err = capsys.readouterr().err
    assert exit_.value.code == 130, err
    assert err.strip() == "interrupted" and "Traceback" not in err


def run_script(monkeypatch, script: str, args: list[str]):
    monkeypatch.setattr(sys, "argv", [str(REPO / script), *args])
    return lambda: runpy.run_path(str(REPO / script), run_name="__main__")


def run_charexp(monkeypatch, args: list[str]):
    from charexp.cli import main

    monkeypatch.setattr(sys, "argv", ["charexp", *args])
    return main


@pytest.mark.parametrize("entry", ["train.py", "charexp train"])
def test_ctrl_c_in_train_is_130(entry, monkeypatch, capsys, tiny_config):
    monkeypatch.setattr(f"{TRAIN_ENTRY}.prepare", ctrl_c)  # while the corpus loads
    args = ["--config", str(tiny_config())]
    is_script = entry == "train.py"
    run = run_script(monkeypatch, "train.py", args) if is_script else run_charexp(monkeypatch, ["train", *args])
    interrupted(capsys, run)


@pytest.mark.parametrize("entry", ["sample.py", "charexp sample"])
def test_ctrl_c_in_sample_is_130(entry, monkeypatch, capsys):
    monkeypatch.setattr("charexp.store.references.resolve_artifact", ctrl_c)  # while the checkpoint is found
    args = ["--artifact", "best-test-loss", "KS"]
    is_script = entry == "sample.py"
    run = run_script(monkeypatch, "sample.py", args) if is_script else run_charexp(monkeypatch, ["sample", *args])
    interrupted(capsys, run)


def test_ctrl_c_in_sweep_is_130(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("charexp.sweep.command.run_sweep", ctrl_c)  # before the runner's own handler is installed
    (tmp_path / "sweep.yaml").write_text("method: grid\n")
    interrupted(capsys, run_charexp(monkeypatch, ["sweep", str(tmp_path / "sweep.yaml")]))


def test_ctrl_c_in_report_is_130(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("charexp.report.command.write_reports", ctrl_c)  # while the figures are drawn
    run = tmp_path / "runs" / "abcd1234"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("lr: 0.01\n")
    interrupted(capsys, run_charexp(monkeypatch, ["report", str(run)]))


def test_a_real_sigint_during_data_download_is_130(tmp_path):
    """The download reads from a FIFO that never ends: SIGINT arrives mid-read, as a user's Ctrl-C would."""
    fifo = tmp_path / "corpus.fifo"
    os.mkfifo(fifo)
    argv = [sys.executable, "-m", "charexp.cli", "data", "download", "--url", fifo.as_uri(), "--force",
            "--cache-dir", str(tmp_path / "cache")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=as_from_a_shell)
    writer, deadline = None, time.monotonic() + 120
    try:
        while writer is None:  # opening the write end succeeds once the download holds the read end
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as err:
                assert err.errno == errno.ENXIO
                time.sleep(0.05)
        os.write(writer, b"KIRK: partial data")
        time.sleep(0.5)  # it is now blocked reading the rest
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if writer is not None:
            os.close(writer)
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err
    assert not list((tmp_path / "cache").glob("*.csv"))  # nothing half-downloaded is left as the corpus
