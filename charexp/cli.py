"""The `charexp` console script: data, sweep, report, runs.

Each command group lives in its own module; heavy imports happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from charexp.errors import CharexpError, fail
from charexp.report.command import app as report_app
from charexp.sweep.command import app as sweep_app

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="charexp: character-level LSTM experiments tracked in W&B. Training and sampling are "
                       "python train.py / python sample.py; this tool fetches data, runs offline sweeps and reports.")
data_app = typer.Typer(no_args_is_help=True, help="The training corpus.")
app.add_typer(data_app, name="data")
app.add_typer(sweep_app)
app.add_typer(report_app)


@data_app.command("download")
def data_download(
    url: Optional[str] = typer.Option(None, help="download from this URL instead (a mirror; file:// works); default: $CHAREXP_CORPUS_URL or the public release asset"),
    cache_dir: Optional[Path] = typer.Option(None, help="where to keep it; default: $CHAREXP_CACHE_DIR or ~/.cache/charexp"),
    force: bool = typer.Option(False, "--force", help="download again even when a verified copy is cached"),
) -> None:
    """Fetch the Star Trek transcript corpus, verify its sha256 and store it atomically in the cache."""
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from charexp.data.download import STARTREK, download

    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(), transient=True) as bar:
        task = bar.add_task(f"downloading {STARTREK.filename}", total=STARTREK.size)
        path = download(STARTREK, url=url, dest_dir=cache_dir, force=force, progress=lambda done, total: bar.update(task, completed=done, total=total))
    typer.echo(f"{path} (sha256 {STARTREK.sha256[:12]}…, {STARTREK.size:,} bytes); configs use it as data: startrek")


def main() -> None:
    try:
        app()
    except CharexpError as err:
        fail(str(err), err.exit_code)


if __name__ == "__main__":
    main()
