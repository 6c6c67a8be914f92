"""Batched generation: one line per prime, each from a zero state, stopping at end-of-line."""

from __future__ import annotations

import pytest
import torch

from charexp.data.corpus import UNK, Vocab
from charexp.errors import CharexpError
from charexp.model import CharLSTM
from charexp.sampling import generate
from foundation import DEVICE

VOCAB = Vocab.from_texts(["KIRK: Mister Spock, report.", "SPOCK: Fascinating, Captain."])


def model(seed: int = 0) -> CharLSTM:
    torch.manual_seed(seed)
    return CharLSTM(len(VOCAB), embed=8, hidden=16, layers=2).to(DEVICE)


def gen(seed: int) -> torch.Generator:
    return torch.Generator(device=DEVICE).manual_seed(seed)


def test_one_line_per_prime_starting_with_it():
    primes = ["K", "S", "KIRK: ", "S", "SPOCK: Fas"]
    lines = generate(model(), VOCAB, primes, max_len=30, generator=gen(0))
    assert len(lines) == len(primes)
    for prime, line in zip(primes, lines):
        assert line.startswith(prime) and len(line) <= 30
        assert "\n" not in line and UNK not in line


def test_reproducible_with_a_seeded_generator():
    m = model()
    a = generate(m, VOCAB, list("KSKS"), max_len=40, generator=gen(7))
    b = generate(m, VOCAB, list("KSKS"), max_len=40, generator=gen(7))
    c = generate(m, VOCAB, list("KSKS"), max_len=40, generator=gen(8))
    assert a == b and a != c


def test_batched_lines_equal_lines_generated_alone():
    """Greedy (top_k=1) output does not depend on the other lines in the batch or on prime padding."""
    m = model(3)
    primes = ["K", "SPOCK: ", "KIRK: Mis", "S"]
    batched = generate(m, VOCAB, primes, max_len=50, top_k=1, generator=gen(0))
    alone = [generate(m, VOCAB, [p], max_len=50, top_k=1, generator=gen(0))[0] for p in primes]
    assert batched == alone


def test_each_line_stops_at_end_of_line():
    m = model()
    with torch.no_grad():
        m.head.weight.zero_()
        m.head.bias.fill_(-20.0)
        m.head.bias[VOCAB.eol] = 20.0  # end-of-line is (almost) certain after any character
    assert generate(m, VOCAB, ["K", "KIRK: ", "S"], max_len=100, generator=gen(0)) == ["K", "KIRK: ", "S"]


def test_never_writes_the_unknown_symbol():
    m = model()
    with torch.no_grad():
        m.head.bias[VOCAB.unk] = 30.0  # the model loves <unk>
    for line in generate(m, VOCAB, list("KSKS"), max_len=60, generator=gen(0)):
        assert UNK not in line


def test_temperature_and_top_k_change_the_distribution_not_the_contract():
    m = model()
    greedy = generate(m, VOCAB, ["K"], max_len=40, top_k=1, generator=gen(0))
    assert greedy == generate(m, VOCAB, ["K"], max_len=40, top_k=1, generator=gen(99))  # top-1 is greedy
    cold = generate(m, VOCAB, ["K"], max_len=40, temperature=1e-4, generator=gen(5))
    assert cold == greedy


@pytest.mark.parametrize("prime, bad", [("KIRK: Z", "'Z'"), ("\u00e9", "'\u00e9'"), ("K\u2603", "'\u2603'")])
def test_out_of_vocabulary_prime_names_the_character(prime, bad):
    with pytest.raises(CharexpError) as err:
        generate(model(), VOCAB, ["K", prime], generator=gen(0))
    assert bad in str(err.value)


def test_empty_prime_is_refused():
    with pytest.raises(CharexpError, match="empty"):
        generate(model(), VOCAB, ["K", ""], generator=gen(0))
