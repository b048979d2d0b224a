"""What an API key may do: its scopes (one area each, read or write), or the sign-up kind
(only POST /api/v1/signup, safe to publish in another website's page)."""

from __future__ import annotations

SCOPES = {
    "subscribers:read": "read and search subscribers, pull their events",
    "subscribers:write": "add (double opt-in), change, unsubscribe and erase subscribers",
    "subscribers:import": "with subscribers:write: add people confirmed, without double opt-in",
    "content:read": "read posts and items",
    "content:write": "write, publish and retire posts; retire items",
    "campaigns:read": "read campaigns, editions and broadcasts: status, counts, previews",
    "campaigns:write": "write broadcasts and send their tests (to staff or test addresses)",
    "send": "send, schedule and cancel broadcasts (the approval rule still applies)",
}
KINDS = ("scoped", "signup")


def check_scopes(kind: str, scopes: list[str] | tuple[str, ...]) -> list[str]:
    """The scopes, checked: ValueError names the first unknown one; a sign-up key has none."""
    if kind not in KINDS:
        raise ValueError(f"unknown key kind {kind!r}: scoped or signup")
    if kind == "signup":
        if scopes:
            raise ValueError("a sign-up key has no scopes: it may only sign people up")
        return []
    for scope in scopes:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}: one of {', '.join(SCOPES)}")
    if not scopes:
        raise ValueError("give the key at least one scope")
    return sorted(set(scopes))
