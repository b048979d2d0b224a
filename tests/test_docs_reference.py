"""docs/cli.md, docs/configuration.md and docs/store.md are generated from the code
(publisher/cli/reference.py).
This fails when a command, an option, a help text or a configuration key changed and the
committed files were not regenerated."""

from __future__ import annotations

import difflib

from publisher.cli import reference


def test_the_generated_references_match_the_code():
    stale = []
    for path, text in reference.generated().items():
        committed = path.read_text(encoding="utf-8") if path.exists() else ""
        if committed != text:
            diff = difflib.unified_diff(
                committed.splitlines(), text.splitlines(), str(path), "generated", lineterm=""
            )
            stale.append("\n".join(list(diff)[:40]))
    assert not stale, (
        f"{len(stale)} generated doc(s) out of date: run `{reference.REGENERATE}` "
        "(python -m publisher.cli.reference) and commit the result\n\n" + "\n\n".join(stale)
    )


def test_the_references_cover_every_command_and_section():
    cli = reference.cli_reference()
    for command in ("publisher send", "publisher worker", "publisher subscribers import"):
        assert f"## `{command}`" in cli
    configuration = reference.configuration_reference()
    for section in ("organisation", "campaigns[]", "delivery.sendgrid", "sources[] (type: feed)"):
        assert f"## `{section}`" in configuration
    store = reference.store_reference()
    for module in ("publisher.store", "publisher.store.items", "publisher.subscribers.consent"):
        assert f"## `{module}`" in store
    assert "- `upsert_items(store: Store, items: Iterable[Item], *, now: datetime)" in store


def test_the_check_mode_names_what_drifted(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reference, "DOCS", tmp_path)
    assert reference.main(["--check"]) == 1
    assert "out of date: run `make docs`" in capsys.readouterr().err
    assert reference.main([]) == 0 and reference.main(["--check"]) == 0


def test_the_architecture_page_names_every_module_and_rank():
    """docs/architecture.md's tree lists every module of the package, and its import-graph
    table gives each part of the tree the rank tests/test_layers.py holds it to."""
    import re

    from tests.test_layers import LAYERS, PACKAGE

    page = (reference.DOCS / "architecture.md").read_text(encoding="utf-8")
    tree = page.split("## The tree", 1)[1].split("\n## ", 1)[0]
    missing = [
        str(path.relative_to(PACKAGE.parent))
        for path in sorted(PACKAGE.rglob("*.py"))
        if "versions" not in path.parts
        and path.name != "__init__.py"
        and (path.name not in tree or f"{path.parent.name}/" not in tree)
    ]
    assert missing == []
    graph = page.split("### The import graph", 1)[1].split("\n#", 1)[0]
    ranks = {}
    for rank, parts in re.findall(r"^\| (\d+) \| ([^|]+) \|", graph, flags=re.M):
        for part in re.findall(r"`(\w+)(?:/|\.py)`", parts):
            ranks[part] = int(rank)
    assert ranks == LAYERS
