"""A folder of Markdown files with YAML front matter."""

from __future__ import annotations

from pathlib import Path

import yaml
from markdown_it import MarkdownIt

from publisher.config import MarkdownSourceConfig, PublisherConfig
from publisher.items import Item
from publisher.sanitize import sanitize_html, summarise
from publisher.sources.base import (
    CollectContext,
    Problem,
    SourceResult,
    check_kind,
    item_url,
    optional_text,
    optional_url,
    parse_datetime,
    parse_topics,
)

_md = MarkdownIt("commonmark", {"typographer": True}).enable(["table", "strikethrough"])
FRONT_MATTER_KEYS = {
    "id", "title", "date", "updated", "url", "summary", "kind", "topics", "tags", "author",
    "image", "image_alt", "draft",
}  # fmt: skip


class FrontMatterError(ValueError):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def split_front_matter(text: str) -> tuple[dict, str, int]:
    """Return (front matter, body, line where the body starts)."""
    if not text.startswith("---"):
        raise FrontMatterError("no YAML front matter (the file must start with '---')", 1)
    lines = text.splitlines(keepends=True)
    for index in range(1, len(lines)):
        if lines[index].rstrip() in ("---", "..."):
            raw = "".join(lines[1:index])
            try:
                meta = yaml.safe_load(raw) or {}
            except yaml.MarkedYAMLError as exc:
                line = exc.problem_mark.line + 2 if exc.problem_mark else None
                reason = f"front matter is not valid YAML: {exc.problem}"
                raise FrontMatterError(reason, line) from None
            except ValueError as exc:  # YAML read a value it cannot build, e.g. 2026-13-01
                raise FrontMatterError(f"front matter has an invalid date: {exc}", 2) from None
            if not isinstance(meta, dict):
                raise FrontMatterError("front matter must be a mapping of keys", 2)
            return meta, "".join(lines[index + 1 :]), index + 2
    raise FrontMatterError("front matter is not closed by a '---' line", 1)


class MarkdownSource:
    def __init__(self, cfg: MarkdownSourceConfig, config: PublisherConfig) -> None:
        self.name = cfg.name
        self.folder = config.resolve(cfg.path)
        self.base_url = (cfg.base_url or config.organisation.website).rstrip("/") + "/"
        self.default_kind = cfg.default_kind

    def collect(self, ctx: CollectContext) -> SourceResult:
        result = SourceResult()
        if not self.folder.is_dir():
            result.problems.append(Problem(self.name, str(self.folder), "folder not found"))
            return result
        for path in sorted(self.folder.rglob("*.md")):
            try:
                item = self.read_file(path)
            except FrontMatterError as exc:
                where = f"{path}:{exc.line}" if exc.line else str(path)
                result.problems.append(Problem(self.name, where, str(exc)))
                continue
            except (ValueError, OSError, UnicodeDecodeError) as exc:
                result.problems.append(Problem(self.name, str(path), str(exc)))
                continue
            if item is not None:
                result.items.append(item)
        return result

    def read_file(self, path: Path) -> Item | None:
        meta, body, _ = split_front_matter(path.read_text(encoding="utf-8"))
        unknown = set(meta) - FRONT_MATTER_KEYS
        if unknown:
            raise FrontMatterError(f"unknown front matter key(s): {', '.join(sorted(unknown))}", 2)
        if meta.get("draft"):
            return None
        title = optional_text(meta.get("title"), "title")
        if not title:
            raise FrontMatterError("front matter has no 'title'", 2)
        slug = path.relative_to(self.folder).with_suffix("").as_posix()
        url = item_url(meta.get("url") or f"{slug}/", self.base_url)
        body_html = sanitize_html(_md.render(body), base_url=url)
        return Item(
            id=optional_text(meta.get("id"), "id") or f"{self.name}:{slug}",
            title=title,
            url=url,
            published=parse_datetime(meta.get("date")),
            updated=parse_datetime(meta["updated"], field_name="updated")
            if meta.get("updated")
            else None,
            source=self.name,
            kind=check_kind(meta.get("kind"), self.default_kind),
            summary=optional_text(meta.get("summary"), "summary") or summarise(body_html),
            body_html=body_html,
            author=optional_text(meta.get("author"), "author"),
            topics=parse_topics(meta.get("topics", meta.get("tags"))),
            image=optional_url(meta.get("image"), url, "image"),
            image_alt=optional_text(meta.get("image_alt"), "image_alt"),
        )
