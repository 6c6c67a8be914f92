"""test/loss is the homework's: mean NLL in nats over characters 2..L and end-of-line, from a zero state."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from charexp.data.batching import EncodedSplit
from charexp.data.corpus import Vocab
from charexp.model import CharLSTM
from charexp.train.evaluate import Evaluator

from foundation import DEVICE

TEST = ["KIRK: Spock!", "SPOCK: Fascinating, Captain.", "Hi", "MCCOY: He's dead, Jim." * 5, "UHURA: Aye."]


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator(device=DEVICE).manual_seed(seed)


def test_loss_of_a_constant_model_is_the_hand_computed_value():
    """All weights zero except the head's bias: every prediction is softmax(bias), so the loss is
    -mean(log p[target]) over the scored characters, computed here with math.log."""
    vocab = Vocab.from_texts(TEST)
    model = CharLSTM(len(vocab), embed=4, hidden=6, layers=1)
    bias = torch.linspace(-1.0, 2.0, len(vocab))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.head.bias.copy_(bias)
    model.to(DEVICE)
    log_z = math.log(sum(math.exp(b) for b in bias.tolist()))
    targets = [i for text in TEST for i in vocab.encode(text)[1:] + [vocab.eol]]
    assert len(targets) == sum(len(t) for t in TEST)  # characters 2..L plus end-of-line
    expected = sum(log_z - bias[i].item() for i in targets) / len(targets)
    metrics = Evaluator(EncodedSplit(TEST, vocab, torch.device(DEVICE)))(model, generator())
    assert metrics["test/loss"] == pytest.approx(expected, rel=1e-6)
    assert metrics["test/bpc"] == pytest.approx(metrics["test/loss"] / math.log(2), rel=1e-12)
    best = int(bias.argmax())
    assert metrics["test/acc_argmax"] == pytest.approx(sum(i == best for i in targets) / len(targets))


def test_loss_and_accuracy_equal_one_utterance_at_a_time():
    vocab = Vocab.from_texts(TEST)
    torch.manual_seed(1)
    model = CharLSTM(len(vocab), embed=8, hidden=12, layers=2).to(DEVICE)
    model.train()  # the evaluator must switch to eval mode and back
    total, hits, count = 0.0, 0, 0
    with torch.no_grad():
        model.eval()
        for text in TEST:
            ids = torch.tensor(vocab.encode(text) + [vocab.eol], device=DEVICE)
            logits, _ = model(ids[None, :-1])
            total += F.cross_entropy(logits[0].double(), ids[1:], reduction="sum").item()
            hits += int((logits[0].argmax(-1) == ids[1:]).sum())
            count += len(text)
        model.train()
    metrics = Evaluator(EncodedSplit(TEST, vocab, torch.device(DEVICE)))(model, generator())
    assert model.training
    assert metrics["test/loss"] == pytest.approx(total / count, rel=1e-5)
    assert metrics["test/bpc"] == pytest.approx(metrics["test/loss"] / math.log(2), rel=1e-12)
    assert metrics["test/acc_argmax"] == pytest.approx(hits / count)
    assert 0.0 <= metrics["test/acc_sampled"] <= 1.0 and 0.0 <= metrics["test/acc_argmax"] <= 1.0
    again = Evaluator(EncodedSplit(TEST, vocab, torch.device(DEVICE)))(model, generator())
    assert again == metrics  # the sampled accuracy is reproducible with the same generator


def test_sampled_accuracy_of_a_certain_model_is_one():
    """A model that always puts (almost) all mass on one character: sampled and argmax accuracy agree."""
    text = ["aaaaaa", "aaa"]
    vocab = Vocab(("\n", "\ufffd", "a"))
    model = CharLSTM(len(vocab), embed=2, hidden=2, layers=1)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.head.bias.copy_(torch.tensor([-50.0, -50.0, 50.0]))
    metrics = Evaluator(EncodedSplit(text, vocab, torch.device(DEVICE)))(model.to(DEVICE), generator())
    # 5 + 2 'a' targets are right, the 2 end-of-line targets wrong
    assert metrics["test/acc_argmax"] == pytest.approx(7 / 9)
    assert metrics["test/acc_sampled"] == pytest.approx(7 / 9)


def test_unknown_test_characters_are_scored_without_a_crash():
    vocab = Vocab.from_texts(["KIRK: hello"])
    torch.manual_seed(0)
    model = CharLSTM(len(vocab), embed=4, hidden=8, layers=1).to(DEVICE)
    metrics = Evaluator(EncodedSplit(["KIRK: h\u00e9llo \u2603"], vocab, torch.device(DEVICE)))(model, generator())
    assert math.isfinite(metrics["test/loss"])


def test_sample_rows_draws_from_the_softmax():
    from charexp.train.evaluate import sample_rows

    probs = torch.tensor([0.2, 0.5, 0.0, 0.3])
    logits = probs.clamp_min(1e-12).log().expand(200_000, 4)
    drawn = sample_rows(logits, torch.Generator().manual_seed(0))
    freq = torch.bincount(drawn, minlength=4).double() / drawn.numel()
    assert torch.allclose(freq, probs.double(), atol=0.005), freq
    again = sample_rows(logits, torch.Generator().manual_seed(0))
    assert torch.equal(drawn, again)
