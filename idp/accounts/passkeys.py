"""WebAuthn passkeys (W3C Web Authentication L3) with the `webauthn` package.

Registration from the account page; login with a discoverable credential (no ID number typed),
also as the second factor of a step-up (the session then keeps its sid and portals).
A passkey with user verification is phishing-resistant: amr `hwk` + `user`, counted as MFA.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

from flask import current_app, jsonify, request, session
from flask_babel import gettext as _
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from .. import audit, sessions
from ..extensions import db
from ..models import Account, WebAuthnCredential, utcnow
from ..oauth2.authorize import load_interaction
from .authn import finish_login, recent, step_up
from .blueprint import bp
from .flow import after_login, resume


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _rp() -> tuple[str, str]:
    issuer = current_app.config["ISSUER"]
    parts = urlsplit(issuer)
    return current_app.config["WEBAUTHN_RP_ID"] or parts.hostname, \
        f"{parts.scheme}://{parts.netloc}"


def _fail(message: str, status: int = 400):
    response = jsonify(error="passkey_failed", message=message)
    response.status_code = status
    return response


def _user_handle_matches(payload, account_id: str) -> bool:
    """WebAuthn 7.2 step 6: a userHandle, when sent, must name the credential's owner."""
    response = payload.get("response") if isinstance(payload, dict) else None
    handle = response.get("userHandle") if isinstance(response, dict) else None
    if handle is None:
        return True
    try:
        return isinstance(handle, str) and _unb64(handle) == account_id.encode()
    except ValueError:
        return False


@bp.route("/account/passkeys/options", methods=["POST"])
def passkey_register_options():
    sess = sessions.current()
    if sess is None:
        return _fail(_("Sign in first."), 401)
    if not recent(sess):
        return _fail(_("For your safety, sign in again before adding a passkey."), 401)
    account = db.session.get(Account, sess["account_id"])
    rp_id, _origin = _rp()
    existing = db.session.scalars(db.select(WebAuthnCredential).filter_by(
        account_id=account.id)).all()
    options = generate_registration_options(
        rp_id=rp_id, rp_name="DinhDanh", user_name=account.full_name,
        user_id=account.id.encode(), user_display_name=account.full_name,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=_unb64(c.credential_id))
                             for c in existing])
    session["webauthn_reg"] = _b64(options.challenge)
    return current_app.response_class(options_to_json(options), mimetype="application/json")


@bp.route("/account/passkeys/verify", methods=["POST"])
def passkey_register_verify():
    sess = sessions.current()
    challenge = session.pop("webauthn_reg", None)
    if sess is None or challenge is None:
        return _fail(_("Sign in first."), 401)
    rp_id, origin = _rp()
    try:
        verified = verify_registration_response(
            credential=request.get_data(as_text=True), expected_challenge=_unb64(challenge),
            expected_rp_id=rp_id, expected_origin=origin, require_user_verification=True)
    except (WebAuthnException, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return _fail(_("The passkey could not be registered. Try again."))
    row = WebAuthnCredential(account_id=sess["account_id"],
                             credential_id=_b64(verified.credential_id),
                             public_key=_b64(verified.credential_public_key),
                             sign_count=verified.sign_count,
                             name=(request.args.get("name") or _("Passkey"))[:100])
    db.session.add(row)
    db.session.commit()
    audit.record("passkey.registered", account_id=sess["account_id"])
    return jsonify(ok=True)


@bp.route("/login/passkey/options", methods=["POST"])
def passkey_login_options():
    rp_id, _origin = _rp()
    options = generate_authentication_options(
        rp_id=rp_id, user_verification=UserVerificationRequirement.REQUIRED)
    session["webauthn_auth"] = _b64(options.challenge)
    return current_app.response_class(options_to_json(options), mimetype="application/json")


@bp.route("/login/passkey/verify", methods=["POST"])
def passkey_login_verify():
    challenge = session.pop("webauthn_auth", None)
    if challenge is None:
        return _fail(_("The sign-in took too long. Try again."))
    try:
        payload = json.loads(request.get_data(as_text=True) or "{}")
        cred_id = payload.get("id") if isinstance(payload, dict) else None
    except ValueError:
        payload, cred_id = None, None
    row = db.session.scalar(db.select(WebAuthnCredential).filter_by(credential_id=cred_id)) \
        if isinstance(cred_id, str) else None
    if row is None:
        audit.record("login.passkey_unknown")
        return _fail(_("This passkey is not registered with us."), 401)
    if not _user_handle_matches(payload, row.account_id):
        audit.record("login.passkey_failure", account_id=row.account_id)
        return _fail(_("The passkey could not be verified."), 401)
    rp_id, origin = _rp()
    try:
        verified = verify_authentication_response(
            credential=payload, expected_challenge=_unb64(challenge), expected_rp_id=rp_id,
            expected_origin=origin, credential_public_key=_unb64(row.public_key),
            credential_current_sign_count=row.sign_count, require_user_verification=True)
    except (WebAuthnException, ValueError, KeyError, TypeError, IndexError):
        # IndexError: the library indexes into a malformed stored key (a corrupt row)
        audit.record("login.passkey_failure", account_id=row.account_id)
        return _fail(_("The passkey could not be verified."), 401)
    account = db.session.get(Account, row.account_id)
    if account is None or not account.active:
        return _fail(_("This account cannot sign in. Ask at your commune police station."), 403)
    handle = request.args.get("interaction")
    data = load_interaction(handle) if handle else None
    sess = sessions.current()
    stepping_up = bool(data and data.get("step_up") and sess)
    if stepping_up and sess["account_id"] != account.id:
        audit.record("login.passkey_failure", account_id=row.account_id, reason="other_account")
        return _fail(_("This passkey belongs to another account."), 403)
    row.sign_count = verified.new_sign_count
    row.last_used_at = utcnow()
    db.session.commit()
    if stepping_up:  # a second factor for the session the authorization is waiting on
        step_up(account, sess, ["hwk", "user"])
        return jsonify(ok=True, next=resume(handle).location)
    finish_login(account, ["hwk", "user"])
    target = after_login(handle, sessions.current())
    return jsonify(ok=True, next=target.location)
