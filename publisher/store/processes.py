"""Who holds a claim in the store: a process named `host:pid` (a daemon's slot claim) or
`host:pid:random` (a sending process's batch leases), and whether such a holder is a process
of this host that no longer exists (its claims need not wait out their lease)."""

from __future__ import annotations

import os
import secrets
import socket

__all__ = ["gone", "new_holder", "this_process"]


def this_process() -> str:
    """A daemon's name in its slot claims: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def new_holder() -> str:
    """A sending process's name in its batch leases: host, pid and a random part (unique
    even when a pid is reused)."""
    return f"{this_process()}:{secrets.token_hex(4)}"


def gone(owner: str | None) -> bool:
    """`owner` names a process of this host that no longer exists."""
    host, _, rest = (owner or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False
