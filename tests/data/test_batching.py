"""Batches: padded utterances with an exactly masked loss, truncation at max_len, a reproducible epoch plan."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from charexp.data.batching import IGNORE, EncodedSplit, encode_all, plan_epoch, plan_eval
from charexp.data.corpus import Vocab
from charexp.model import CharLSTM
from charexp.train.evaluate import masked_loss_sum

from foundation import DEVICE

TEXTS = ["KIRK: Spock!", "SPOCK: Fascinating.", "Hi", "MCCOY: He's dead, Jim. Dead as a doornail, I tell you.",
         "UHURA: Aye, sir.", "ok"]


def tiny_model(vocab: Vocab, seed: int = 0, layers: int = 2) -> CharLSTM:
    torch.manual_seed(seed)
    return CharLSTM(len(vocab), embed=8, hidden=16, layers=layers).to(DEVICE).eval()


def one_utterance(model: CharLSTM, vocab: Vocab, text: str) -> tuple[torch.Tensor, float]:
    """Logits and the summed NLL of one utterance alone, unpadded: read chars 1..L-1, predict 2..L and end-of-line."""
    ids = torch.tensor(vocab.encode(text) + [vocab.eol], device=DEVICE)
    logits, _ = model(ids[None, :-1])
    return logits[0], F.cross_entropy(logits[0].double(), ids[1:], reduction="sum").item()


def test_encoding_appends_end_of_line_and_maps_unknown_characters():
    vocab = Vocab.from_texts(["abc"])
    assert encode_all(["ab", "cz"], vocab).tolist() == [vocab.index["a"], vocab.index["b"], vocab.eol, vocab.index["c"],
                                                        vocab.unk, vocab.eol]
    assert encode_all(["\u2603x"], vocab).tolist() == [vocab.unk, vocab.unk, vocab.eol]


def test_gather_builds_inputs_and_masked_targets():
    vocab = Vocab.from_texts(TEXTS)
    split = EncodedSplit(TEXTS, vocab, torch.device(DEVICE))
    width = max(len(t) for t in TEXTS)
    inputs, targets = split.gather(torch.arange(len(TEXTS), device=DEVICE), width)
    assert inputs.shape == targets.shape == (len(TEXTS), width)
    for row, text in enumerate(TEXTS):
        ids = vocab.encode(text) + [vocab.eol]
        assert inputs[row, : len(text)].tolist() == ids[:-1]
        assert targets[row, : len(text)].tolist() == ids[1:]
        assert (targets[row, len(text):] == IGNORE).all()
    assert split.scored_chars == sum(len(t) for t in TEXTS) == int((targets != IGNORE).sum())


def test_padded_batch_loss_equals_the_token_weighted_mean_of_single_utterances():
    vocab = Vocab.from_texts(TEXTS)
    model = tiny_model(vocab)
    split = EncodedSplit(TEXTS, vocab, torch.device(DEVICE))
    width = max(len(t) for t in TEXTS)
    inputs, targets = split.gather(torch.arange(len(TEXTS), device=DEVICE), width)
    with torch.no_grad():
        logits, _ = model(inputs)
        batch_loss = (masked_loss_sum(logits, targets) / split.scored_chars).item()
        singles = [one_utterance(model, vocab, t) for t in TEXTS]
    expected = sum(total for _, total in singles) / sum(len(t) for t in TEXTS)
    assert batch_loss == pytest.approx(expected, rel=1e-5)
    # and padding at the end never changes the outputs before it
    for row, (alone, _) in enumerate(singles):
        torch.testing.assert_close(logits[row, : alone.shape[0]], alone, rtol=1e-4, atol=1e-5)


def test_masked_loss_ignores_whatever_the_padding_holds():
    vocab = Vocab.from_texts(TEXTS)
    model = tiny_model(vocab)
    split = EncodedSplit(TEXTS, vocab, torch.device(DEVICE))
    inputs, targets = split.gather(torch.arange(len(TEXTS), device=DEVICE), max(len(t) for t in TEXTS))
    scrambled = inputs.clone()
    pad = targets == IGNORE
    scrambled[pad] = (scrambled[pad] + 7) % len(vocab)
    with torch.no_grad():
        a = masked_loss_sum(model(inputs)[0], targets)
        b = masked_loss_sum(model(scrambled)[0], targets)
    assert a.item() == pytest.approx(b.item(), rel=1e-6)


def test_truncation_at_max_len():
    vocab = Vocab.from_texts(TEXTS)
    split = EncodedSplit(TEXTS, vocab, torch.device(DEVICE))
    plan = plan_epoch(split.lengths, batch_size=len(TEXTS), max_len=5, seed=0, epoch=0, device=torch.device(DEVICE))
    (batch,) = plan.batches
    assert batch.width == 5
    assert batch.tokens == sum(min(len(t), 5) for t in TEXTS)
    inputs, targets = split.gather(plan.ids[batch.start : batch.stop], batch.width)
    assert inputs.shape == (len(TEXTS), 5)
    assert int((targets != IGNORE).sum()) == batch.tokens
    for row, index in enumerate(plan.ids.tolist()):
        ids = vocab.encode(TEXTS[index]) + [vocab.eol]
        assert inputs[row].tolist()[: min(5, len(ids) - 1)] == ids[: min(5, len(ids) - 1)]


def lengths(n: int = 403, seed: int = 0) -> np.ndarray:
    rng = random.Random(seed)
    return np.array([rng.randint(3, 120) for _ in range(n)], dtype=np.int64)


def test_epoch_plan_covers_every_utterance_once_and_is_reproducible():
    lens = lengths()
    plan = plan_epoch(lens, batch_size=16, max_len=64, seed=3, epoch=2, device=torch.device("cpu"))
    ids = plan.ids.tolist()
    assert sorted(ids) == list(range(len(lens)))
    assert [b.start for b in plan.batches] == [0] + [b.stop for b in plan.batches[:-1]]
    assert plan.batches[-1].stop == len(ids)
    for batch in plan.batches:
        chunk = lens[ids[batch.start : batch.stop]]
        assert 1 <= len(chunk) <= 16
        assert batch.width == min(int(chunk.max()) - 1, 64) and batch.tokens == int(np.minimum(chunk - 1, 64).sum())
    again = plan_epoch(lens, batch_size=16, max_len=64, seed=3, epoch=2, device=torch.device("cpu"))
    assert again.ids.tolist() == ids and again.batches == plan.batches
    assert plan_epoch(lens, 16, 64, seed=3, epoch=3, device=torch.device("cpu")).ids.tolist() != ids
    assert plan_epoch(lens, 16, 64, seed=4, epoch=2, device=torch.device("cpu")).ids.tolist() != ids


def test_batches_group_utterances_of_similar_length():
    lens = lengths(2000)
    plan = plan_epoch(lens, batch_size=16, max_len=1000, seed=0, epoch=0, device=torch.device("cpu"))
    padded = sum(b.width * (b.stop - b.start) for b in plan.batches)
    scored = sum(b.tokens for b in plan.batches)
    assert padded / scored < 1.15  # random batches of these lengths pad about 1.6x


def test_eval_plan_covers_every_utterance_within_the_token_budget():
    lens = lengths()
    plan = plan_eval(lens, max_tokens=300, device=torch.device("cpu"))
    ids = plan.ids.tolist()
    assert sorted(ids) == list(range(len(lens)))
    for batch in plan.batches:
        chunk = lens[ids[batch.start : batch.stop]]
        assert batch.width == int(chunk.max()) - 1  # never truncated
        assert batch.width * len(chunk) <= 300 or len(chunk) == 1


def test_batch_tokens_caps_padded_characters_and_still_covers_every_utterance():
    rng = np.random.default_rng(0)
    lens = rng.integers(2, 300, size=500)
    plan = plan_epoch(lens, batch_size=64, max_len=256, seed=0, epoch=0, device=torch.device("cpu"), batch_tokens=1024)
    ids = plan.ids.tolist()
    assert sorted(ids) == list(range(len(lens)))
    for batch in plan.batches:
        size = batch.stop - batch.start
        assert size <= 64
        assert size == 1 or size * batch.width <= 1024
    uncapped = plan_epoch(lens, batch_size=64, max_len=256, seed=0, epoch=0, device=torch.device("cpu"))
    assert len(plan.batches) > len(uncapped.batches)
