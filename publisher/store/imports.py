"""Pending imports (issue 20): a CSV of people uploaded in /admin is read, checked against
the list and kept here, row by row with what confirming it will do (add, update, leave
unchanged, skip and why), until its owner confirms it; nothing reaches the subscribers
before. Confirming claims the import once (a second confirm writes nothing), writes the
rows the preview promised through `import_subscribers` (the CLI's writer), and keeps the
consent note in every written person's history. An import belongs to one staff member,
expires after IMPORT_LIFETIME, and each staff member holds at most one."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.orm import Session

from publisher.errors import PublisherError
from publisher.store import Store, dialect
from publisher.store.consent import Context
from publisher.store.models import (
    PendingImportLineRow,
    PendingImportRow,
    SubscriberHistoryRow,
    SubscriberRow,
    SuppressionRow,
)
from publisher.store.subscribers import (
    CHUNK,
    ImportReport,
    SubscriberInput,
    import_subscribers,
)

__all__ = [
    "IMPORT_LIFETIME",
    "MAX_IMPORT_ROWS",
    "OUTCOMES",
    "ImportLine",
    "ImportTooLarge",
    "PendingImport",
    "confirm_import",
    "import_lines",
    "pending_import",
    "prune_imports",
    "stage_import",
]

IMPORT_LIFETIME = timedelta(hours=2)
MAX_IMPORT_ROWS = 100_000  # rows of one upload; a list bigger than this goes by the CLI
OUTCOMES = ("add", "update", "unchanged", "skip")
WRITTEN = ("add", "update")
WORDS = {"add": "added", "update": "updated"}
# why a row over someone already on the list is skipped: only the person undoes these
LEFT = {
    "unsubscribed": "unsubscribed: only they can subscribe again",
    "bounced": "their address bounced: not changed",
    "complained": "complained: never re-added",
}


LINES = cast(Table, PendingImportLineRow.__table__)  # Core inserts: the ORM's bulk path is slow


class ImportTooLarge(PublisherError):
    """More rows than MAX_IMPORT_ROWS: nothing of the upload is kept."""


@dataclass(frozen=True)
class ImportLine:
    """One row of an upload: `outcome` "" before staging (to be decided against the list),
    "skip" with a reason for a row the file reader refused."""

    line: int
    email: str
    name: str | None = None
    topics: tuple[str, ...] = ()
    status: str | None = None
    outcome: str = ""
    reason: str | None = None


@dataclass(frozen=True)
class PendingImport:
    id: int
    staff_id: int
    created_at: datetime
    expires_at: datetime
    filename: str
    note: str
    totals: dict[str, int] = field(default_factory=dict)  # rows per outcome
    confirmed_at: datetime | None = None
    result: dict[str, int] | None = None  # what confirming wrote


def _pending(row: PendingImportRow) -> PendingImport:
    return PendingImport(
        row.id, row.staff_id, row.created_at, row.expires_at, row.filename, row.note,
        dict(row.totals or {}), row.confirmed_at, dict(row.result) if row.result else None,
    )  # fmt: skip


def _decide(line: ImportLine, old: Any, suppressed: bool) -> tuple[str, str | None]:
    """What confirming will do with a row, and why (the rules of import_subscribers, and an
    upload never touches anyone who left)."""
    if old is None:
        if suppressed:
            return "skip", "erased or never to be mailed: never re-added"
        as_status = line.status if line.status not in (None, "active") else None
        return "add", f"added as {as_status}" if as_status else None
    if old.status in LEFT:
        return "skip", LEFT[old.status]
    status = line.status if line.status not in (None, "active") else old.status
    changes = [
        what
        for what, before, after in (
            ("name", old.name, line.name),
            ("topics", sorted(old.topics or []), sorted(line.topics)),
            ("status", old.status, status),
        )
        if before != after
    ]
    if not changes:
        return "unchanged", "already on the list"
    return "update", f"changes {', '.join(changes)}"


def _classify(session: Session, chunk: list[ImportLine]) -> list[ImportLine]:
    emails = [c.email for c in chunk if not c.outcome]
    columns = (SubscriberRow.email, SubscriberRow.name, SubscriberRow.topics, SubscriberRow.status)
    existing = {
        r.email: r for r in session.execute(select(*columns).where(SubscriberRow.email.in_(emails)))
    }
    # the addresses were normalised when the file was read: hashed as they are (a second
    # email-validator pass per row was most of a large upload's time)
    hashes = {sha256(e.encode("utf-8")).hexdigest(): e for e in emails if e not in existing}
    query = select(SuppressionRow.email_hash).where(SuppressionRow.email_hash.in_(hashes))
    suppressed = {hashes[h] for h in session.scalars(query)}
    decided = []
    for c in chunk:
        if c.outcome:
            decided.append(c)
            continue
        outcome, reason = _decide(c, existing.get(c.email), c.email in suppressed)
        decided.append(ImportLine(c.line, c.email, c.name, c.topics, c.status, outcome, reason))
    return decided


def _chunks(lines: Iterable[ImportLine]) -> Iterator[list[ImportLine]]:
    chunk: list[ImportLine] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _line_row(import_id: int, c: ImportLine) -> dict[str, Any]:
    return dict(
        import_id=import_id, line=c.line, email=c.email[:1000], name=c.name,
        topics=list(c.topics), status=c.status, outcome=c.outcome, reason=c.reason,
    )  # fmt: skip


def stage_import(
    store: Store,
    lines: Iterable[ImportLine],
    *,
    staff_id: int,
    filename: str,
    note: str,
    now: datetime,
    max_rows: int = MAX_IMPORT_ROWS,
) -> PendingImport:
    """Keep an upload's rows with what confirming will do, a chunk at a time (the upload is
    never held whole). The staff member's earlier unconfirmed import and every expired one
    go. ImportTooLarge, and nothing kept, past `max_rows` rows."""
    prune_imports(store, now=now, staff_id=staff_id)
    with store.session() as session:
        header = PendingImportRow(
            staff_id=staff_id, created_at=now, expires_at=now + IMPORT_LIFETIME,
            filename=filename[:200], note=note, totals={},
        )  # fmt: skip
        session.add(header)
        session.flush()
        import_id = header.id
    totals = dict.fromkeys(OUTCOMES, 0)
    try:
        for chunk in _chunks(lines):
            if sum(totals.values()) + len(chunk) > max_rows:
                raise ImportTooLarge(f"more than {max_rows:,} rows")
            with store.session() as session:
                decided = _classify(session, chunk)
                session.execute(insert(LINES), [_line_row(import_id, c) for c in decided])
            for c in decided:
                totals[c.outcome] += 1
    except BaseException:
        _drop(store, [import_id])
        raise
    with store.session() as session:
        row = session.get(PendingImportRow, import_id)
        assert row is not None
        row.totals = totals
        return _pending(row)


def pending_import(store: Store, import_id: int, *, staff_id: int) -> PendingImport | None:
    """The import if it is this staff member's (expired ones too, until pruned)."""
    with store.session() as session:
        row = session.get(PendingImportRow, import_id)
        return _pending(row) if row is not None and row.staff_id == staff_id else None


