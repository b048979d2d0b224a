"""YAML and JSON loading with bounds: nesting depth, alias use and expanded size.

Input nested thousands deep would overflow the parser's recursion (or ours, later), and a
small YAML "billion laughs" (aliases of aliases) expands to gigabytes as soon as anything
walks it. Both are refused before anything is built, in well under a second, with the line (and for
YAML the key path) where the limit was crossed. The configuration loader and every content
source use these same functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

MAX_DEPTH = 32  # mappings/lists inside each other (schedules.yaml itself needs 6)
MAX_NODES = 50_000  # values in a document once every alias is expanded
FRONT_MATTER_NODES = 20_000  # a Markdown file's front matter needs a few dozen

KeyPath = list[str | int]


class LimitError(ValueError):
    """A document crossed one of the bounds; `line` is 1-based when known, `path` the keys
    and list indexes above the place (for a configuration error's key)."""

    def __init__(self, message: str, line: int | None = None, path: KeyPath | None = None):
        super().__init__(message)
        self.line = line
        self.path = path or []


@dataclass
class _Frame:
    """One open mapping or sequence: its anchor, its expanded size, where we are in it."""

    mapping: bool
    anchor: str | None
    size: int = 1
    index: int = -1
    key: str | int | None = None
    expect_key: bool = True

    def enter_child(self, event: yaml.Event) -> None:
        """Note which key or index the next value sits under (for the error message)."""
        if not self.mapping:
            self.index += 1
            self.key = self.index
        elif self.expect_key:
            self.key = event.value if isinstance(event, yaml.ScalarEvent) else "?"
        self.expect_key = not self.expect_key if self.mapping else True


@dataclass
class _Limits:
    max_depth: int
    max_nodes: int
    stack: list[_Frame] = field(default_factory=list)
    anchors: dict[str, int] = field(default_factory=dict)
    total: int = 0

    def fail(self, message: str, event: yaml.Event) -> LimitError:
        path: KeyPath = [f.key for f in self.stack if f.key is not None]
        line = event.start_mark.line + 1 if event.start_mark else None
        return LimitError(message, line, path)

    def add(self, size: int, event: yaml.Event) -> None:
        target = self.stack[-1] if self.stack else None
        if target is None:
            self.total += size
        else:
            target.size += size
        if (target.size if target else self.total) > self.max_nodes:
            raise self.fail(
                f"the document expands to more than {self.max_nodes:,} values "
                "(aliases referring to aliases?); refusing to read it",
                event,
            )

    def feed(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.NodeEvent) and self.stack:
            self.stack[-1].enter_child(event)
        if isinstance(event, yaml.CollectionStartEvent):
            if len(self.stack) >= self.max_depth:
                raise self.fail(f"nested more than {self.max_depth} levels deep", event)
            mapping = isinstance(event, yaml.MappingStartEvent)
            self.stack.append(_Frame(mapping=mapping, anchor=event.anchor))
        elif isinstance(event, yaml.CollectionEndEvent):
            frame = self.stack.pop()
            if frame.anchor:
                self.anchors[frame.anchor] = frame.size
            self.add(frame.size, event)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                self.anchors[event.anchor] = 1
            self.add(1, event)
        elif isinstance(event, yaml.AliasEvent):
            self.add(self.anchors.get(event.anchor or "", 1), event)


def check_yaml_limits(text: str, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> None:
    """Raise LimitError for YAML nested deeper than `max_depth` or that expands to more than
    `max_nodes` values. This reads the parser's event stream (flat, no recursion, no objects
    built) and weighs every anchor once, so it is fast whatever the input. Syntax errors are
    left to the real load, which reports them with their line."""
    limits = _Limits(max_depth, max_nodes)
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            limits.feed(event)
    except yaml.YAMLError:
        return


def load_yaml(text: str, *, max_nodes: int = FRONT_MATTER_NODES) -> Any:
    """yaml.safe_load with the bounds above; raises LimitError or yaml.YAMLError."""
    check_yaml_limits(text, max_nodes=max_nodes)
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise LimitError(f"nested more than {MAX_DEPTH} levels deep") from None


def load_json(data: str | bytes) -> Any:
    """json.loads, refusing documents nested more than MAX_DEPTH levels deep; raises
    LimitError or ValueError (json.JSONDecodeError, UnicodeDecodeError)."""
    try:
        doc = json.loads(data)
    except RecursionError:
        raise LimitError(f"nested more than {MAX_DEPTH} levels deep") from None
    check_depth(doc)
    return doc


def check_depth(doc: object) -> None:
    stack: list[tuple[object, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: list[object] = list(value.values())
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            raise LimitError(f"nested more than {MAX_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in children)
