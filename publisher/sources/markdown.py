"""A folder of Markdown files with YAML front matter."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from markdown_it import MarkdownIt

from publisher.config import MarkdownSourceConfig, PublisherConfig
from publisher.items import Item
from publisher.sources.base import (
    CollectContext,
    Problem,
    SourceMemory,
    SourceResult,
    check_kind,
    item_url,
    optional_text,
    optional_url,
    parse_topics,
    parse_when,
    untyped_text,
    vet_item,
)
from publisher.support.bounded import LimitError, load_yaml
from publisher.support.sanitize import (
    AUTHOR_MAX,
    TITLE_MAX,
    sanitize_html,
    strip_control_chars,
    summarise,
)

_md = MarkdownIt("commonmark", {"typographer": True}).enable(["table", "strikethrough"])


FRONT_MATTER_KEYS = {
    "id", "title", "date", "updated", "url", "summary", "kind", "topics", "tags", "author",
    "image", "image_alt", "draft",
}  # fmt: skip


def markdown_html(body: str, base_url: str | None = None) -> str:
    """A Markdown body as sanitised HTML, links made absolute against `base_url`: the one
    renderer of Markdown files, posts written in /admin, the editor's preview and the
    editor's note of an edition."""
    return sanitize_html(_md.render(strip_control_chars(body)), base_url=base_url)


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
                meta = load_yaml(raw) or {}
            except LimitError as exc:
                where = exc.line + 1 if exc.line else 2
                raise FrontMatterError(f"front matter refused: {exc}", where) from None
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark.line + 2 if exc.problem_mark else None
                reason = f"front matter is not valid YAML: {exc.problem}"
                raise FrontMatterError(reason, mark) from None
            except ValueError as exc:  # YAML read a value it cannot build, e.g. 2026-13-01
                raise FrontMatterError(f"front matter has an invalid date: {exc}", 2) from None
            except yaml.YAMLError as exc:
                raise FrontMatterError(f"front matter is not valid YAML: {exc}", 2) from None
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
        self.zone = ZoneInfo(config.organisation.timezone)  # what a date-only date means

    def target(self, memory: SourceMemory) -> None:
        return None  # local: read in the calling thread

    def collect(self, ctx: CollectContext) -> SourceResult:
        result = SourceResult()
        if not self.folder.is_dir():
            result.problems.append(Problem(self.name, str(self.folder), "folder not found"))
            return result
        # Every file still there, readable or not: only a deleted file retires its item.
        result.present = set()
        for path in sorted(self.folder.rglob("*.md")):
            result.present.add(self.origin(path))
            try:
                item = self.read_file(path)
            except FrontMatterError as exc:
                where = f"{path}:{exc.line}" if exc.line else str(path)
                result.problems.append(Problem(self.name, where, str(exc)))
                continue
            except (ValueError, OSError, UnicodeDecodeError) as exc:
                result.problems.append(Problem(self.name, str(path), str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - one file never stops the others
                reason = f"cannot be read ({exc.__class__.__name__}: {exc})"
                result.problems.append(Problem(self.name, str(path), reason))
                continue
            if item is not None:
                result.items.append(item)
        return result

    def origin(self, path: Path) -> str:
        return path.relative_to(self.folder).as_posix()

    def read_file(self, path: Path) -> Item | None:
        # Control characters (Word's soft line break \x0b, \x01, ESC) are removed before
        # YAML sees them: YAML, MJML and XML all reject them.
        text = strip_control_chars(path.read_text(encoding="utf-8"))
        meta, body, _ = split_front_matter(text)
        unknown = set(meta) - FRONT_MATTER_KEYS
        if unknown:
            raise FrontMatterError(f"unknown front matter key(s): {', '.join(sorted(unknown))}", 2)
        if meta.get("draft"):
            return None
        title = untyped_text(meta.get("title"), "title", TITLE_MAX)
        if not title:
            raise FrontMatterError("front matter has no 'title'", 2)
        slug = path.relative_to(self.folder).with_suffix("").as_posix()
        url = item_url(meta.get("url") or f"{slug}/", self.base_url)
        body_html = markdown_html(body, url)
        published, day = parse_when(meta.get("date"), self.zone)
        item = Item(
            id=optional_text(meta.get("id"), "id") or f"{self.name}:{slug}",
            title=title,
            url=url,
            published=published,
            day=day,
            updated=parse_when(meta["updated"], self.zone, field_name="updated")[0]
            if meta.get("updated")
            else None,
            source=self.name,
            kind=check_kind(meta.get("kind"), self.default_kind),
            summary=untyped_text(meta.get("summary"), "summary") or summarise(body_html),
            body_html=body_html,
            author=untyped_text(meta.get("author"), "author", AUTHOR_MAX),
            topics=parse_topics(meta.get("topics", meta.get("tags"))),
            image=optional_url(meta.get("image"), url, "image"),
            image_alt=untyped_text(meta.get("image_alt"), "image_alt"),
            origin=self.origin(path),
        )
        return vet_item(item)
