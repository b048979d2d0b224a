"""What a feed build remembers between builds, and how much of it is believed.

The memory (page fingerprints, the dates empty feeds carry, pings a hub missed) lives where
the caller keeps it (the store: store.feeds_queries.StoredBuildState), never in the published
folder. Read back, it is checked against the shape a build writes (`checked`) before any key
is used as a path: an edited state can never name a file outside feeds/.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Protocol

# Where older versions kept the build state, inside the published folder: removed on sight.
LEGACY_STATE_FILE = ".publisher-feeds-state.json"
# The only document keys a build writes: "<feed path>.{ext}" or "<path>/archive/<n>.{ext}".
_KEY = re.compile(r"[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*(/archive/[1-9][0-9]*)?\.\{ext\}")


class BuildState(Protocol):
    """Where a build's memory lives between builds."""

    def load(self) -> dict: ...

    def save(self, state: dict) -> None: ...


@dataclass
class MemoryState:
    """A BuildState in memory (tests, benchmarks, one-off builds)."""

    data: dict = field(default_factory=dict)

    def load(self) -> dict:
        return copy.deepcopy(self.data)

    def save(self, state: dict) -> None:
        self.data = copy.deepcopy(state)


def checked(state: object) -> dict:
    """The state of the last build with anything this module would not have written
    dropped: document keys must look like "<feed path>[/archive/<n>].{ext}" (no "..", no
    absolute paths), fingerprints and dates must be strings."""
    state = state if isinstance(state, dict) else {}
    documents = state.get("documents")
    documents = documents if isinstance(documents, dict) else {}
    empty_since = state.get("empty_since")
    unpinged = state.get("unpinged")
    return {
        "documents": {
            key: value
            for key, value in documents.items()
            if isinstance(key, str) and _KEY.fullmatch(key) and isinstance(value, str)
        },
        "empty_since": {
            name: stamp
            for name, stamp in (empty_since.items() if isinstance(empty_since, dict) else ())
            if isinstance(name, str) and isinstance(stamp, str)
        },
        "inputs": state.get("inputs") if isinstance(state.get("inputs"), str) else None,
        "unpinged": [u for u in unpinged if isinstance(u, str)]
        if isinstance(unpinged, list)
        else [],
    }
