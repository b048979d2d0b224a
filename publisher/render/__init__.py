"""Render: Jinja + MJML templates compiled once per edition; placeholders per recipient.

Delivery codes against `PLACEHOLDERS`, `personalise` and `subscriber_url` only.
"""

from publisher.render.personalise import (
    NAME_FALLBACK,
    PLACEHOLDERS,
    personalise,
    subscriber_url,
)

__all__ = ["NAME_FALLBACK", "PLACEHOLDERS", "personalise", "subscriber_url"]
