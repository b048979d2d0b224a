"""Preview documents: the edition as one sample recipient would receive it."""

from __future__ import annotations

from publisher.config import Organisation
from publisher.render.email import RenderedEdition
from publisher.render.personalise import sample_copy

PREVIEW_TOKEN = "preview"  # not a real subscriber token: the links show where they lead


def preview_documents(rendered: RenderedEdition, org: Organisation) -> dict[str, bytes]:
    """{suffix: content} of the web-viewable preview files: .html and .txt (the .eml is
    built by the delivery path, which adds the headers a real send carries)."""
    return {
        ".html": sample_copy(rendered.html, org.public_url, PREVIEW_TOKEN).encode("utf-8"),
        ".txt": sample_copy(rendered.text, org.public_url, PREVIEW_TOKEN).encode("utf-8"),
    }
