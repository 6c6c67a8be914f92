"""`charexp sweeps`: every local sweep in one table, a damaged one as a row that says so."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from charexp.sweep.state import RunRecord, SweepState, save_state

MINIMIZE = {"name": "test/loss", "goal": "minimize"}


def write_sweep(parent: Path, sweep_id: str, runs: list[RunRecord], created: str, name: str | None = "lr-grid",
                method: str = "grid", metric: dict | None = None) -> Path:
    folder = parent / sweep_id
    folder.mkdir(parents=True)
    config = {"method": method, "metric": metric or MINIMIZE, "parameters": {"lr": {"values": [0.1, 0.01]}},
              **({"name": name} if name else {})}
    save_state(folder, SweepState(sweep_id, "charexp", method, metric or MINIMIZE, config, created, runs=runs))
    return folder


def charexp(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from charexp.cli import main

    monkeypatch.setattr(sys, "argv", ["charexp", *args])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exit_:
        main()
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def row(out: str, sweep_id: str) -> list[str]:
    (line,) = [line for line in out.splitlines() if line.strip().startswith(sweep_id)]
    return line.split()


def test_sweeps_lists_id_name_method_runs_and_the_best_run(tmp_path, monkeypatch, capsys):
    parent = tmp_path / "sweep-runs"
    write_sweep(parent, "newer001", [RunRecord("r1", {"lr": 0.1}, "finished", metric=2.5),
                                     RunRecord("r2", {"lr": 0.01}, "finished", metric=1.75),
                                     RunRecord("r3", {"lr": 0.001}, "failed", metric=3.0),
                                     RunRecord("r4", {"lr": 0.0001}, "running")], "2026-05-02T10:00:00.000+00:00")
    write_sweep(parent, "older001", [RunRecord("q1", {"lr": 0.1}, "finished", metric=0.5),
                                     RunRecord("q2", {"lr": 0.2}, "finished", metric=0.75)],
                "2026-05-01T10:00:00.000+00:00", name=None, method="random",
                metric={"name": "test/acc_argmax", "goal": "maximize"})
    (parent / "notasweep").mkdir()

    code, out, err = charexp(monkeypatch, capsys, "sweeps", "--dir", str(parent))
    assert code == 0, err
    assert row(out, "newer001") == ["newer001", "lr-grid", "grid", "2/4", "test/loss", "↓", "1.7500", "r2"]
    assert row(out, "older001") == ["older001", "-", "random", "2/2", "test/acc_argmax", "↑", "0.7500", "q2"]
    assert out.index("older001") < out.index("newer001")  # oldest first, by when each was created
    assert "notasweep" not in out
    assert out.strip().splitlines()[-1] == f"Report on one with charexp report {parent / 'newer001'}"


def test_a_sweep_without_a_scored_run_shows_no_best(tmp_path, monkeypatch, capsys):
    write_sweep(tmp_path, "fresh001", [RunRecord("r1", {"lr": 0.1}, "pending")], "2026-05-01T10:00:00.000+00:00")
    code, out, _ = charexp(monkeypatch, capsys, "sweeps", "--dir", str(tmp_path))
    assert code == 0 and row(out, "fresh001") == ["fresh001", "lr-grid", "grid", "0/1", "test/loss", "↓", "-", "-"]


@pytest.mark.parametrize("damage, says", [
    ("{not json", "damaged: state.json could not be read as JSON (JSONDecodeError)"),
    ('{"runs": []}', "damaged: state.json is corrupt (the sweep has no 'sweep_id')"),
    ('{"sweep_id": "x"}', "damaged: state.json has no list of runs"),
    (None, "damaged: no state.json"),
])
def test_a_damaged_state_is_one_row_and_the_others_still_show(tmp_path, monkeypatch, capsys, damage, says):
    write_sweep(tmp_path, "good0001", [RunRecord("r1", {"lr": 0.1}, "finished", metric=1.0)],
                "2026-05-01T10:00:00.000+00:00")
    bad = tmp_path / "bad00001"
    bad.mkdir()
    (bad / "sweep.yaml").write_text("method: grid\n")
    if damage is not None:
        (bad / "state.json").write_text(damage)
    code, out, err = charexp(monkeypatch, capsys, "sweeps", "--dir", str(tmp_path))
    assert code == 0 and "Traceback" not in out + err, err
    (line,) = [line for line in out.splitlines() if "bad00001" in line]
    assert says in " ".join(line.split()), out
    assert row(out, "good0001")[-2:] == ["1.0000", "r1"]


def test_no_sweeps_yet_and_a_file_for_a_folder(tmp_path, monkeypatch, capsys):
    code, out, _ = charexp(monkeypatch, capsys, "sweeps", "--dir", str(tmp_path / "none"))
    assert code == 0 and f"No sweeps yet: {tmp_path / 'none'}/ does not exist" in out
    (tmp_path / "f").write_text("")
    code, out, err = charexp(monkeypatch, capsys, "sweeps", "--dir", str(tmp_path / "f"))
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [f"error: {tmp_path / 'f'} is a file, not a directory; pass --dir with the "
                                        "folder charexp sweep wrote its sweeps into (default sweep-runs)"]
