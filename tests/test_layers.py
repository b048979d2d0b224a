"""The import graph follows the flow (docs/architecture.md): no stage imports a later one.

sources -> store -> compose -> render -> deliver/publish; the pipeline orchestrates them,
schedule decides when, cli/ and web/ are the edges. Shared vocabulary (errors, items) and
support/ sit below everything."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "publisher"

# Each part of the tree and its rank in the flow; a module may import its own part and any
# part of a lower rank, never a higher one. Parts of the same rank do not import each other.
LAYERS: dict[str, int] = {
    "errors": 0,
    "items": 0,
    "support": 0,
    "config": 1,
    "sources": 2,
    "store": 3,
    "subscribers": 4,
    "compose": 5,
    "render": 6,
    "deliver": 7,
    "publish": 7,
    "pipeline": 8,
    "schedule": 9,
    "cli": 11,  # starts the web server (publisher serve)
    "web": 10,
}


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "publisher":
                found.update(f"publisher.{alias.name}" for alias in node.names)
            elif node.module.startswith("publisher."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("publisher."))
    return found


def test_every_part_of_the_tree_has_a_place_in_the_flow() -> None:
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()}
    parts -= {"__init__", "__pycache__", "py"}
    assert sorted(parts - set(LAYERS)) == []
    assert sorted(set(LAYERS) - parts) == []


def test_no_part_imports_a_later_one() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = part_of(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        if source == "__init__":
            continue
        for module in imports(path):
            target = part_of(module)
            if target == source or target == "__init__":
                continue
            if LAYERS[target] >= LAYERS[source]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    assert wrong == []
