"""Passkeys (WebAuthn, issue 19) with the `webauthn` library: each staff member registers
passkeys on their account page; the log-in page offers "Use a passkey" (a
discoverable credential with user verification is a whole log-in by itself), and the
second step after a password accepts one of the account's passkeys.

The options are rendered into the form (data-options) with a signed challenge; the one
script of /admin (passkey.js) asks the browser and posts its answer as a form field. The
relying party is the host the browser sees (behind a proxy, its Host header), and the origin
is checked against it: serve /admin over https (or http://localhost)."""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from publisher.render.environment import render_template
from publisher.store import audit
from publisher.store.passkeys import (
    add_passkey,
    find_passkey,
    list_passkeys,
    passkey_used,
    remove_passkey,
)
from publisher.store.staff import Staff, StaffError, get_staff
from publisher.store.staff_access import new_recovery_codes
from publisher.web.admin.auth import Admin, action, sessions_of, to
from publisher.web.context import client_ip, web
from publisher.web.forms import text

CHALLENGE_MAX_AGE = 600


def relying_party(request: Request) -> tuple[str, str]:
    """(rp id, origin) as the browser sees this server."""
    return request.url.hostname or "localhost", f"{request.url.scheme}://{request.url.netloc}"


def registration(admin: Admin) -> tuple[str, str]:
    """The options of a new passkey for the signed-in account, and its signed challenge."""
    rp_id, _ = relying_party(admin.request)
    known = list_passkeys(admin.w.store, admin.staff.id)
    options = generate_registration_options(
        rp_id=rp_id, rp_name=admin.w.config.organisation.name, user_name=admin.staff.email,
        user_id=f"staff-{admin.staff.id}".encode(),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.id)) for p in known
        ],
    )  # fmt: skip
    challenge = bytes_to_base64url(options.challenge)
    signed = sessions_of(admin.request).sign("passkey-new", admin.staff.id, admin.nonce, challenge)
    return options_to_json(options), signed


def authentication(request: Request, binding: str, staff: Staff | None = None) -> tuple[str, str]:
    """Options of a passkey log-in (any discoverable passkey, or `staff`'s), signed challenge."""
    rp_id, _ = relying_party(request)
    allowed = [
        PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.id))
        for p in (list_passkeys(web(request).store, staff.id) if staff else [])
    ]
    options = generate_authentication_options(
        rp_id=rp_id, allow_credentials=allowed,
        user_verification=UserVerificationRequirement.REQUIRED,
    )  # fmt: skip
    challenge = bytes_to_base64url(options.challenge)
    return options_to_json(options), sessions_of(request).sign("passkey-get", binding, challenge)


def _credential(form: FormData) -> dict[str, Any] | None:
    try:
        value = json.loads(text(form, "credential", 20_000))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@action("viewer", enrol_ok=True)
async def register_post(request: Request, admin: Admin, form: FormData) -> Response:
    w = admin.w
    data = sessions_of(request).read(
        "passkey-new", text(form, "challenge", 1000), CHALLENGE_MAX_AGE
    )
    credential = _credential(form)
    if not data or data[:2] != [admin.staff.id, admin.nonce] or credential is None:
        return admin.refuse("This page was too old: reload it and try again.")
    rp_id, origin = relying_party(request)
    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=base64url_to_bytes(str(data[2])),
            expected_rp_id=rp_id, expected_origin=origin, require_user_verification=True,
        )  # fmt: skip
        first = not admin.staff.has_second_factor
        name = text(form, "name", 100) or "Passkey"
        add_passkey(
            w.store, admin.staff.id, bytes_to_base64url(verified.credential_id),
            bytes_to_base64url(verified.credential_public_key), verified.sign_count,
            name=name, now=w.now(),
        )  # fmt: skip
    except (WebAuthnException, StaffError) as exc:
        return admin.message("Passkey not added", f"The browser's answer was refused: {exc}.",
                             status=400)  # fmt: skip
    audit.record(w.store, admin.staff.email, "second factor added", f"passkey {name}",
                 ip=client_ip(request), now=w.now())  # fmt: skip
    if first:  # the first second factor: recovery codes for when the passkey is not at hand
        codes = new_recovery_codes(w.store, admin.staff.id)
        return admin.page("codes.html", "Your recovery codes", codes=codes, what="passkey")
    return to(request, "admin/account?notice=passkey")


@action("viewer", enrol_ok=True)
async def remove_post(request: Request, admin: Admin, form: FormData) -> Response:
    w = admin.w
    if remove_passkey(w.store, admin.staff.id, text(form, "passkey", 400)):
        audit.record(w.store, admin.staff.email, "second factor removed", "passkey",
                     ip=client_ip(request), now=w.now())  # fmt: skip
    return to(request, "admin/account?notice=passkey-removed")


def check_assertion(request: Request, form: FormData, binding: str) -> Staff | None:
    """The account whose passkey signed this log-in's challenge, or None."""
    w = web(request)
    data = sessions_of(request).read(
        "passkey-get", text(form, "challenge", 1000), CHALLENGE_MAX_AGE
    )
    credential = _credential(form)
    if not data or data[0] != binding or credential is None:
        return None
    passkey = find_passkey(w.store, str(credential.get("id", "")))
    if passkey is None:
        return None
    rp_id, origin = relying_party(request)
    try:
        verified = verify_authentication_response(
            credential=credential, expected_challenge=base64url_to_bytes(str(data[1])),
            expected_rp_id=rp_id, expected_origin=origin,
            credential_public_key=base64url_to_bytes(passkey.public_key),
            credential_current_sign_count=passkey.sign_count, require_user_verification=True,
        )  # fmt: skip
    except WebAuthnException:
        return None
    passkey_used(w.store, passkey.id, verified.new_sign_count, now=w.now())
    return get_staff(w.store, passkey.staff_id)


async def script(request: Request) -> Response:
    body = render_template(web(request).env, "web/admin/passkey.js", {})
    return Response(
        body, media_type="text/javascript", headers={"cache-control": "public, max-age=3600"}
    )
