"""Checkpoints, the local artifact store, and artifact references."""
