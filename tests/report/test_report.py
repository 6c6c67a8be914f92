"""`charexp report RUN_DIR` and `charexp runs`, built from real tiny training runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from matplotlib.image import imread
from typer.testing import CliRunner

from charexp.cli import app
from charexp.errors import CharexpError
from charexp.summary_view import fmt
from charexp.tracking.rundir import RunDir

from conftest import REPO, TINY, write_tiny_csv

FIGURES = ("loss.png", "lr.png", "train_loss.png", "test_loss.png", "accuracy.png")
# matplotlib's default colours, which report.py draws each curve in
BLUE, ORANGE, GREEN, PURPLE = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E), (0x2C, 0xA0, 0x2C), (0x94, 0x67, 0xBD)
BROWN = (0x8C, 0x56, 0x4B)
WIDE = {"COLUMNS": "200"}  # rich tables in CliRunner output: no wrapped run ids


def train_runs(root: Path, variants: list[dict]) -> list[str]:
    """Train tiny runs in-process under root/ (runs/, artifacts/), isolated like conftest's fixture; return their ids
    in order."""
    ids: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_RUN_ID", "WANDB_SWEEP_ID", "WANDB_SWEEP_PARAM_PATH",
                    "WANDB_PROJECT"):
            mp.delenv(var, raising=False)
        mp.setenv("WANDB_DIR", str(root))
        mp.setenv("WANDB_SILENT", "true")
        mp.setenv("CHAREXP_CACHE_DIR", str(root / "cache"))
        write_tiny_csv(root)
        from charexp.train.main import main

        for i, overrides in enumerate(variants):
            config = root / f"tiny{i}.yaml"
            data = {"data": "tiny.csv", **TINY, "eval_every": 10, "wandb_mode": "disabled", **overrides}
            config.write_text(yaml.safe_dump(data), encoding="utf-8")
            before = set(os.listdir(root / "runs")) if (root / "runs").exists() else set()
            assert main(["--config", str(config)]) == 0
            ids += sorted(set(os.listdir(root / "runs")) - before)
    return ids


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("trained")
    (run_id,) = train_runs(root, [{}])
    return root, run_id


@pytest.fixture
def run_copy(trained: tuple[Path, str], tmp_path: Path) -> RunDir:
    """A private copy of the trained run (and the artifact store) under the test's cwd."""
    root, run_id = trained
    shutil.copytree(root / "runs", tmp_path / "runs")
    shutil.copytree(root / "artifacts", tmp_path / "artifacts")
    return RunDir(tmp_path / "runs", run_id)


def report(path: Path):
    return CliRunner().invoke(app, ["report", str(path)], env=WIDE)


def assert_figure(path: Path, *colours: tuple[int, int, int]) -> None:
    """A real, non-blank PNG in which each curve colour was drawn."""
    assert path.stat().st_size > 1000, path
    image = imread(path)[..., :3]
    assert image.ndim == 3 and image.shape[0] >= 200 and image.shape[1] >= 300
    flat = f"{path} is (nearly) one flat colour"
    assert image.std() > 0.01 and len(np.unique(image.reshape(-1, 3), axis=0)) > 20, flat
    for colour in colours:
        near = np.abs(image - np.array(colour) / 255).max(axis=-1) < 0.03
        assert near.sum() > 20, f"no curve in colour {colour} drawn in {path.name}"


def sample_texts(run: RunDir) -> list[str]:
    texts = [s["text"] for s in run.samples()]
    assert len(texts) == len(run.samples_path.read_text(encoding="utf-8").splitlines()) > 0
    return texts


