"""charexp: W&B sweep-driven experiments with character-level LSTM language models."""

__version__ = "0.1.0"
