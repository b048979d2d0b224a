"""`file` backend (the default): one .eml per recipient in outbox/<campaign>/<edition>/.

Files are named by subscriber id and written atomically (temporary file, then rename), so a
resend after a crash overwrites instead of duplicating: the outbox is exactly-once by itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from publisher.config import PublisherConfig
from publisher.deliver.base import (
    HeaderError,
    Hooks,
    Message,
    PermanentError,
    Recipient,
    Scheduled,
    Settings,
)
from publisher.deliver.mime import Skeleton, build_message, prepare_skeleton
from publisher.support.files import PRIVATE, write_atomic


class FileBackend:
    name = "file"
    cancellation = None  # no exactly-once mode needed: the outbox is exactly-once by itself

    def __init__(self, root: Path, *, batch_size: int = 500, display_root: Path | None = None):
        self.root = root
        # idempotent: files are named by subscriber, a resend overwrites; one worker: the
        # disk is cheap and threads would only contend
        self.settings = Settings(batch_size=batch_size, workers=1, idempotent=True)
        self.display_root = display_root

    @classmethod
    def from_config(cls, config: PublisherConfig) -> FileBackend:
        options = config.delivery.file
        return cls(
            config.resolve(options.path), batch_size=options.batch_size, display_root=config.root
        )

    def folder(self, message: Message) -> Path:
        return self.root / message.campaign / str(message.number)

    def prepare(self, message: Message) -> Skeleton:
        return prepare_skeleton(message)

    @staticmethod
    def file_name(recipient: Recipient) -> str:
        if recipient.subscriber_id == 0:  # a test send (--to): kept apart from the edition's
            return "test-" + re.sub(r"[^A-Za-z0-9@._-]", "_", recipient.email) + ".eml"
        return f"{recipient.subscriber_id}.eml"

    def encode(self, prepared: Skeleton, recipients: Sequence[Recipient], batch_key: str) -> None:
        return None  # each message is built as it is written

    def send(
        self,
        prepared: Skeleton,
        encoded: None,
        recipients: Sequence[Recipient],
        hooks: Hooks,
        scheduled: Scheduled | None = None,
    ) -> dict[int, str]:
        folder = self.folder(prepared.message)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # the whole batch fails (and pauses the send), retried on resume
            raise PermanentError(f"cannot create the outbox folder {folder}: {exc}") from None
        failed: dict[int, str] = {}
        hooks.writing(recipients)
        for recipient in recipients:
            target = folder / self.file_name(recipient)
            try:
                write_atomic(target, build_message(prepared, recipient), mode=PRIVATE)
            except HeaderError as exc:
                failed[recipient.subscriber_id] = str(exc)
            except (OSError, ValueError) as exc:
                failed[recipient.subscriber_id] = f"cannot write {target}: {exc}"
        return failed

    def preview(self, prepared: Skeleton, recipient: Recipient) -> str:
        return build_message(prepared, recipient).decode("ascii")

    def destination(self, message: Message) -> str:
        folder = self.folder(message)
        if self.display_root is not None:
            try:
                return str(folder.relative_to(self.display_root))
            except ValueError:
                pass
        return str(folder)

    def close(self) -> None:
        pass
