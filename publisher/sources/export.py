"""A JSON or CSV export file (e.g. from WordPress or a spreadsheet)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from publisher.config import ExportSourceConfig, PublisherConfig
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
    slugify,
    untyped_text,
    vet_item,
)
from publisher.support.bounded import load_json
from publisher.support.sanitize import AUTHOR_MAX, TITLE_MAX, sanitize_html, summarise


class ExportSource:
    def __init__(self, cfg: ExportSourceConfig, config: PublisherConfig) -> None:
        self.name = cfg.name
        self.path = config.resolve(cfg.path)
        self.format = cfg.format or self.path.suffix.lstrip(".").lower()
        self.base_url = (cfg.base_url or config.organisation.website).rstrip("/") + "/"
        self.default_kind = cfg.default_kind
        self.zone = ZoneInfo(config.organisation.timezone)  # what a date-only date means

    def target(self, memory: SourceMemory) -> None:
        return None  # local: read in the calling thread

    def collect(self, ctx: CollectContext) -> SourceResult:
        result = SourceResult()
        try:
            records = list(self._records())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error, ValueError) as exc:
            result.problems.append(Problem(self.name, str(self.path), f"unreadable: {exc}"))
            return result
        for where, record in records:
            try:
                result.items.append(self._to_item(record))
            except (ValueError, TypeError) as exc:
                result.problems.append(Problem(self.name, f"{self.path}:{where}", str(exc)))
            except Exception as exc:  # noqa: BLE001 - one record never stops the others
                reason = f"cannot be read ({exc.__class__.__name__}: {exc})"
                result.problems.append(Problem(self.name, f"{self.path}:{where}", reason))
        return result

    def _records(self) -> Iterator[tuple[str, object]]:
        if self.format == "csv":
            with self.path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                for row in reader:
                    yield f"line {reader.line_num}", row
        elif self.format == "json":
            doc = load_json(self.path.read_text(encoding="utf-8"))
            records = doc.get("items") if isinstance(doc, dict) else doc
            if not isinstance(records, list):
                raise ValueError("expected a list of items or an object with 'items'")
            for index, record in enumerate(records):
                yield f"item {index + 1}", record
        else:
            raise ValueError(f"unknown export format '{self.format}' (use json or csv)")

    def _to_item(self, record: object) -> Item:
        if not isinstance(record, dict):
            raise ValueError("record is not an object")
        title = untyped_text(record.get("title"), "title", TITLE_MAX)
        if not title:
            raise ValueError("missing title")
        slug = optional_text(record.get("slug"), "slug") or slugify(title)
        url = item_url(record.get("url") or f"{slug}/", self.base_url)
        body = optional_text(record.get("body_html") or record.get("body"), "body_html") or ""
        body_html = sanitize_html(body, url)
        published, day = parse_when(record.get("published") or record.get("date"), self.zone)
        return vet_item(
            Item(
                id=f"{self.name}:{optional_text(record.get('id'), 'id') or slug}",
                title=title,
                url=url,
                published=published,
                day=day,
                updated=parse_when(record["updated"], self.zone, field_name="updated")[0]
                if record.get("updated")
                else None,
                source=self.name,
                kind=check_kind(record.get("kind"), self.default_kind),
                summary=untyped_text(record.get("summary"), "summary") or summarise(body_html),
                body_html=body_html,
                author=untyped_text(record.get("author"), "author", AUTHOR_MAX),
                topics=parse_topics(record.get("topics")),
                image=optional_url(record.get("image"), url, "image"),
                image_alt=untyped_text(record.get("image_alt"), "image_alt"),
            )
        )