def import_lines(store: Store, import_id: int, *, limit: int = 1000) -> list[ImportLine]:
    """The first `limit` rows of an import in file order (skipped rows with their reason)."""
    query = (
        select(PendingImportLineRow)
        .where(PendingImportLineRow.import_id == import_id)
        .order_by(PendingImportLineRow.line)
        .limit(limit)
    )
    with store.session() as session:
        return [
            ImportLine(
                r.line, r.email, r.name, tuple(r.topics or ()), r.status, r.outcome, r.reason
            )
            for r in session.scalars(query)
        ]


def _claim(store: Store, import_id: int, staff_id: int, now: datetime) -> bool:
    table = cast(Table, PendingImportRow.__table__)
    query = (
        update(table)
        .where(table.c.id == import_id, table.c.staff_id == staff_id)
        .where(table.c.confirmed_at.is_(None), table.c.expires_at > now)
        .values(confirmed_at=now)
    )
    with store.engine.begin() as connection:
        return dialect.rowcount(connection.execute(query)) > 0


def _written_lines(store: Store, import_id: int) -> Iterator[list[ImportLine]]:
    """The rows to write, a chunk at a time (keyset on the line number)."""
    after = 0
    while True:
        query = (
            select(PendingImportLineRow)
            .where(PendingImportLineRow.import_id == import_id, PendingImportLineRow.line > after)
            .where(PendingImportLineRow.outcome.in_(WRITTEN))
            .order_by(PendingImportLineRow.line)
            .limit(CHUNK)
        )
        with store.session() as session:
            rows = session.scalars(query).all()
            chunk = [
                ImportLine(r.line, r.email, r.name, tuple(r.topics or ()), r.status, r.outcome)
                for r in rows
            ]
        if not chunk:
            return
        yield chunk
        after = chunk[-1].line


