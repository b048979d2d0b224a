"""Preview documents: the edition as one sample recipient would receive it."""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from publisher.config import Organisation
from publisher.render.email import RenderedEdition
from publisher.render.personalise import personalise, subscriber_url

PREVIEW_TOKEN = "preview"  # not a real subscriber token: the links show where they lead


def _personalise_preview(document: str, org: Organisation) -> str:
    return personalise(
        document,
        name=None,
        unsubscribe_url=subscriber_url(org.public_url, "unsubscribe", PREVIEW_TOKEN),
        preferences_url=subscriber_url(org.public_url, "preferences", PREVIEW_TOKEN),
    )


def preview_message(rendered: RenderedEdition, org: Organisation, *, now: datetime) -> EmailMessage:
    """A complete message (text and HTML alternatives) as a mail client would show it."""
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = Address(org.from_name or org.name, addr_spec=org.from_email)
    message["To"] = Address("Preview", addr_spec="preview@example.invalid")
    if org.reply_to:
        message["Reply-To"] = org.reply_to
    message["Date"] = format_datetime(now)
    message.set_content(_personalise_preview(rendered.text, org))
    message.add_alternative(_personalise_preview(rendered.html, org), subtype="html")
    return message


def preview_documents(
    rendered: RenderedEdition, org: Organisation, *, now: datetime
) -> dict[str, bytes]:
    """{suffix: content} of the preview files: .html, .txt and .eml."""
    return {
        ".html": _personalise_preview(rendered.html, org).encode("utf-8"),
        ".txt": _personalise_preview(rendered.text, org).encode("utf-8"),
        ".eml": bytes(preview_message(rendered, org, now=now)),
    }
