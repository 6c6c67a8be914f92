"""Offline sweeps on W&B's engine: spec, engine, launch, watch, state, outcome, table, command."""
