"""Corpus: reading, splitting, the vocabulary, download, batching."""
