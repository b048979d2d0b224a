"""Render: Jinja + MJML templates compiled once per edition; placeholders per recipient.

Delivery codes against `PLACEHOLDERS` and `personalise` only.
"""

from publisher.render.personalise import NAME_FALLBACK, PLACEHOLDERS, personalise

__all__ = ["NAME_FALLBACK", "PLACEHOLDERS", "personalise"]
