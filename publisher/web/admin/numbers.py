"""The edition page's numbers: each with where it comes from, and what this site's backend
can and cannot count (publisher.subscribers.numbers gives the numbers; the words are here)."""

from __future__ import annotations

from typing import Any

from publisher.subscribers.numbers import backend_name, edition_numbers
from publisher.web.context import Web
from publisher.web.webhook import KEY_VARIABLE

SENDGRID_NUMBERS = "Delivered, complaints, opens and clicks"


def backend_note(backend: str, webhook_ready: bool) -> str:
    """What the backend this site sends with can count, in a sentence or three."""
    ours = (
        "Unsubscribes and preference changes made through this email's own links are "
        "counted by our unsubscribe and preferences pages."
    )
    if backend == "sendgrid":
        note = f"{ours} Bounces, {SENDGRID_NUMBERS.lower()} come from SendGrid's events."
        if not webhook_ready:
            note += (
                f" SendGrid's event webhook is not configured here ({KEY_VARIABLE} is not "
                "set): those numbers stay at 0 until it is."
            )
        return note
    if backend == "smtp":
        return (
            f"This site sends with the SMTP backend. {ours} Bounces come from the SMTP "
            f"server's answers (a permanent refusal). {SENDGRID_NUMBERS} need SendGrid's "
            "event webhook: they are not available with the SMTP backend."
        )
    name = backend_name(backend)
    return (
        f"This site sends with the {name} backend. {ours} Bounces need an SMTP server's "
        f"answers or SendGrid's events, and {SENDGRID_NUMBERS.lower()} need SendGrid's event "
        f"webhook: they are not available with the {name} backend."
    )


def numbers_context(w: Web, edition_id: int, html: str) -> dict[str, Any]:
    """The template values of the edition page's numbers, for the backend this site sends
    with (PUBLISHER_DELIVERY wins over the file's, as for a send)."""
    backend = w.config.delivery.effective_backend
    return {
        "numbers": edition_numbers(w.store, edition_id, backend=backend, html=html),
        "backend_note": backend_note(backend, w.webhook_key is not None),
    }
