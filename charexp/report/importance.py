"""Per-parameter correlation and importance with the sweep's metric, as W&B's parameter-importance panel.

W&B documents its panel as the linear correlation of each hyperparameter with the metric plus the
feature importance of a random forest trained on the hyperparameters; its settings are not published,
so this follows Optuna's open-source counterpart: scikit-learn's RandomForestRegressor with 64 trees of
depth up to 64, categorical parameters one-hot encoded and their columns' importances summed back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from charexp.numbers import finite
from charexp.report.plots import spans_decades

MIN_RUNS = 3  # below this a correlation or a forest says nothing
FOREST = {"n_estimators": 64, "max_depth": 64, "random_state": 0, "n_jobs": 1}


@dataclass(frozen=True)
class ParamImportance:
    name: str
    importance: float  # the forest's share (all rows sum to 1 unless the forest never split)
    correlation: float | None  # Pearson r with the metric; None for a categorical or a constant parameter
    scale: str  # "linear", "log10" (correlated on log10 of the values), "category" or "constant"


@dataclass
class Importance:
    metric: str
    runs: int  # runs the table was fitted on: those with the metric and every swept parameter
    rows: list[ParamImportance] = field(default_factory=list)
    note: str = ""  # why there is no table, when there is none


def encode(values: list[Any]) -> tuple[np.ndarray, str]:
    """A parameter's feature columns and scale: one number column (log10 when it spans two decades), or one-hot
    categories."""
    if all(finite(v) or isinstance(v, bool) for v in values):
        column = np.asarray(values, dtype=float)
        if len(np.unique(column)) == 1:
            return column[:, None], "constant"
        scale = "log10" if spans_decades(list(column)) else "linear"
        return (np.log10(column) if scale == "log10" else column)[:, None], scale
    from sklearn.preprocessing import OneHotEncoder

    labels = np.asarray([repr(v) if not isinstance(v, str) else v for v in values], dtype=object)[:, None]
    scale = "constant" if len(np.unique(labels)) == 1 else "category"
    return OneHotEncoder(sparse_output=False).fit_transform(labels), scale


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    from scipy.stats import pearsonr

    if np.ptp(x) == 0 or np.ptp(y) == 0:  # undefined (scipy warns and returns nan)
        return None
    return float(pearsonr(x, y).statistic)


def param_importance(runs: Sequence[tuple[Mapping[str, Any], float | None]], params: Sequence[str],
                     metric: str) -> Importance:
    """Correlation and forest importance of each swept parameter, from (params, metric) of each run.

    Runs without a finite metric, or without a value for every swept parameter, are left out."""
    rows = [(p, float(m)) for p, m in runs if finite(m) and all(p.get(name) is not None for name in params)]
    result = Importance(metric, len(rows))
    if not params:
        result.note = "this sweep varied no parameter"
        return result
    if len(rows) < MIN_RUNS:
        result.note = f"it needs at least {MIN_RUNS} runs with {metric}; this sweep has {len(rows)}"
        return result
    y = np.asarray([m for _, m in rows])
    if np.ptp(y) == 0:
        result.note = f"every run has the same {metric}, so nothing explains it"
        return result
    columns = [encode([p[name] for p, _ in rows]) for name in params]
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestRegressor(**FOREST).fit(np.hstack([c for c, _ in columns]), y)
    shares = np.split(forest.feature_importances_, np.cumsum([c.shape[1] for c, _ in columns])[:-1])
    for name, (column, scale), share in zip(params, columns, shares):
        correlation = pearson(column[:, 0], y) if scale in ("linear", "log10") else None
        result.rows.append(ParamImportance(name, float(share.sum()), correlation, scale))
    result.rows.sort(key=lambda r: (-r.importance, r.name))
    return result


def _cells(row: ParamImportance) -> tuple[str, str, str]:
    name = f"{row.name} (log10)" if row.scale == "log10" else row.name
    if row.correlation is not None:
        correlation = f"{row.correlation:+.2f}"
    else:
        correlation = {"constant": "- (constant)", "category": "- (categorical)"}.get(row.scale, "-")
    return name, correlation, f"{row.importance:.2f}"


def importance_markdown(result: Importance) -> str:
    """runs.md's "Parameter importance" section: the table, or the sentence saying why there is none."""
    lines = ["## Parameter importance", ""]
    if not result.rows:
        return "\n".join(lines + [f"No importance table: {result.note}."]) + "\n"
    lines += [f"As W&B's parameter-importance panel, from the {result.runs} runs with {result.metric}: *correlation* "
              "is the linear (Pearson) correlation of the parameter with the metric (of its log10 when its values span "
              "two decades or more); *importance* is its share of the feature importance of a random forest trained on "
              "the swept parameters to predict the metric (scikit-learn, 64 trees, random_state 0). With few runs both "
              "are rough.",
              "", f"| parameter | correlation with {result.metric} | importance |", "|---|---:|---:|"]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in result.rows]
    return "\n".join(lines) + "\n"


def importance_table(result: Importance) -> Any:
    """The same table for the console (a rich Table), or the sentence when there is none."""
    from rich.table import Table

    if not result.rows:
        return f"no parameter-importance table: {result.note}"
    table = Table(title=f"parameter importance for {result.metric} "
                        f"({result.runs} runs; random forest + Pearson, as W&B's panel)")
    table.add_column("parameter")
    table.add_column(f"correlation with {result.metric}", justify="right")
    table.add_column("importance", justify="right")
    for row in result.rows:
        table.add_row(*_cells(row))
    return table
