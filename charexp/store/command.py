"""`charexp store prune`: free the disk that old checkpoint versions hold."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(name="store", no_args_is_help=True, help="The local artifact store (artifacts/).")


def human_bytes(size: int) -> str:
    """Sizes as "1,234 bytes" or "12.3 MB": decimal units, as du --si and the W&B UI show them."""
    if size < 1000:
        return f"{size:,} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1000
        if value < 1000:
            break
    return f"{value:.1f} {unit}"


@app.command("prune")
def prune(
    dry_run: bool = typer.Option(False, "--dry-run", help="list what would be deleted and the space freed; "
                                                           "delete nothing"),
    artifacts_dir: Path = typer.Option(Path("artifacts"), "--artifacts-dir",
                                       help="the local store (the config's artifacts_dir)"),
    artifact_name: str = typer.Option("charlstm", "--artifact-name",
                                      help="the collection to prune (the config's artifact_name)"),
) -> None:
    """Delete the checkpoint versions that no reference names any more.

    Kept: every version that holds an alias (latest, epoch-N, best-test-loss, best-test-loss-<test set>,
    run-<run_id>, run-<run_id>-best) and each run's own best. Deleted: the rest, e.g. a run's earlier epochs
    once later runs hold epoch-N, so RUN_ID:vN and RUN_ID:epoch-N of those stop resolving."""
    from charexp.console import make_console
    from charexp.store.artifacts import ArtifactStore
    from charexp.store.prune import prune as run_prune

    store = ArtifactStore(artifacts_dir, artifact_name)
    pruned = run_prune(store, dry_run=dry_run)
    console = make_console(stderr=False)
    kept = f"{len(pruned.kept)} version{'s' * (len(pruned.kept) != 1)} kept (each holds an alias or is a run's best)"
    if not pruned.deleted:
        console.print(f"nothing to prune in {store.dir}: {kept}", highlight=False)
        return
    verb = "would delete" if dry_run else "deleted"
    for version, run_id, size in pruned.deleted:
        console.print(f"  {verb} {artifact_name}:{version} (run {run_id or 'unknown'}, {human_bytes(size)})",
                      highlight=False)
    count = len(pruned.deleted)
    console.print(f"{verb} {count} version{'s' * (count != 1)} from {store.dir}, freeing {human_bytes(pruned.freed)}; "
                  f"{kept}" + ("; run without --dry-run to delete them" if dry_run else ""), highlight=False)
