"""Publishing: the configured feeds as static RSS 2.0, Atom 1.0 and JSON Feed 1.1 files."""

from publisher.publish.feeds import FeedsReport, feeds_up_to_date, publish_feeds
from publisher.publish.state import BuildState, MemoryState
from publisher.publish.writer import FeedWriteError

__all__ = [
    "BuildState",
    "FeedWriteError",
    "FeedsReport",
    "MemoryState",
    "feeds_up_to_date",
    "publish_feeds",
]
