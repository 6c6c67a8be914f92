"""Shared ground of the property tests (hypothesis) of every parser of outside input.

The default profile keeps `make test` fast; CHAREXP_HYPOTHESIS_PROFILE=long runs ten times the examples once.
No example database: tests run in a fresh directory each (conftest), and a failure's minimal example is kept
in the test as an explicit @example instead. Function-scoped fixtures are not reset between examples, so every
example that writes does so in its own `scratch()` directory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from charexp.errors import CharexpError

settings.register_profile("charexp", max_examples=100, deadline=None, database=None, print_blob=False,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])
settings.register_profile("long", parent=settings.get_profile("charexp"), max_examples=1000)
settings.load_profile(os.environ.get("CHAREXP_HYPOTHESIS_PROFILE", "charexp"))


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A directory of one's own for one example."""
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def one_sentence(err: BaseException) -> str:
    """The message of a CharexpError as users see it: present, on one line, of a readable length."""
    message = str(err)
    assert message and "\n" not in message and "\r" not in message, repr(message)
    assert len(message) < 1500, f"{len(message)} characters: {message[:300]}"
    return message


def parsed_or_refused(parse: Callable[[], Any]) -> Any:
    """parse()'s result, or None when it refused in one sentence; anything else (a traceback) fails the test."""
    try:
        return parse()
    except CharexpError as err:
        one_sentence(err)
        return None


@st.composite
def damaged(draw: st.DrawFn, data: bytes, max_edits: int = 4) -> bytes:
    """`data` after a few edits of the kinds real damage makes: bit flips, truncation, overwritten, zeroed,
    inserted and deleted runs of bytes."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, max_edits))):
        how = draw(st.sampled_from(["flip", "truncate", "overwrite", "zero", "insert", "delete"]))
        at = draw(st.integers(0, max(len(buf) - 1, 0)))
        if how == "flip" and buf:
            buf[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "truncate":
            del buf[at:]
        elif how in ("overwrite", "insert"):
            chunk = draw(st.binary(min_size=1, max_size=24))
            buf[at:at + (len(chunk) if how == "overwrite" else 0)] = chunk
        elif how == "zero":
            size = draw(st.integers(1, 64))
            buf[at:at + size] = bytes(len(buf[at:at + size]))
        elif how == "delete":
            del buf[at:at + draw(st.integers(1, 24))]
    return bytes(buf)


def floats(*args: float, **kwargs: Any) -> st.SearchStrategy[float]:
    """st.floats without subnormals: training turns on flush-to-zero for the whole process (set_flush_denormal),
    after which hypothesis refuses to draw them."""
    return st.floats(*args, allow_subnormal=False, **kwargs)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any value a JSON or YAML file can hold (non-finite floats included: Python's json writes them)."""
    scalars = st.none() | st.booleans() | st.integers() | floats() | st.text(max_size=20)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=max_leaves)
