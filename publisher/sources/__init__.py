"""Sources: where content items come from. Each type is one class behind the Source
protocol, registered here by the `type` name used in schedules.yaml."""

from __future__ import annotations

from collections.abc import Callable

from publisher.config import PublisherConfig
from publisher.sources.base import (
    CollectContext,
    Problem,
    Source,
    SourceMemory,
    SourceResult,
)
from publisher.sources.export import ExportSource
from publisher.sources.feed import FeedSource
from publisher.sources.markdown import MarkdownSource

SOURCE_TYPES: dict[str, Callable[..., Source]] = {
    "markdown": MarkdownSource,
    "feed": FeedSource,
    "export": ExportSource,
}


def build_sources(config: PublisherConfig) -> list[Source]:
    return [SOURCE_TYPES[cfg.type](cfg, config) for cfg in config.sources]


__all__ = [
    "SOURCE_TYPES",
    "CollectContext",
    "Problem",
    "Source",
    "SourceMemory",
    "SourceResult",
    "build_sources",
]
