"""Deterministic crash points for the kill-and-resume tests.

`PUBLISHER_KILL_AT=name:n` (several separated by commas) makes the process kill itself with
SIGKILL the n-th time it reaches the point `name`: a real `kill -9` at an exact moment of
a send, with nothing cleaned up. Without the variable (always, outside the tests) `reached`
is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import threading

_PLAN: dict[str, int] = {}
for _part in filter(None, os.environ.get("PUBLISHER_KILL_AT", "").split(",")):
    _name, _, _count = _part.partition(":")
    _PLAN[_name.strip()] = int(_count or 1)
_SEEN: dict[str, int] = {}
_LOCK = threading.Lock()


def reached(name: str) -> None:
    if name not in _PLAN:
        return
    with _LOCK:
        _SEEN[name] = _SEEN.get(name, 0) + 1
        if _SEEN[name] == _PLAN[name]:
            os.kill(os.getpid(), signal.SIGKILL)
