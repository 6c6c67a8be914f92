"""`charexp data download`: fetch the corpus, verify it, keep it in the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(name="data", no_args_is_help=True, help="The training corpus.")


@app.command("download")
def download(
    url: Optional[str] = typer.Option(None, help="download from this URL instead (a mirror; file:// works); "
                                                 "default: $CHAREXP_CORPUS_URL or the public release asset"),
    cache_dir: Optional[Path] = typer.Option(None, help="where to keep it; default: $CHAREXP_CACHE_DIR or "
                                                        "~/.cache/charexp"),
    force: bool = typer.Option(False, "--force", help="download again even when a verified copy is cached"),
) -> None:
    """Fetch the Star Trek transcript corpus, verify its sha256 and store it atomically in the cache."""
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from charexp.data.download import STARTREK
    from charexp.data.download import download as fetch

    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(), transient=True) as bar:
        task = bar.add_task(f"downloading {STARTREK.filename}", total=STARTREK.size)
        path = fetch(STARTREK, url=url, dest_dir=cache_dir, force=force,
                     progress=lambda done, total: bar.update(task, completed=done, total=total))
    typer.echo(f"{path} (sha256 {STARTREK.sha256[:12]}…, {STARTREK.size:,} bytes); configs use it as data: startrek")