def _record_consent(
    store: Store, chunk: list[ImportLine], note: str, import_id: int, ctx: Context, now: datetime
) -> None:
    """The consent note in the history of everyone the chunk added or updated."""
    outcome = {c.email: c.outcome for c in chunk}
    with store.session() as session:
        found = session.execute(
            select(SubscriberRow.id, SubscriberRow.email, SubscriberRow.status).where(
                SubscriberRow.email.in_(list(outcome))
            )
        ).all()
        history = [
            dict(
                subscriber_id=r.id,
                at=now,
                action="import",
                via=ctx.via,
                status=r.status,
                ip=ctx.ip,
                user_agent=None,
                form=ctx.form,
                consent_text=note,
                detail=f"import #{import_id}: {WORDS[outcome[r.email]]}",
            )  # fmt: skip
            for r in found
        ]
        if history:
            session.execute(insert(cast(Table, SubscriberHistoryRow.__table__)), history)


def confirm_import(
    store: Store, import_id: int, *, staff_id: int, ctx: Context, now: datetime
) -> ImportReport | None:
    """Write what the preview said, once: None (nothing written) if the import is not this
    staff member's, has expired, or was confirmed already."""
    if not _claim(store, import_id, staff_id, now):
        return None
    with store.session() as session:
        header = session.get(PendingImportRow, import_id)
        assert header is not None
        note = header.note
    report = ImportReport()
    for chunk in _written_lines(store, import_id):
        rows = [SubscriberInput(c.email, c.name, c.topics, c.status) for c in chunk]
        step = import_subscribers(store, rows, now=now)
        for name in ("inserted", "updated", "unchanged", "kept_inactive", "suppressed"):
            setattr(report, name, getattr(report, name) + getattr(step, name))
        _record_consent(store, chunk, note, import_id, ctx, now)
    result = {
        n: getattr(report, n)
        for n in ("inserted", "updated", "unchanged", "kept_inactive", "suppressed")
    }
    with store.session() as session:
        session.execute(
            delete(PendingImportLineRow).where(PendingImportLineRow.import_id == import_id)
        )
        session.execute(
            update(PendingImportRow).where(PendingImportRow.id == import_id).values(result=result)
        )
    return report


def _drop(store: Store, ids: list[int]) -> None:
    if not ids:
        return
    with store.session() as session:
        session.execute(delete(PendingImportLineRow).where(PendingImportLineRow.import_id.in_(ids)))
        session.execute(delete(PendingImportRow).where(PendingImportRow.id.in_(ids)))


def prune_imports(store: Store, *, now: datetime, staff_id: int | None = None) -> int:
    """Drop expired imports (and, given `staff_id`, that member's unconfirmed ones): the
    uploads kept stay bounded. How many went."""
    query = select(PendingImportRow.id).where(PendingImportRow.expires_at <= now)
    with store.session() as session:
        ids = set(session.scalars(query))
        if staff_id is not None:
            mine = select(PendingImportRow.id).where(
                PendingImportRow.staff_id == staff_id, PendingImportRow.confirmed_at.is_(None)
            )
            ids |= set(session.scalars(mine))
    _drop(store, sorted(ids))
    return len(ids)
