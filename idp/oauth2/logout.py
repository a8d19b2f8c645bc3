"""Logout: RP-initiated (OIDC RP-Initiated Logout 1.0), back-channel (OIDC Back-Channel Logout
1.0, logout tokens delivered by background jobs with retries) and front-channel (OIDC
Front-Channel Logout 1.0, iframes on the logout page)."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from flask import current_app, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from joserfc.errors import JoseError

from .. import audit, jobs, keys, sessions
from ..clients import get_client
from ..crypto import random_token
from ..extensions import db
from ..fetch import FetchError, fetch
from ..identity import subject_for
from ..models import Account
from .id_token import verify_hint
from .responses import add_query

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def _deliver_backchannel(client_id: str, uri: str, logout_token: str) -> bool:
    try:
        response = fetch(uri, method="POST", data={"logout_token": logout_token},
                         accept="*/*")
    except FetchError as exc:
        current_app.logger.warning("back-channel logout to %s failed: %s", client_id, exc)
        return False
    return response.status_code in (200, 204)


def logout_token(client, account, sid: str) -> str:
    now = int(time.time())
    claims = {"iss": current_app.config["ISSUER"], "aud": client.client_id, "iat": now,
              "exp": now + 120, "jti": random_token(16), "events": {BACKCHANNEL_EVENT: {}},
              "sub": subject_for(client, account), "sid": sid}
    return keys.sign(claims, client.meta("id_token_signed_response_alg", "RS256"),
                     typ="logout+jwt")


def logout_session(sess: dict) -> list[dict]:
    """End an SSO session and notify every portal in it. Returns front-channel iframes."""
    account = db.session.get(Account, sess["account_id"])
    frames = []
    for client_id in sess.get("clients", []):
        client = get_client(client_id)
        if client is None or account is None:
            continue
        if client.meta("backchannel_logout_uri"):
            jobs.enqueue(_deliver_backchannel, client.client_id,
                         client.meta("backchannel_logout_uri"),
                         logout_token(client, account, sess["sid"]))
        if client.meta("frontchannel_logout_uri"):
            frames.append(add_query(client.meta("frontchannel_logout_uri"),
                                    {"iss": current_app.config["ISSUER"], "sid": sess["sid"]}))
    sessions.destroy(sess)
    audit.record("logout", account_id=sess["account_id"], clients=len(sess.get("clients", [])))
    return frames


def _hint_claims(hint: str | None):
    if not hint:
        return None
    try:
        return verify_hint(hint)
    except (JoseError, ValueError, TypeError):
        return None


def end_session_endpoint():
    """GET or POST /logout with id_token_hint, post_logout_redirect_uri, state, client_id."""
    params = request.values
    hint = _hint_claims(params.get("id_token_hint"))
    client_id = params.get("client_id")
    if hint is not None:
        aud = hint.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if client_id and client_id not in auds:
            hint = None
        client_id = client_id or (auds[0] if auds else None)
    client = get_client(client_id) if client_id else None
    target = params.get("post_logout_redirect_uri")
    valid_target = bool(target and client and hint is not None and
                        target in client.meta("post_logout_redirect_uris", []))
    state = params.get("state")
    sess = sessions.current()
    # The hint must belong to this browser's session, else a foreign page could log us out.
    hint_matches = bool(sess and hint and (hint.get("sid") == sess["sid"]))
    if hint_matches or (sess is None and hint is not None):
        frames = logout_session(sess) if sess else []
        return finish(frames, target if valid_target else None, state)
    pending = {"target": target if valid_target else None, "state": state,
               "client": client.display_name if client else None}
    g.logout_pending = pending
    if pending["target"]:
        g.form_action = pending["target"]  # CSP form-action covers the redirect after submit
    return render_template("logout_confirm.html", pending=pending, signed_in=sess is not None,
                           token=_confirm_token(pending))


def _confirm_token(pending: dict) -> str:
    from .. import store

    handle = random_token(16)
    store.put_json(f"logout:{handle}", pending, 600)
    return handle


def confirm():
    """POST from the confirmation page (CSRF-protected): log out, then redirect if allowed."""
    from .. import store

    pending = store.take_json(f"logout:{request.form.get('token', '')}") or {}
    sess = sessions.current()
    frames = logout_session(sess) if sess else []
    return finish(frames, pending.get("target"), pending.get("state"))


def finish(frames: list[str], target: str | None, state: str | None):
    location = add_query(target, {"state": state}) if target else None
    if frames:
        g.frame_sources = frames
        return render_template("logged_out.html", frames=frames, next=location)
    if location:
        return redirect(location, code=303)
    return render_template("logged_out.html", frames=[], next=None)


__all__ = ["_", "confirm", "end_session_endpoint", "logout_session", "url_for", "urlencode"]
