"""Batched generation: one line per prime, each from a zero state, stopping at end-of-line."""

from __future__ import annotations

import pytest
import torch

from charexp.data.corpus import UNK, Vocab
from charexp.errors import CharexpError
from charexp.model import CharLSTM
from charexp.sample.generate import generate

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


def test_top_1_and_a_near_zero_temperature_are_greedy():
    m = model()
    greedy = generate(m, VOCAB, ["K"], max_len=40, top_k=1, generator=gen(0))
    assert greedy == generate(m, VOCAB, ["K"], max_len=40, top_k=1, generator=gen(99))  # top-1 ignores the generator
    cold = generate(m, VOCAB, ["K"], max_len=40, temperature=1e-4, generator=gen(5))
    assert cold == greedy


FAVOURITES = {"a": 3.0, "i": 2.5, "n": 2.0}  # the three most likely characters; every other one has logit 0


def fixed_model() -> CharLSTM:
    """Same next-character logits after any input: FAVOURITES, 0 for the rest, end-of-line never."""
    m = model()
    with torch.no_grad():
        m.head.weight.zero_()
        m.head.bias.zero_()
        m.head.bias[VOCAB.eol] = -50.0  # lines run to max_len: every drawn character counts
        for char, logit in FAVOURITES.items():
            m.head.bias[VOCAB.encode(char)[0]] = logit
    return m


def drawn(temperature: float = 1.0, top_k: int = 0) -> list[str]:
    lines = generate(fixed_model(), VOCAB, ["K"] * 64, max_len=41, temperature=temperature, top_k=top_k,
                     generator=gen(1))
    chars = [c for line in lines for c in line[1:]]
    assert len(chars) == 64 * 40
    return chars


def expected_share(char: str, temperature: float) -> float:
    logits = torch.zeros(len(VOCAB))
    for c, logit in FAVOURITES.items():
        logits[VOCAB.encode(c)[0]] = logit
    keep = torch.ones(len(VOCAB), dtype=torch.bool)
    keep[[VOCAB.eol, VOCAB.unk]] = False  # never drawn
    probs = torch.softmax(torch.where(keep, logits / temperature, torch.tensor(float("-inf"))), dim=0)
    return float(probs[VOCAB.encode(char)[0]])


def test_top_k_draws_only_from_the_k_most_likely_characters():
    everything = drawn()
    assert set(everything) - set(FAVOURITES)  # the control: without top_k other characters do come up (about a third)
    assert set(drawn(top_k=3)) == set(FAVOURITES)
    assert set(drawn(top_k=2)) == {"a", "i"}


def test_temperature_sharpens_or_flattens_the_distribution():
    shares = {}
    for temperature in (0.25, 1.0, 4.0):
        chars = drawn(temperature)
        shares[temperature] = chars.count("a") / len(chars)
        assert abs(shares[temperature] - expected_share("a", temperature)) < 0.05, (temperature, shares)
    assert shares[0.25] > shares[1.0] + 0.3 and shares[1.0] > shares[4.0] + 0.1


@pytest.mark.parametrize("prime, bad", [("KIRK: Z", "'Z'"), ("\u00e9", "'\u00e9'"), ("K\u2603", "'\u2603'")])
def test_out_of_vocabulary_prime_names_the_character(prime, bad):
    with pytest.raises(CharexpError) as err:
        generate(model(), VOCAB, ["K", prime], generator=gen(0))
    assert bad in str(err.value)


def test_empty_prime_is_refused():
    with pytest.raises(CharexpError, match="empty"):
        generate(model(), VOCAB, ["K", ""], generator=gen(0))
