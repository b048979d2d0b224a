"""Rendering a page only when what it is made from changed.

A page's fingerprint is a digest of its inputs (the templates it is rendered with, the
organisation, the items it shows); the build remembers, per page, that fingerprint and a
digest of the bytes it wrote (a BuildState: the store's publish_state). A page is rendered
again when its fingerprint differs, or when its file no longer holds those bytes: deleted,
edited by hand, or overwritten by another build that raced this one (the web after a save
and the daemon's feed build both write posts/), so a lost race never leaves a stale page.
Without a BuildState every page is rendered (the change-only writer still keeps the bytes
and mtime of an unchanged file).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, meta

from publisher.publish.state import BuildState
from publisher.publish.writer import BackgroundWriter

# Part of every fingerprint: bump it when code changes what a page is rendered from.
FORMAT_VERSION = "1"


def digest(*parts: str) -> str:
    raw = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def json_digest(value: Any) -> str:
    return digest(json.dumps(value, sort_keys=True, default=str))


def bytes_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def template_digest(env: Environment, name: str) -> str:
    """The sources of template `name` and of every template it includes, extends or
    imports, as the environment's search path finds them (so a local copy that overrides
    a built-in one counts); every template's when one is named by an expression."""
    names, seen, sources = [name], set(), []
    while names:
        current = names.pop()
        if current in seen:
            continue
        seen.add(current)
        source = _source(env, current)
        sources += [current, source]
        found = list(meta.find_referenced_templates(env.parse(source)))
        if None in found:  # a name computed while rendering: any template may be used
            every = sorted(env.list_templates())
            return digest(FORMAT_VERSION, *(_source(env, n) for n in every))
        names += [str(n) for n in found]
    return digest(FORMAT_VERSION, *sources)


def _source(env: Environment, name: str) -> str:
    assert env.loader is not None  # template_environment always gives one
    return env.loader.get_source(env, name)[0]


class PageMemory:
    """Which pages of a folder need rendering, and what this build wrote (`save`)."""

    def __init__(self, folder: Path, state: BuildState | None) -> None:
        self.folder, self.state = folder, state
        loaded = state.load() if state is not None else {}
        pages = loaded.get("pages") if isinstance(loaded, dict) else None
        self.old: dict[str, list[str]] = {
            key: value
            for key, value in (pages.items() if isinstance(pages, dict) else ())
            if isinstance(key, str)
            and isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, str) for v in value)
        }  # an edited state is believed only as far as its shape (keys are never paths)
        self.new: dict[str, list[str]] = {}
        self.rendered = self.skipped = 0

    def fresh(self, relpath: str, fingerprint: str) -> bool:
        """True when the last build rendered this page from the same inputs and its file
        still holds the bytes written then: no need to render it."""
        remembered = self.old.get(relpath)
        if remembered is None or remembered[0] != fingerprint:
            return False
        try:
            data = (self.folder / relpath).read_bytes()
        except OSError:
            return False
        if bytes_digest(data) != remembered[1]:
            return False
        self.new[relpath] = remembered
        self.skipped += 1
        return True

    def write(self, writer: BackgroundWriter, relpath: str, fingerprint: str, text: str) -> None:
        """Hand a page just rendered to the writer, and remember what it was made from."""
        data = text.encode("utf-8")
        self.new[relpath] = [fingerprint, bytes_digest(data)]
        self.rendered += 1
        writer.submit(relpath, data)

    def save(self) -> None:
        if self.state is not None:
            self.state.save({"pages": self.new})
