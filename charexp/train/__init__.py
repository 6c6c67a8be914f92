"""The training loop and the train.py entry: argument parsing, evaluation, signals, progress."""