def test_report_of_a_finished_run(run_copy: RunDir) -> None:
    result = report(run_copy.path)
    assert result.exit_code == 0, result.output
    out = run_copy.path / "report"
    assert str(out) in result.output.replace("\n", "")
    assert_figure(out / "loss.png", BLUE, ORANGE)  # train and test loss on one figure
    assert_figure(out / "lr.png", BROWN)
    assert_figure(out / "train_loss.png", BLUE)
    assert_figure(out / "test_loss.png", ORANGE)
    assert_figure(out / "accuracy.png", GREEN, PURPLE)
    assert all(f"{name} " in result.output.replace("\n", " ").replace(",", " ") for name in FIGURES)
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))  # atomic writes leave no temp files behind

    samples_md = (out / "samples.md").read_text(encoding="utf-8")
    md_lines = samples_md.splitlines()
    for text in sample_texts(run_copy):
        assert text in md_lines
    assert "## Epoch 1 of 2" in samples_md and "## Epoch 2 of 2" in samples_md
    assert samples_md.index("## Epoch 1") < samples_md.index("## Epoch 2")

    summary = run_copy.read_summary()
    evals = [r for r in run_copy.history() if "test/loss" in r]
    best = min(evals, key=lambda r: r["test/loss"])
    assert best["test/loss"] == pytest.approx(summary["best_test_loss"])
    summary_md = (out / "summary.md").read_text(encoding="utf-8")
    assert f"{fmt(best['test/loss'])} nats/char" in summary_md
    assert f"at epoch {best['epoch']:g} (step {best['step']})" in summary_md
    assert f"{fmt(best['test/loss'] / np.log(2))} bpc" in summary_md
    assert "| state | finished |" in summary_md and "not finished" not in summary_md and "--resume" not in summary_md
    for version in ("charlstm:v0", "charlstm:v1"):  # one checkpoint per epoch, read from the local store
        assert version in summary_md
    assert "best-test-loss" in summary_md and "| lr | 0.01 |" in summary_md


