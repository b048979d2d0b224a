"""Bounds on a YAML document before anything is built from it.

PyYAML builds nodes recursively (thousands of nested brackets exhaust the stack) and an alias
is a reference, so a few kilobytes of anchors referring to anchors ("billion laughs") stand for
billions of values once walked or validated. This pass reads the parser's event stream (flat,
no recursion, no objects built), tracks the nesting depth and what every anchor expands to, and
stops at the first event beyond a bound, naming the line and the key path above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from publisher.errors import ConfigError

MAX_DEPTH = 32  # schedules.yaml itself needs 6
MAX_NODES = 50_000  # values after expanding every alias; the sample file has a few hundred


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
    file: str
    max_depth: int
    max_nodes: int
    stack: list[_Frame] = field(default_factory=list)
    anchors: dict[str, int] = field(default_factory=dict)
    total: int = 0

    def fail(self, message: str, event: yaml.Event) -> ConfigError:
        from publisher.config.models import format_key_path

        path = [f.key for f in self.stack if f.key is not None]
        key = format_key_path(path[:8]) + ("..." if len(path) > 8 else "")
        line = event.start_mark.line + 1 if event.start_mark else None
        return ConfigError(message, file=self.file, line=line, key=key or None)

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


def check_yaml_limits(
    text: str, file: str, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES
) -> None:
    """Raise ConfigError (file, line, key) for YAML nested deeper than `max_depth` or that
    expands to more than `max_nodes` values. Syntax errors are left to the real load."""
    limits = _Limits(file, max_depth, max_nodes)
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            limits.feed(event)
    except yaml.YAMLError:
        return  # reported with its line by the load that follows
