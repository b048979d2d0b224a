"""Every error the inner code raises is a PublisherError; only the CLI
(publisher/cli/__init__.py) turns them into messages and exit codes."""

from __future__ import annotations


class PublisherError(Exception):
    """Base class: a problem the user can act on. ``exit_code`` is what the CLI returns."""

    exit_code = 1


class ConfigError(PublisherError):
    """Configuration (schedules.yaml) is malformed; names file, line and key path."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.reason = message
        where = file or "configuration"
        if line is not None:
            where = f"{where}:{line}"
        prefix = f"{where}: " + (f"{key}: " if key else "")
        super().__init__(prefix + message)


class ConfigErrors(ConfigError):
    """Several configuration problems found at once (all are reported, not only the first)."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        PublisherError.__init__(self, "\n".join(str(e) for e in errors))
        self.file = errors[0].file if errors else None
        self.line = errors[0].line if errors else None
        self.key = errors[0].key if errors else None
        self.reason = errors[0].reason if errors else ""


class SourceError(PublisherError):
    """One source, file, URL or row could not be read; collection goes on without it."""


class StoreError(PublisherError):
    """The store cannot be opened or is at an unexpected schema version."""


class TemplateError(PublisherError):
    """A template does not compile or render (names the template and line)."""

    exit_code = 2


class RenderError(PublisherError):
    """A rendered artefact is invalid (too large, non-absolute links...)."""


class DeliveryError(PublisherError):
    """A delivery backend failed in a way that stops the send."""


class ScheduleError(PublisherError):
    """A cadence or time zone is invalid."""

    exit_code = 2
