"""What `best-test-loss` means, as plain functions shared by the local store and the W&B run.

Every checkpoint version records its test set's fingerprint (`meta["test_set"]`, made by
`charexp.data.corpus.fingerprint_test_set`: corpus sha256, split, test_fraction, split_seed,
vocabulary). Only versions of the same test set compete:

- `best-test-loss-<id8>` names the version with the lowest finite test loss of test set `<id8>`
  (the first 8 hex digits of the fingerprint's id); ties keep the earlier holder;
- the bare `best-test-loss` names the best version of the newest version's test set (the test set
  the collection was last published on), so it never compares a loss with one measured on other data;
- versions written before fingerprints existed (no `test_set`) form one group of their own, "unknown
  test set": they compete only with each other and have no `best-test-loss-<id8>` alias.

`decide_best` is the decision on plain data; `charexp.tracking.online_best` wraps it in the W&B calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from charexp.numbers import finite

BEST = "best-test-loss"
ID_CHARS = 8


def fingerprint_id(meta: dict[str, Any] | None) -> str | None:
    """The fingerprint id of a version's metadata, or None for a version without one."""
    test_set = (meta or {}).get("test_set")
    value = test_set.get("id") if isinstance(test_set, dict) else None
    return value if isinstance(value, str) and value else None


def best_alias(test_set: str) -> str:
    """The alias of the best version of one test set, e.g. best-test-loss-3f2a9c1d."""
    return f"{BEST}-{test_set[:ID_CHARS]}"


def is_best_alias(alias: str) -> bool:
    return alias == BEST or alias.startswith(f"{BEST}-")


def describe_test_set(test_set: dict[str, Any] | None) -> str:
    """One human line: 'test set 3f2a9c1d (tiny.csv sha256 ab12cd34…, split episode, test_fraction 0.1,
    split_seed 0, 40 symbols)'."""
    if not isinstance(test_set, dict) or not test_set.get("id"):
        return "an unknown test set (a version written before test sets were recorded)"
    sha = str(test_set.get("corpus_sha256", ""))[:8]
    get = test_set.get
    return (f"test set {str(test_set['id'])[:ID_CHARS]} ({get('corpus', '?')} sha256 {sha}…, split {get('split')}, "
            f"test_fraction {get('test_fraction')}, split_seed {get('seed')}, "  # 'seed' is the split's
            f"{get('vocab_size')} symbols)")


@dataclass(frozen=True)
class Candidate:
    """A version as far as the decision goes: its name in the collection, loss and test set id."""

    version: str  # "v7"
    test_loss: float | None
    test_set: str | None


def decide_best(new: Candidate, holder: Candidate | None, seen: Iterable[Candidate] = ()) -> Candidate | None:
    """The version that should hold the best alias of `new`'s test set.

    `holder` holds that alias now (None: nobody); `seen` are any other versions known to exist (a
    re-check after commit lists the collection's versions, which shows a concurrent publisher).
    Only versions of `new`'s test set with a finite loss count; the lowest loss wins; on a tie the
    current holder keeps it, then the earliest-listed. None: no candidate has a finite loss.
    """
    order = [c for c in [holder, *seen, new] if c is not None]
    pool = [c for c in order if c.test_set == new.test_set and finite(c.test_loss)]
    if not pool:
        return None
    best = min(c.test_loss for c in pool)  # type: ignore[type-var]
    return next(c for c in pool if c.test_loss == best)


def best_of(entries: list[dict[str, Any]], test_set: str | None) -> dict[str, Any] | None:
    """The index entry (oldest first) with the lowest finite test loss among those of `test_set`."""
    best: dict[str, Any] | None = None
    for entry in entries:
        if fingerprint_id(entry) != test_set or not finite(entry.get("test_loss")):
            continue
        if best is None or entry["test_loss"] < best["test_loss"]:
            best = entry
    return best
