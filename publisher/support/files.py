"""The one atomic file writer: feeds, the edition archive and the outbox all write with it.

A file is written to a temporary file with an unpredictable name (tempfile) in the
destination folder, flushed to disk (fsync), then renamed over the destination, so a reader
never sees half a file and nobody can plant a file or symlink where the temporary one will
be. A file that already holds exactly these bytes is left alone (its mtime, and a web
server's ETag and Last-Modified, stay as they were).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PUBLIC = 0o644  # feeds and archive pages are served by a web server
PRIVATE = 0o600  # outbox messages carry subscribers' addresses and tokens


def write_atomic(path: Path, data: bytes, *, mode: int = PUBLIC) -> bool:
    """Replace path with data unless it already holds exactly these bytes; True if written.

    Raises OSError (the caller knows what the file is and says so)."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)  # mkstemp creates 0600
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True
