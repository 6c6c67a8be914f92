"""`charexp report` (figures, samples and summaries of a run or a sweep), and the local lists behind it:
`charexp runs` and `charexp sweeps`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from charexp.errors import CharexpError

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer()


@app.command("report")
def report(
    directory: Path = typer.Argument(..., metavar="RUN_DIR|SWEEP_DIR",
                                     help="a run directory (runs/<run_id>) or a sweep directory (with state.json)"),
) -> None:
    """Plot a run's train loss, test loss and accuracy, and write its samples by epoch and a summary, into
    DIR/report/.

    For a sweep directory, also compare the runs: all test-loss curves, final test loss against each swept
    parameter, a parallel-coordinates figure, a runs table, each best value at the edge of the values tried,
    and each parameter's correlation and importance with the metric."""
    from charexp.console import make_console

    kind = detect(directory)
    try:
        write_reports(directory, kind, make_console(stderr=False))
    except OSError as err:
        raise CharexpError(f"could not write the report into {directory / 'report'} ({err.strerror or err}); make it "
                           "a writable directory (or free some space) and run charexp report again") from None


def write_reports(directory: Path, kind: str, console: Console) -> None:
    """Write the run or sweep report and say where it went."""
    if kind == "sweep":
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from charexp.report.edges import print_edges
        from charexp.report.importance import importance_table
        from charexp.report.sweep import write_sweep_report
        from charexp.sweep.table import sweep_runs_table

        columns = (TextColumn("run reports"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("runs", total=None)
            out, state, runs, advice = write_sweep_report(
                directory, lambda done, total: bar.update(task, completed=done, total=total))
        console.print(sweep_runs_table(state))
        print_edges(console, advice.edges)
        console.print(importance_table(advice.importance), highlight=False)
        missing = [r.run_id for r in runs if r.data is None]
        if missing:
            console.print(f"[yellow]no run directory found for {', '.join(missing)} (looked for each run_dir from "
                          "here and from the sweep directory's parents)[/yellow]", highlight=False)
        console.print(f"sweep report for {len(runs)} runs written to {out}/ (runs.md, test_loss_all.png, "
                      "final_test_loss_vs_*.png, parallel_coordinates.png, one folder per run)", highlight=False)
    else:
        from charexp.report.run import FIGURES, load_run, status_note, write_report

        data = load_run(directory)
        out = write_report(data, data.run.path / "report")
        note = status_note(data)
        if note:
            console.print(f"[yellow]{note.replace('`', '')}[/yellow]", highlight=False)
        console.print(f"report for run {data.run_id} written to {out}/: {', '.join(FIGURES)}, samples.md, summary.md",
                      highlight=False)


def detect(directory: Path) -> str:
    """'run' or 'sweep', by what the directory holds; anything else is one clear error."""
    from charexp.report.run import is_run_dir
    from charexp.report.sweep import is_sweep_dir

    if not directory.exists():
        raise CharexpError(f"{directory} does not exist; pass a run directory such as runs/<run_id> "
                           "(list them with charexp runs) or a sweep directory")
    if not directory.is_dir():
        raise CharexpError(f"{directory} is a file, not a directory; pass a run directory such as runs/<run_id> "
                           "or a sweep directory")
    if is_sweep_dir(directory):
        return "sweep"
    if is_run_dir(directory):
        return "run"
    inside = sorted(p.name for p in directory.iterdir() if is_run_dir(p))
    if inside:
        raise CharexpError(f"{directory} is a folder of runs ({len(inside)} inside), not a run itself; pass one of "
                           f"them, e.g. {directory / inside[0]}, or list them with charexp runs --runs-dir {directory}")
    raise CharexpError(f"{directory} is neither a run directory (config.yaml, summary.json) nor a sweep directory "
                       "(state.json); pass runs/<run_id> or the directory charexp sweep wrote")


@app.command("runs")
def runs(
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir",
                                  help="where training wrote its run directories (the config's runs_dir)"),
) -> None:
    """List local runs: id, model and optimiser settings, best test loss, state, last update."""
    from charexp.console import make_console
    from charexp.report.run import load_run
    from charexp.summary_view import local_runs_table
    from charexp.tracking.rundir import list_runs

    found = list_runs(runs_dir)
    console = make_console(stderr=False)
    if not found:
        nothing_yet(console, runs_dir, "runs", "Train one with python train.py --config configs/quick.yaml",
                    "--runs-dir")
        return
    rows = []
    for run in found:
        data = load_run(run.path, with_versions=False)
        best = data.best
        rows.append({"run_id": data.run_id, "config": data.config,
                     "best_test_loss": best["test/loss"] if best else None, "state": data.state,
                     "updated": data.updated_at})
    console.print(local_runs_table(rows, title=f"runs in {runs_dir}/ (oldest first)"))
    console.print("Report on one with charexp report " + str(found[-1].path), highlight=False)


@app.command("sweeps")
def sweeps(
    parent: Path = typer.Option(Path("sweep-runs"), "--dir",
                                help="where charexp sweep wrote its sweep directories (its --dir)"),
) -> None:
    """List local sweeps: id, name (the YAML's name:), method, runs finished/total, best metric and its run."""
    from charexp.console import make_console
    from charexp.sweep.listing import read_sweeps, sweeps_table

    if parent.exists() and not parent.is_dir():
        raise CharexpError(f"{parent} is a file, not a directory; pass --dir with the folder charexp sweep wrote "
                           "its sweeps into (default sweep-runs)")
    entries = read_sweeps(parent)
    console = make_console(stderr=False)
    if not entries:
        nothing_yet(console, parent, "sweeps", "Run one with charexp sweep sweeps/lr.yaml", "--dir")
        return
    console.print(sweeps_table(entries, title=f"sweeps in {parent}/ (oldest first)"))
    newest = next((e for e in reversed(entries) if e.state), entries[-1])
    console.print(f"Report on one with charexp report {newest.path}", highlight=False)


def nothing_yet(console: Console, folder: Path, what: str, start_one: str, flag: str) -> None:
    """An empty list: where was looked, and how to make the first one (or look elsewhere)."""
    where = "does not exist" if not folder.is_dir() else f"holds no {what}"
    console.print(f"No {what} yet: {folder}/ {where}. {start_one} (or pass {flag}).", highlight=False)
