"""Utterances encoded once into one flat tensor on the training device; batches are gathered there.

Each utterance is one sequence: it starts from a zero LSTM state, the model reads characters
1..L-1 and predicts characters 2..L and then end-of-line. Utterances of similar length share
a batch; the padding after the shorter ones is masked out of the loss, and since the LSTM runs
left to right, padding at the end never changes the outputs before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from charexp.data.corpus import EOL, Vocab

IGNORE = -100  # target id that cross_entropy skips
POOL_BATCHES = 100  # larger pools pad less (98% real characters at 100 on the Star Trek corpus, 96% at 50) but mix less


def encode_all(texts: list[str], vocab: Vocab) -> np.ndarray:
    """All utterances, each followed by end-of-line, as one int64 array (vectorised lookup)."""
    joined = "".join(t + EOL for t in texts)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    lookup = np.full(int(codes.max(initial=0)) + 1, vocab.unk, dtype=np.int64)
    for i, char in enumerate(vocab.chars):
        if ord(char) < len(lookup):
            lookup[ord(char)] = i
    return lookup[codes]


class EncodedSplit:
    """One split on one device: `flat` ids, per-utterance `offsets` and `lengths` (end-of-line included)."""

    def __init__(self, texts: list[str], vocab: Vocab, device: torch.device):
        self.vocab, self.device = vocab, device
        self.lengths = np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=len(texts))
        offsets = np.zeros(len(texts), dtype=np.int64)
        np.cumsum(self.lengths[:-1], out=offsets[1:])
        self.flat = torch.from_numpy(encode_all(texts, vocab)).to(device)
        self.offsets_dev = torch.from_numpy(offsets).to(device)
        self.lengths_dev = torch.from_numpy(self.lengths).to(device)
        self.arange = torch.arange(int(self.lengths.max(initial=1)) + 1, device=device)

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def scored_chars(self) -> int:
        """Predictions over the whole split: characters 2..L plus end-of-line per utterance."""
        return int((self.lengths - 1).sum())

    def gather(self, ids: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs [B, width] and targets [B, width] (IGNORE past each utterance's end), built on the device."""
        steps = self.arange[: width + 1]
        offsets, lengths = self.offsets_dev[ids], self.lengths_dev[ids]
        positions = (offsets[:, None] + steps[None, :]).clamp_(max=self.flat.numel() - 1)
        tokens = self.flat[positions]
        targets = tokens[:, 1:].masked_fill(steps[None, 1:] >= lengths[:, None], IGNORE)
        return tokens[:, :-1], targets


@dataclass(frozen=True)
class BatchSlice:
    start: int  # into the epoch's id tensor
    stop: int
    width: int  # time steps after truncation
    tokens: int  # scored characters in the batch (known on the host: no device sync)


@dataclass
class EpochPlan:
    ids: torch.Tensor  # utterance ids of the whole epoch, in batch order, on the device
    batches: list[BatchSlice]


def cut_batches(part: np.ndarray, scored: np.ndarray, batch_size: int, batch_tokens: int) -> list[np.ndarray]:
    """Cut length-sorted utterances into batches of at most `batch_size` utterances and, when
    `batch_tokens` > 0, at most that many padded characters (so long utterances share a batch with fewer)."""
    batches, start = [], 0
    while start < len(part):
        stop = min(start + batch_size, len(part))
        if batch_tokens > 0:  # sorted ascending: the last utterance sets the width
            fits = np.nonzero((np.arange(start, stop) - start + 1) * scored[part[start:stop]] <= batch_tokens)[0]
            stop = start + (int(fits[-1]) + 1 if len(fits) else 1)
        batches.append(part[start:stop])
        start = stop
    return batches


def plan_epoch(lengths: np.ndarray, batch_size: int, max_len: int, seed: int, epoch: int, device: torch.device,
               batch_tokens: int = 0) -> EpochPlan:
    """Shuffle, sort by length within pools of POOL_BATCHES batches, cut into batches, shuffle the batches.

    Depends only on (seed, epoch), so a resumed run rebuilds the identical plan.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    scored_all = np.minimum(lengths - 1, max_len)
    pool = batch_size * POOL_BATCHES
    chunks: list[np.ndarray] = []
    for start in range(0, len(order), pool):
        part = order[start : start + pool]
        part = part[np.argsort(lengths[part], kind="stable")]
        chunks += cut_batches(part, scored_all, batch_size, batch_tokens)
    chunks = [chunks[i] for i in rng.permutation(len(chunks))]
    batches, position = [], 0
    for chunk in chunks:
        scored = scored_all[chunk]
        batches.append(BatchSlice(position, position + len(chunk), int(scored.max()), int(scored.sum())))
        position += len(chunk)
    ids = torch.from_numpy(np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)).to(device)
    return EpochPlan(ids, batches)


def plan_eval(lengths: np.ndarray, max_tokens: int, device: torch.device) -> EpochPlan:
    """Whole utterances sorted by length, in batches of at most `max_tokens` padded positions."""
    order = np.argsort(lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and (stop + 1 - start) * (lengths[order[stop]] - 1) <= max_tokens:
            stop += 1
        scored = lengths[order[start:stop]] - 1
        batches.append(BatchSlice(start, stop, int(scored.max()), int(scored.sum())))
        start = stop
    return EpochPlan(torch.from_numpy(order.copy()).to(device), batches)
