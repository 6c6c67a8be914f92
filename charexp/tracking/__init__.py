"""Where a run is recorded: the W&B run, the local run directory, and the .wandb reader."""
