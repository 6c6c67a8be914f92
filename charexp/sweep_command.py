"""`charexp sweep`: placeholder until the offline sweep runner lands."""

from __future__ import annotations

import typer

app = typer.Typer()
