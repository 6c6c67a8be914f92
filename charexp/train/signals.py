"""SIGTERM / SIGINT become a request to stop at the next step boundary, as W&B's agent expects.

The loop then saves a resume state, the run is marked preempting, and the process exits with
128 + signum. A second Ctrl-C exits at once: every write that matters is atomic, so nothing
finished can be left half-written.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


class StopRequest:
    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or 0)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            print("\nsecond interrupt: exiting now (the last saved state is intact)", file=sys.stderr)
            os._exit(128 + signum)
        if self.signum is None:
            self.signum = signum
            name = signal.Signals(signum).name
            print(f"\n{name} received: saving a resume state at the end of this step (Ctrl-C again to exit at once)",
                  file=sys.stderr)

    def install(self) -> "StopRequest":
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
