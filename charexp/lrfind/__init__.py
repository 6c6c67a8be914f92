"""charexp lr-find: the learning-rate range test."""
