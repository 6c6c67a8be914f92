"""Test-only fault injection for a subprocess: kill, signal or fail at an exact call of a named function.

Imported only by tests/faults/train_with_faults.py (a test program that then runs charexp's train.py
unchanged); nothing in charexp knows about it. $CHAREXP_FAULTS holds a JSON list of faults:

    {"target": "charexp.train.trainer:Trainer.train_step",  # module:attribute path, patched in place
     "call": 15,                 # the 1-based call (of the calls that match `path`) at which to act
     "from_call": false,         # act at that call and every later one (a disk that stays full)
     "when": "before",           # act before the real call, or "after" it returned
     "action": "kill",           # kill (SIGKILL) | sigterm | sigint | enospc | eacces | truncate_kill | nan_weights
                                 # | sleep | pause
     "path": "index\\.json$",     # only count calls with an argument (str or path) that this regex matches
     "seconds": 0.2}             # for sleep; for pause, the longest wait (default 120)

`pause` holds the process where it is until the file $CHAREXP_FAULT_LOG.release appears: the test then
delivers a real signal with os.kill from outside, while the process is inside that call, and releases it.

Each time a fault acts it first appends a line to $CHAREXP_FAULT_LOG (flushed and fsynced), so a
test can tell that the process died exactly where it was meant to, not somewhere else.
"""

from __future__ import annotations

import errno
import functools
import importlib
import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any


def _note(text: str) -> None:
    log = os.environ.get("CHAREXP_FAULT_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())


def _paths(args: tuple, kwargs: dict) -> list[str]:
    return [os.fspath(a) for a in (*args, *kwargs.values()) if isinstance(a, (str, os.PathLike))]


def _resolve(target: str) -> tuple[Any, str]:
    module_name, _, attr_path = target.partition(":")
    owner: Any = importlib.import_module(module_name)
    *parents, name = attr_path.split(".")
    for part in parents:
        owner = getattr(owner, part)
    return owner, name


def _act(fault: dict[str, Any], args: tuple, kwargs: dict, count: int) -> None:
    action = fault["action"]
    paths = [p for p in _paths(args, kwargs) if not fault.get("path") or re.search(fault["path"], p)]
    _note(f"{action} {fault['when']} {fault['target']} call {count} {' '.join(paths)}".rstrip())
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action in ("sigterm", "sigint"):
        os.kill(os.getpid(), signal.SIGTERM if action == "sigterm" else signal.SIGINT)
    elif action in ("enospc", "eacces"):
        code = errno.ENOSPC if action == "enospc" else errno.EACCES
        raise OSError(code, os.strerror(code), paths[-1] if paths else None)
    elif action == "truncate_kill":  # the file being written is only half there when the process dies
        path = Path(next(p for p in paths if Path(p).is_file()))
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "nan_weights":  # args[0] is the Trainer: its weights become NaN, as after a real blow-up
        import torch

        with torch.no_grad():
            for param in args[0].model.parameters():
                param.fill_(float("nan"))
    elif action == "sleep":
        time.sleep(float(fault.get("seconds", 0.1)))
    elif action == "pause":  # a signal handler runs between these short sleeps, inside the paused call
        release = Path(os.environ["CHAREXP_FAULT_LOG"] + ".release")
        deadline = time.monotonic() + float(fault.get("seconds", 120))
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    else:
        raise ValueError(f"unknown fault action {action!r}")


def install(fault: dict[str, Any]) -> None:
    owner, name = _resolve(fault["target"])
    real = getattr(owner, name)
    calls = [0]
    when, pattern = fault.get("when", "before"), fault.get("path")

    @functools.wraps(real)
    def wrapper(*args, **kwargs):
        if pattern is not None and not any(re.search(pattern, p) for p in _paths(args, kwargs)):
            return real(*args, **kwargs)
        calls[0] += 1
        hit = calls[0] >= fault["call"] if fault.get("from_call") else calls[0] == fault["call"]
        if hit and when == "before":
            _act(fault, args, kwargs, calls[0])
        result = real(*args, **kwargs)
        if hit and when == "after":
            _act(fault, args, kwargs, calls[0])
        return result

    setattr(owner, name, wrapper)


def install_from_env() -> None:
    # Import the whole program first: a module-level function is then patched only where it is looked up
    # in its own module (charexp.train.evaluate's masked_loss_sum for the evaluator), not where another module
    # bound the name with `from ... import` (the trainer's copy stays the real one).
    importlib.import_module("charexp.train.main")
    for fault in json.loads(os.environ.get("CHAREXP_FAULTS") or "[]"):
        install(fault)
