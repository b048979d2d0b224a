"""The store's declared surface (issue 17): every public store module lists its names in
`__all__`; nothing outside publisher/store imports sqlalchemy, an ORM row or a store name
that is not on that list, nor opens the store's sessions or engine; what the surface
returns and takes is dataclasses and plain values, never an ORM row; and the store never
imports the rules kept outside it (publisher/subscribers)."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "publisher"
STORE = PACKAGE / "store"
INTERNAL = {"publisher.store.models", "publisher.store.dialect", "publisher.store.migrations"}
ORM = re.compile(r"\b\w+Row\b|\bSession\b|\bConnection\b|\bEngine\b|\bResult\b|sqlalchemy")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def python_files(folder: Path) -> Iterator[Path]:
    yield from sorted(p for p in folder.rglob("*.py") if "migrations" not in p.parts)


def surface_modules() -> list[str]:
    return sorted(module_name(p) for p in STORE.glob("*.py") if module_name(p) not in INTERNAL)


def surface(module: str) -> set[str]:
    return set(importlib.import_module(module).__all__)


def is_store_module(name: str) -> bool:
    return name == "publisher.store" or name.startswith("publisher.store.")


def problems_of(path: Path) -> list[str]:
    return problems_in(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))


def problems_in(text: str, where: str) -> list[str]:
    """What one module outside the store does that only the store may do."""
    tree = ast.parse(text)
    found: list[str] = []
    aliases: dict[str, str] = {}  # a name bound to a store module -> that module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy":
                    found.append(f"{where}:{node.lineno}: imports {alias.name}")
                elif is_store_module(alias.name):
                    found.append(f"{where}:{node.lineno}: `import {alias.name}`; use `from`")
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            if module.split(".")[0] == "sqlalchemy":
                found.append(f"{where}:{node.lineno}: imports from {module}")
                continue
            if not is_store_module(module):
                continue
            if module in INTERNAL or any(module.startswith(m + ".") for m in INTERNAL):
                found.append(f"{where}:{node.lineno}: imports {module} (store-internal)")
                continue
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                if module == "publisher.store" and (STORE / f"{alias.name}.py").exists():
                    if sub in INTERNAL:
                        found.append(f"{where}:{node.lineno}: imports {sub} (store-internal)")
                    aliases[alias.asname or alias.name] = sub
                elif alias.name not in surface(module):
                    found.append(f"{where}:{node.lineno}: {module}.{alias.name} is not declared")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        value = node.value
        if isinstance(value, ast.Name) and value.id in aliases:
            module = aliases[value.id]
            if node.attr not in surface(module):
                found.append(f"{where}:{node.lineno}: {module}.{node.attr} is not declared")
        store_like = (isinstance(value, ast.Name) and value.id == "store") or (
            isinstance(value, ast.Attribute) and value.attr == "store"
        )
        if store_like and node.attr in ("session", "engine"):
            found.append(f"{where}:{node.lineno}: opens the store's {node.attr} itself")
    return found


def test_nothing_outside_the_store_reaches_past_its_surface():
    outside = [p for p in python_files(PACKAGE) if STORE not in p.parents]
    problems = [problem for path in outside for problem in problems_of(path)]
    assert problems == []


def test_every_store_and_rules_module_declares_its_surface():
    rules = [module_name(p) for p in (PACKAGE / "subscribers").glob("*.py")]
    for module in surface_modules() + [m for m in rules if m != "publisher.subscribers"]:
        loaded = importlib.import_module(module)
        declared = getattr(loaded, "__all__", None)
        assert declared is not None, f"{module} has no __all__"
        missing = [name for name in declared if not hasattr(loaded, name)]
        assert missing == [], f"{module}.__all__ names what it lacks: {missing}"


def annotations_of(value: object) -> list[str]:
    """The annotations (as written) of a surface function, or of a class's fields and the
    parameters and returns of its public methods."""
    if inspect.isfunction(value):
        return [str(a) for a in value.__annotations__.values()]
    if inspect.isclass(value):
        out = [str(a) for a in getattr(value, "__annotations__", {}).values()]
        for name, member in vars(value).items():
            if inspect.isfunction(member) and not name.startswith("_"):
                out += [str(a) for a in member.__annotations__.values()]
            if isinstance(member, property) and member.fget is not None:
                out += [str(a) for a in member.fget.__annotations__.values()]
        return out
    return []


@pytest.mark.parametrize("module", surface_modules())
def test_the_surface_takes_and_gives_no_orm_rows(module):
    loaded = importlib.import_module(module)
    bad = {}
    for name in loaded.__all__:
        if module == "publisher.store" and name in ("Store", "create_store_engine"):
            continue  # the connection itself: sessions and the engine, for the store's modules
        value = getattr(loaded, name)
        if inspect.isfunction(value) and "return" not in value.__annotations__:
            bad[name] = "no return annotation"
        mentions = [a for a in annotations_of(value) if ORM.search(a)]
        if mentions:
            bad[name] = ", ".join(mentions)
    assert bad == {}


def test_the_store_never_imports_the_rules_kept_outside_it():
    for path in python_files(STORE):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                assert not name.startswith("publisher.subscribers"), f"{path}: imports {name}"


def test_the_check_catches_what_it_should():
    """The walker itself: a module reaching past the surface is reported."""
    text = (
        "from sqlalchemy import select\n"
        "from publisher.store.models import SubscriberRow\n"
        "from publisher.store import ledger\n"
        "from publisher.store.items import row_to_item\n"
        "def f(store):\n"
        "    ledger._move\n"
        "    return store.session()\n"
    )
    problems = problems_in(text, "publisher/web/probe.py")
    assert len(problems) == 5, problems
