"""Preview documents: the edition as one sample recipient would receive it."""

from __future__ import annotations

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


def preview_documents(rendered: RenderedEdition, org: Organisation) -> dict[str, bytes]:
    """{suffix: content} of the web-viewable preview files: .html and .txt (the .eml is
    built by the delivery path, which adds the headers a real send carries)."""
    return {
        ".html": _personalise_preview(rendered.html, org).encode("utf-8"),
        ".txt": _personalise_preview(rendered.text, org).encode("utf-8"),
    }
