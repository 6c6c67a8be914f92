"""The figures of one run's report: train and test loss together and apart, accuracy, and the learning rate.

Each `*_figure` builds a matplotlib Figure from the run's logged rows (so tests can read its lines and ticks);
`write_figures` saves them all as PNGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from charexp.report.plots import LN2, finish, new_figure, readable_log_ticks, save, scale_to_training, series, smooth

if TYPE_CHECKING:
    from charexp.report.run import RunData

SMOOTH_FROM = 200  # train/loss points; beyond, the raw curve is faint and a moving average (over ~1/40 of it) is drawn
LOSS_AXIS = "loss (nats per char)"


def draw_train_loss(ax: Any, history: list[dict[str, Any]]) -> bool:
    xs, ys = series(history, "train/loss")
    if xs:
        noisy = len(xs) >= SMOOTH_FROM  # fewer points are plotted as they are: smoothing would lag behind them
        ax.plot(xs, ys, color="tab:blue", alpha=0.35 if noisy else 1.0, linewidth=1, label="train/loss")
        if noisy:
            ax.plot(xs, smooth(ys, weight=1 - 40 / len(xs)), color="tab:blue", linewidth=1.8,
                    label="train/loss (smoothed)")
    return bool(xs)


def draw_test_loss(ax: Any, data: RunData) -> bool:
    xs, ys = series(data.history, "test/loss")
    if xs:
        ax.plot(xs, ys, color="tab:orange", marker="o", markersize=4, label="test/loss")
        best = data.best
        if best and isinstance(best.get("step"), (int, float)):
            ax.plot([best["step"]], [best["test/loss"]], marker="*", markersize=14, color="tab:red", linestyle="none",
                    label=f"best {best['test/loss']:.4f} ({best['test/loss'] / LN2:.3f} bpc)")
    return bool(xs)


def loss_figure(data: RunData) -> Any:
    """train/loss and test/loss on one axis: the gap between them is what overfitting looks like."""
    fig, ax = new_figure(f"train and test loss — run {data.run_id}", "step", LOSS_AXIS)
    drawn_train = draw_train_loss(ax, data.history)
    drawn_test = draw_test_loss(ax, data)
    if drawn_test:
        scale_to_training(ax, [series(data.history, "test/loss"), series(data.history, "train/loss")])
    finish(ax, drawn_train or drawn_test, "loss", data.history, bpc=True)
    return fig


def train_loss_figure(data: RunData) -> Any:
    fig, ax = new_figure(f"train loss — run {data.run_id}", "step", "train/loss (nats per char)")
    finish(ax, draw_train_loss(ax, data.history), "train/loss", data.history, bpc=True)
    return fig


def eval_loss_figure(data: RunData) -> Any:
    fig, ax = new_figure(f"test loss — run {data.run_id}", "step", "test/loss (nats per char)")
    drawn = draw_test_loss(ax, data)
    if drawn:
        scale_to_training(ax, [series(data.history, "test/loss")])
    finish(ax, drawn, "test/loss", data.history, bpc=True)
    return fig


def accuracy_figure(data: RunData) -> Any:
    fig, ax = new_figure(f"next-character accuracy on the test split — run {data.run_id}", "step", "accuracy")
    drawn = False
    curves = (("test/acc_argmax", "argmax", "tab:green"), ("test/acc_sampled", "sampled", "tab:purple"))
    for key, label, color in curves:
        xs, ys = series(data.history, key)
        if xs:
            ax.plot(xs, ys, marker="o", markersize=4, color=color, label=f"{label} ({key})")
            drawn = True
    finish(ax, drawn, "test accuracy", data.history, bpc=False)
    return fig


def lr_figure(data: RunData) -> Any:
    """The rate of every logged step (warmup, schedule, rejections' cuts); a log axis once it spans a decade."""
    from matplotlib.ticker import FuncFormatter

    schedule = data.config.get("lr_schedule")
    title = f"learning rate — run {data.run_id}" + (f" ({schedule})" if isinstance(schedule, str) else "")
    fig, ax = new_figure(title, "step", "learning rate (lr)")
    fig.subplots_adjust(left=0.13)  # room for tick labels such as 0.0025
    xs, ys = series(data.history, "lr")
    if xs:
        # steps-post: a logged rate holds from its step until the next logged one
        ax.plot(xs, ys, color="tab:brown", linewidth=1.5, drawstyle="steps-post", label="lr")
        if min(ys) > 0 and max(ys) / min(ys) > 10:
            ax.set_yscale("log")
            readable_log_ticks(ax.yaxis, ys)
        else:
            ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    finish(ax, bool(xs), "lr", data.history, bpc=False)
    return fig


FIGURES: dict[str, Callable[[RunData], Any]] = {
    "loss.png": loss_figure, "lr.png": lr_figure, "train_loss.png": train_loss_figure,
    "test_loss.png": eval_loss_figure, "accuracy.png": accuracy_figure,
}


def write_figures(data: RunData, out: Path) -> list[Path]:
    return [save(build(data), out / name) for name, build in FIGURES.items()]
