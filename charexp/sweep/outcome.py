"""What the end of a sweep run's process means, per W&B's agent conventions.

Exit 0 is finished. 128 + signum (or death by a signal) is a preemption: the run saved its state
and is requeued once with the same id, unless the runner itself asked it to stop (hyperband:
"stopped"; Ctrl-C or SIGTERM to the runner: continued on --resume). Anything else failed.
"""

from __future__ import annotations

import signal

from charexp.sweep.state import RunRecord, now_iso

MAX_REQUEUES = 1  # a run preempted by someone else is relaunched once with the same id


def exit_description(code: int | None) -> str:
    if code is None:
        return "no exit code"
    num = -code if code < 0 else code - 128
    if code < 0 or code > 128:
        try:
            return f"exit {code} ({signal.Signals(num).name})"
        except ValueError:
            pass
    return f"exit {code}"


def is_signal_exit(code: int | None) -> bool:
    """128 + signum (a run that handled the signal, as W&B's docs ask) or killed by the signal."""
    if code is None:
        return False
    num = -code if code < 0 else code - 128
    return num in {s.value for s in signal.Signals}


def settle(rec: RunRecord, code: int | None, *, interrupted: bool, finished_locally: bool, metric: str) -> str:
    """Record how the run ended (state, exit code, requeue, end time); returns a line for the console.

    `code` is None when the process was not the runner's child and left no W&B exit record.
    """
    rec.exit_code, rec.pid, rec.pid_start = code, None, None
    final = True
    # hyperband judges a run by its logged metric, so its stop can land after the run's last step: it finished
    late = "; hyperband's stop came after its last step" if rec.stop_requested else ""
    if code == 0:
        rec.state, note = "finished", f"finished: {metric}{late}"
    elif code is None and finished_locally:
        rec.state, note = "finished", f"finished while the runner was away: {metric}{late}"
    elif rec.stop_requested and rec.summary.get("state") == "finished":  # train.py's own summary: done before it
        rec.state, note = "finished", f"finished: {metric}{late} ({exit_description(code)} while it was closing)"
    elif rec.stop_requested:
        rec.state, note = "stopped", f"stopped early ({exit_description(code)}): {metric}"
    elif code is None:
        rec.state, rec.requeue, final = "preempted", True, False
        note = "ended without an exit record (killed with the runner); relaunching it with the same id"
    elif is_signal_exit(code) and interrupted:
        rec.state, rec.requeue, final = "preempted", True, False
        # 128 + signum: it handled the signal and saved; killed by it (< 0): it had not saved since its last state
        saved = "saved and stopped" if code > 0 else "stopped before it could save"
        note = f"{saved} ({exit_description(code)}); it continues on --resume"
    elif is_signal_exit(code) and rec.requeues < MAX_REQUEUES:
        rec.state, rec.requeue, final = "preempted", True, False
        rec.requeues += 1
        note = f"preempted ({exit_description(code)}); requeued with the same id"
    elif is_signal_exit(code):
        rec.state, note = "preempted", f"preempted again ({exit_description(code)}); not requeued"
    else:
        rec.state, note = "failed", f"[red]failed[/red] ({exit_description(code)})"
    if final:
        rec.ended = now_iso()
    return note
