"""Where to look next: a swept parameter whose best value sits at the edge of the values tried.

A sweep whose best run used its largest (or smallest) value of a parameter never bracketed the
optimum (E2's lr grid did exactly that), so the report says so, with the next value to try:
one more step of the same spacing (on the log scale for log-spaced values such as learning rates).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from charexp.numbers import finite
from charexp.report.plots import use_log_x
from charexp.summary_view import param_text

MAX_RATIO = 10.0  # a log step of at most a decade: two far-apart values are no grid to continue
# a suggestion is rounded to one significant figure when that moves it less than this (0.00333 -> 0.003)
NICE_TOLERANCE = 0.15


def is_numeric(values: Iterable[Any]) -> bool:
    """Every value a real number (bools and strings are categories)."""
    return all(finite(v) for v in values)


def log_spaced(name: str, values: Sequence[float]) -> bool:
    """Positive values whose steps are more even on the log scale than on the linear one; with two values,
    the plots' rule (a learning rate, or a span of more than a decade)."""
    distinct = np.unique(np.asarray(values, dtype=float))
    if len(distinct) < 2 or distinct[0] <= 0:
        return False
    if len(distinct) == 2:
        return use_log_x(name, list(distinct))

    def spread(steps: np.ndarray) -> float:  # coefficient of variation of the steps: 0 for an even grid
        return float(np.std(steps) / np.mean(steps))

    return spread(np.diff(np.log(distinct))) < spread(np.diff(distinct))


def nice(value: float) -> float:
    """One significant figure when close enough (a person's next grid value), else two."""
    if value == 0:
        return 0.0
    rounded = float(f"{value:.1g}")
    return rounded if abs(rounded - value) <= NICE_TOLERANCE * abs(value) else float(f"{value:.2g}")


def next_value(name: str, values: Sequence[float], upward: bool) -> float | None:
    """One more step beyond the largest (upward) or smallest value, with the values' mean spacing;
    None when there is nowhere to go (a non-negative parameter already at 0, an integer already at 1).
    A non-negative parameter whose step would reach 0 or below is halved instead (dropout 0.1 -> 0.05)."""
    distinct = np.unique(np.asarray(values, dtype=float))
    edge = distinct[-1] if upward else distinct[0]
    integers = all(isinstance(v, int) for v in values)
    if log_spaced(name, values):
        ratio = min((distinct[-1] / distinct[0]) ** (1 / (len(distinct) - 1)), MAX_RATIO)  # the geometric mean step
        candidate = edge * ratio if upward else edge / ratio
    else:
        step = (distinct[-1] - distinct[0]) / (len(distinct) - 1)
        candidate = edge + step if upward else edge - step
        if abs(candidate) < 1e-9 * step:  # 0.1 - 0.1 in floats
            candidate = 0.0
        if not upward and distinct[0] >= 0 and candidate <= 0:  # a non-negative parameter: halve towards 0 instead
            candidate = edge / 2
    if integers:
        result = float(round(candidate))
        if result == edge:
            result = edge + 1 if upward else edge - 1
        return None if not upward and distinct[0] >= 0 and result <= 0 else result
    if edge == 0 or candidate == edge:
        return None
    return nice(float(candidate))


def edge_note(name: str, tried: Sequence[Any], best: Sequence[Any]) -> str | None:
    """One line when every best run's value of `name` is the largest (or the smallest) value tried, else None.

    `tried` holds the parameter's value in every run that was tried, `best` its value in the best run
    (several when runs tie on the metric: they must all sit at the same edge). Categorical parameters
    (anything but numbers) and parameters tried at a single value say nothing."""
    if not tried or not best or not is_numeric(tried) or not is_numeric(best):
        return None
    low, high = min(tried), max(tried)
    if low == high:
        return None
    if all(v == high for v in best):
        upward, where = True, "largest"
    elif all(v == low for v in best):
        upward, where = False, "smallest"
    else:
        return None
    value = best[0]
    suggestion = next_value(name, list(tried), upward)
    if suggestion is None:
        return None
    shown = int(suggestion) if all(isinstance(v, int) for v in tried) else suggestion
    return (f"{name}: the best run's {param_text(value)} is the {where} value tried; "
            f"extend the range {'upward' if upward else 'downward'} (e.g. {param_text(shown)})")


def edge_notes(runs: Iterable[tuple[Mapping[str, Any], float | None]], params: Sequence[str], goal: str) -> list[str]:
    """Edge lines for every swept parameter, from (params, metric) of each run tried (metric None: no result)."""
    runs = list(runs)
    scored = [(p, m) for p, m in runs if finite(m)]
    if not scored:
        return []
    best_metric = (max if goal == "maximize" else min)(m for _, m in scored)
    best = [p for p, m in scored if m == best_metric]
    notes = []
    for name in params:
        tried = [p[name] for p, _ in runs if name in p]
        note = edge_note(name, tried, [p.get(name) for p in best])
        if note:
            notes.append(note)
    return notes


def print_edges(console: Any, notes: Sequence[str]) -> None:
    """The edge lines on a rich console, one each (escaped: a parameter name is no markup)."""
    from rich.markup import escape

    for note in notes:
        console.print(f"[yellow]{escape(note)}[/yellow]", highlight=False)


def edges_markdown(notes: Sequence[str], params: Sequence[str]) -> str:
    """runs.md's "Where to look next" section."""
    lines = ["## Where to look next", ""]
    if notes:
        lines += [f"- {note}" for note in notes]
    elif params:
        lines.append("No swept parameter's best value is at an edge of the values tried "
                     "(categorical ones are not judged).")
    else:
        lines.append("This sweep varied no parameter.")
    return "\n".join(lines) + "\n"
