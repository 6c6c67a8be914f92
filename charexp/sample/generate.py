"""Batched generation: every line starts from a zero state, reads its prime, stops at end-of-line."""

from __future__ import annotations

import torch

from charexp.data.corpus import Vocab
from charexp.errors import CharexpError
from charexp.model import CharLSTM

CHECK_DONE_EVERY = 16  # steps between host syncs that test whether every line has ended


def check_primes(primes: list[str], vocab: Vocab) -> None:
    for prime in primes:
        if not prime:
            raise CharexpError("a prime is empty; give at least one starting character")
        missing = vocab.missing(prime)
        if missing:
            shown = ", ".join(repr(c) for c in missing)
            raise CharexpError(
                f"prime {prime!r} uses {shown}, which the checkpoint's vocabulary does not contain; "
                f"use characters from: {''.join(c for c in vocab.chars[2:])!r}"
            )


def pick_next(logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator | None,
              unk: int = 1) -> torch.Tensor:
    logits = logits.float() / temperature
    logits[..., unk] = float("-inf")  # the unknown-character symbol is for scoring, never for writing
    if 0 < top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(
    model: CharLSTM,
    vocab: Vocab,
    primes: list[str],
    max_len: int = 200,
    temperature: float = 1.0,
    top_k: int = 0,
    generator: torch.Generator | None = None,
) -> list[str]:
    """One line per prime; each line is its prime followed by sampled characters, at most `max_len` in all."""
    check_primes(primes, vocab)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    width = max(len(p) for p in primes)
    prime_ids = torch.full((len(primes), width), vocab.eol, dtype=torch.long)
    for row, prime in enumerate(primes):
        prime_ids[row, : len(prime)] = torch.tensor(vocab.encode(prime))
    prime_ids = prime_ids.to(device)
    prime_lens = torch.tensor([len(p) for p in primes], device=device)

    # Read the part every prime has in one call, then go one character at a time.
    shortest = min(len(p) for p in primes)
    logits, state = model(prime_ids[:, :shortest])
    logits = logits[:, -1]
    out = [prime_ids[:, t] for t in range(shortest)]
    done = torch.zeros(len(primes), dtype=torch.bool, device=device)
    for t in range(shortest, max(max_len, width)):
        drawn = pick_next(logits, temperature, top_k, generator)
        # longer primes are still being read
        token = torch.where(t < prime_lens, prime_ids[:, t], drawn) if t < width else drawn
        token = token.masked_fill(done, vocab.eol)
        done |= token == vocab.eol
        out.append(token)
        if (t + 1) % CHECK_DONE_EVERY == 0 and bool(done.all()):
            break
        logits, state = model.step(token, state)
    model.train(was_training)
    rows = torch.stack(out, dim=1).tolist()
    lines = []
    for row in rows:
        end = row.index(vocab.eol) if vocab.eol in row else len(row)
        lines.append(vocab.decode(row[:end]))
    return lines
