"""Input that someone else wrote: YAML (config files, sweep files, a sweep agent's parameter file) read safely,
and values quoted in a one-sentence message without letting them run to megabytes or many lines.

`yaml.safe_load` runs no code, but it is not total: a date-like scalar that is no date (`2001-13-45`), a bad
explicit tag (`!!int abc`) or deep nesting raise ValueError, AttributeError or RecursionError rather than
YAMLError, and aliases can describe a structure far larger than the file (a "billion laughs") that anything
walking the result (validation, JSON, a message quoting it) would expand. Both are "not valid YAML" here.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_NODES = 100_000  # far above any real config or sweep; a walk over the loaded value stops here


class BadYaml(Exception):
    """The text is not usable YAML; `line` is 1-based when the parser knows it."""

    def __init__(self, line: int | None):
        super().__init__(f"not valid YAML (line {line})" if line else "not valid YAML")
        self.line = line


def load_yaml(text: str) -> Any:
    """`yaml.safe_load(text)`, with every failure of the parser, and a result too large to walk, as BadYaml."""
    try:
        loaded = yaml.safe_load(text)
    except Exception as err:  # YAMLError, or ValueError/AttributeError/RecursionError from a constructor
        mark = getattr(err, "problem_mark", None)
        raise BadYaml(mark.line + 1 if mark is not None else None) from None
    if _too_big(loaded):
        raise BadYaml(None)
    return loaded


def _too_big(value: Any) -> bool:
    """True when the value, aliases expanded, has more than MAX_NODES nodes (counting stops there)."""
    budget = MAX_NODES
    stack = [value]
    while stack:
        item = stack.pop()
        budget -= 1
        if budget < 0:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set)):
            stack.extend(item)
    return False


def short_repr(value: Any) -> str:
    """repr(value), bounded and on one line: a message quotes what it got, which may be huge or deeply nested."""
    import reprlib

    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = 80
    shortener.maxlevel = 3
    return shortener.repr(value)
