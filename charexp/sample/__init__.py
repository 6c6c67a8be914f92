"""Sampling: batched generation from a trained model (generate) and the sample.py command (command)."""
