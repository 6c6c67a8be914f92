"""`charexp report` and `charexp runs`: placeholder until reports land."""

from __future__ import annotations

import typer

app = typer.Typer()
