"""YAML and JSON loading with bounds: nesting depth, alias use and expanded size.

Input nested thousands deep would overflow the parser's recursion (or ours, later), and a
small YAML "billion laughs" (aliases of aliases) expands to gigabytes as soon as anything
walks it. Both are refused while loading, in well under a second, with the line of the YAML
node where the limit was crossed.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_DEPTH = 32  # mappings/lists inside each other
MAX_ALIASES = 100  # `*name` references in one document
MAX_NODES = 20_000  # values in a document once every alias is expanded


class LimitError(ValueError):
    """A document crossed one of the bounds; `line` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class BoundedSafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader that counts: nesting depth and aliases while composing, the
    expanded size before constructing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        line = self.peek_event().start_mark.line + 1
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise LimitError(f"more than {MAX_ALIASES} aliases", line)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise LimitError(f"nested more than {MAX_DEPTH} levels deep", line)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: Node) -> Any:
        _check_expanded_size(node)
        return super().construct_document(node)


def _check_expanded_size(root: Node) -> None:
    """Count the values the document holds with aliases expanded, without expanding them
    (each distinct node is weighed once, children before parents)."""
    weight: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in weight:
            continue
        children = _children(node)
        if children_done or not children:
            weight[id(node)] = 1 + sum(weight.get(id(child), 1) for child in children)
            if weight[id(node)] > MAX_NODES:
                line = node.start_mark.line + 1 if node.start_mark else None
                raise LimitError(f"expands to more than {MAX_NODES} values (aliases)", line)
            continue
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in weight)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_yaml(text: str) -> Any:
    """yaml.safe_load with the bounds above; raises LimitError or yaml.YAMLError."""
    loader = BoundedSafeLoader(text)
    try:
        return loader.get_single_data()
    except RecursionError:
        raise LimitError(f"nested more than {MAX_DEPTH} levels deep") from None
    finally:
        loader.dispose()


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