@pytest.mark.parametrize("damage", ["running", "no-summary"])
def test_run_killed_mid_way_still_reports(run_copy: RunDir, damage: str) -> None:
    rows = run_copy.history_path.read_text(encoding="utf-8").splitlines()
    cut = next(i for i, r in enumerate(rows) if "test/loss" in r) + 2  # keep the first eval, then a half-written row
    run_copy.history_path.write_text("\n".join(rows[:cut]) + "\n" + rows[cut][: len(rows[cut]) // 2], encoding="utf-8")
    if damage == "running":
        summary = run_copy.read_summary()
        running = {**summary.to_dict(), "state": "running", "best_test_loss": None, "versions": []}
        run_copy.summary_path.write_text(json.dumps(running), encoding="utf-8")
    else:
        run_copy.summary_path.unlink()
    shutil.rmtree(run_copy.path.parent.parent / "artifacts")

    result = report(run_copy.path)
    assert result.exit_code == 0, result.output
    assert "has not finished" in result.output
    out = run_copy.path / "report"
    assert_figure(out / "train_loss.png", BLUE)
    assert_figure(out / "test_loss.png", ORANGE)
    summary_md = (out / "summary.md").read_text(encoding="utf-8")
    first_eval = next(r for r in run_copy.history() if "test/loss" in r)
    assert "has not finished" in summary_md and f"{fmt(first_eval['test/loss'])} nats/char" in summary_md
    assert "No checkpoint published yet" in summary_md
    md_lines = (out / "samples.md").read_text(encoding="utf-8").splitlines()
    assert all(text in md_lines for text in sample_texts(run_copy))


def test_run_sigkilled_mid_training_still_reports(tiny_config, tmp_path: Path) -> None:
    config = tiny_config(epochs=500, eval_every=3, sample_every=3, checkpoint_every=3, wandb_mode="disabled")
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), "--config", str(config)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while (not list(tmp_path.glob("runs/*/samples.txt")) or not any("test/loss" in r for r in _rows(tmp_path))
               or not list(tmp_path.glob("runs/*/state.pt"))):
            assert proc.poll() is None, f"training ended early: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "training never logged an eval"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (run_path,) = tmp_path.glob("runs/*")
    assert RunDir(run_path.parent, run_path.name).read_summary()["state"] == "running"
    result = report(run_path)
    assert result.exit_code == 0, result.output
    summary_md = (run_path / "report" / "summary.md").read_text(encoding="utf-8")
    assert "has not finished" in summary_md
    # how to resume it, with its own id
    assert f"Continue it with `python train.py --resume {run_path.name}`" in summary_md
    assert_figure(run_path / "report" / "test_loss.png", ORANGE)
    assert_figure(run_path / "report" / "accuracy.png", GREEN, PURPLE)


def _rows(cwd: Path) -> list[str]:
    return [line for p in cwd.glob("runs/*/history.jsonl") for line in p.read_text(encoding="utf-8").splitlines()]


def test_bad_directories_are_one_clear_sentence(tmp_path: Path, run_copy: RunDir) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file.txt").write_text("x", encoding="utf-8")
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "state.json").write_text('{"sweep_id": "x", "runs": [', encoding="utf-8")
    cases = {
        "nope": "does not exist",
        "empty": "is neither a run directory",
        "a-file.txt": "is a file, not a directory",
        "runs": "is a folder of runs (1 inside), not a run itself; "
                f"pass one of them, e.g. {Path('runs') / run_copy.run_id}",
        "sweep": "could not be read as JSON",
    }
    for name, message in cases.items():
        result = CliRunner().invoke(app, ["report", name])
        assert isinstance(result.exception, CharexpError), (name, result.output)
        assert message in str(result.exception), (name, str(result.exception))
    (run_copy.path / "report").write_text("not a directory", encoding="utf-8")
    result = CliRunner().invoke(app, ["report", str(run_copy.path)])
    assert isinstance(result.exception, CharexpError) and "could not write the report into" in str(result.exception)

    proc = subprocess.run([sys.executable, "-m", "charexp.cli", "report", "nope"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: nope does not exist;") and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr + proc.stdout


def test_runs_lists_local_runs(run_copy: RunDir, tmp_path: Path) -> None:
    killed = RunDir(run_copy.path.parent, "killed01")
    shutil.copytree(run_copy.path, killed.path)
    running = {**killed.read_summary().to_dict(), "run_id": "killed01", "state": "running", "best_test_loss": None}
    killed.summary_path.write_text(json.dumps(running), encoding="utf-8")
    result = CliRunner().invoke(app, ["runs"], env=WIDE)
    assert result.exit_code == 0, result.output
    best = run_copy.read_summary()["best_test_loss"]
    lines = result.output.splitlines()
    for run_id, state in ((run_copy.run_id, "finished"), ("killed01", "running")):
        (line,) = [line for line in lines if line.startswith(run_id)]
        assert state in line and "1×32" in line and "0.01" in line
        assert f"{fmt(best)} ({fmt(best / np.log(2), 3)})" in line

    empty = CliRunner().invoke(app, ["runs", "--runs-dir", str(tmp_path / "elsewhere")], env=WIDE)
    assert empty.exit_code == 0 and "No runs yet" in empty.output and empty.exception is None


def test_smoothing_and_epoch_marks() -> None:
    from charexp.report.plots import epoch_boundaries, smooth

    assert smooth([2.0] * 50, weight=0.95) == pytest.approx([2.0] * 50)  # debiased: no pull to 0 at the start
    assert smooth([3.0, 1.0], weight=0.5)[0] == pytest.approx(3.0)
    rows = [{"step": 10, "epoch": 0.5}, {"step": 20, "epoch": 1.0}, {"step": 30, "epoch": 1.5},
            {"step": 40, "epoch": 2.0}, {"step": 40, "epoch": 2.0}]
    assert epoch_boundaries(rows) == [(20.0, 1), (40.0, 2)]


def test_a_step_0_eval_does_not_flatten_the_test_loss_plot() -> None:
    import matplotlib.pyplot as plt

    from charexp.report.plots import scale_to_training

    fig, ax = plt.subplots()
    curve = ([0, 100, 200, 300], [4.39, 1.35, 1.30, 1.22])  # reject_worse's eval of the starting weights, then training
    ax.plot(*curve)
    scale_to_training(ax, [curve])
    low, high = ax.get_ylim()
    assert 1.1 < low < 1.22 and 1.35 < high < 1.5
    assert [t.get_text() for t in ax.texts] == ["step 0: 4.39 (above the scale)"]
    fig2, ax2 = plt.subplots()  # no step-0 eval, or one below the rest: matplotlib's own limits stay
    ax2.plot([100, 200], [1.35, 1.22])
    before = ax2.get_ylim()
    scale_to_training(ax2, [([100, 200], [1.35, 1.22])])
    assert ax2.get_ylim() == before and not ax2.texts
    plt.close(fig)
    plt.close(fig2)
