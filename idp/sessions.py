"""SSO sessions in Redis behind an opaque HttpOnly cookie.

The cookie holds 256 random bits; Redis keys use its hash, so a Redis dump cannot be replayed
as a cookie. Each session has its own `sid` (OIDC session id, shared with portals), an idle
timeout refreshed on use, and an absolute lifetime.
"""

from __future__ import annotations

import time

from flask import current_app, g, request

from . import store
from .crypto import random_token, sha256_b64

COOKIE = "idp_session"


def _key(handle: str) -> str:
    return f"sso:{handle}"


def _ttl(sess: dict) -> int:
    conf = current_app.config
    absolute_left = sess["created"] + conf["SESSION_ABSOLUTE_TTL"] - time.time()
    return int(max(1, min(conf["SESSION_IDLE_TTL"], absolute_left)))


def _save(sess: dict) -> None:
    store.put_json(_key(sess["handle"]), sess, _ttl(sess))
    store.kv().set(f"sid:{sess['sid']}", sess["handle"], ex=_ttl(sess))


def create(account_id: str, amr: list[str], acr: str) -> dict:
    """Start a session after a login, always with a fresh cookie (no session fixation).

    Signing in again as the same citizen keeps the session's `sid` and portals (only the
    authentication time and methods change); signing in as someone else first logs the previous
    citizen out everywhere, portals included.
    """
    old = current()
    keep = {}
    if old and old["account_id"] == account_id:
        keep = {k: old[k] for k in ("sid", "created", "clients")}
        destroy(old)
    elif old:
        from .oauth2.logout import logout_session

        logout_session(old)
    cookie = random_token(32)
    now = int(time.time())
    sess = {"handle": sha256_b64(cookie), "sid": random_token(16), "account_id": account_id,
            "auth_time": now, "created": now, "last_seen": now, "amr": amr, "acr": acr,
            "clients": [], "user_agent": (request.user_agent.string or "")[:120],
            "ip": request.remote_addr, **keep}
    _save(sess)
    store.kv().sadd(f"acct-sso:{account_id}", sess["handle"])
    g.set_session_cookie = cookie
    g.sso_session = sess
    return sess


def current() -> dict | None:
    """The live session of this browser, refreshed for idle timeout, or None."""
    if "sso_session" in g:
        return g.sso_session
    cookie = request.cookies.get(COOKIE)
    sess = None
    if cookie and len(cookie) < 100:
        sess = store.get_json(_key(sha256_b64(cookie)))
        now = int(time.time())
        if sess and sess["created"] + current_app.config["SESSION_ABSOLUTE_TTL"] <= now:
            destroy(sess)
            sess = None
        elif sess and now - sess["last_seen"] > 30:  # refresh at most every 30 s: cheap
            sess["last_seen"] = now
            _save(sess)
    g.sso_session = sess
    return sess


def renew(sess: dict, **changes) -> dict:
    """The same session (sid, auth_time, portals) under a fresh cookie, with `changes` applied:
    for a step-up, a privilege change after which the old cookie must not work (no fixation)."""
    kv = store.kv()
    kv.delete(_key(sess["handle"]))
    kv.srem(f"acct-sso:{sess['account_id']}", sess["handle"])
    cookie = random_token(32)
    sess = {**sess, **changes, "handle": sha256_b64(cookie), "last_seen": int(time.time())}
    _save(sess)  # also points sid at the new handle, for back-channel logout
    kv.sadd(f"acct-sso:{sess['account_id']}", sess["handle"])
    g.set_session_cookie = cookie
    g.sso_session = sess
    return sess


def update(sess: dict) -> None:
    _save(sess)


def add_client(sess: dict, client_id: str) -> None:
    if client_id not in sess["clients"]:
        sess["clients"].append(client_id)
        _save(sess)


def by_sid(sid: str) -> dict | None:
    handle = store.kv().get(f"sid:{sid}") if isinstance(sid, str) else None
    return store.get_json(_key(handle)) if handle else None


def by_handle(handle: str) -> dict | None:
    return store.get_json(_key(handle))


def destroy(sess: dict) -> None:
    kv = store.kv()
    kv.delete(_key(sess["handle"]), f"sid:{sess['sid']}")
    kv.srem(f"acct-sso:{sess['account_id']}", sess["handle"])
    if g.get("sso_session") and g.sso_session.get("handle") == sess["handle"]:
        g.sso_session = None
        g.clear_session_cookie = True


def for_account(account_id: str) -> list[dict]:
    """Live sessions of an account (for the account page); prunes expired handles."""
    kv = store.kv()
    out = []
    for handle in kv.smembers(f"acct-sso:{account_id}"):
        sess = by_handle(handle)
        if sess:
            out.append(sess)
        else:
            kv.srem(f"acct-sso:{account_id}", handle)
    return sorted(out, key=lambda s: -s["created"])


def apply_cookie(response):
    """after_request: set or clear the cookie decided during the request."""
    conf = current_app.config
    if g.get("set_session_cookie"):
        response.set_cookie(COOKIE, g.set_session_cookie, httponly=True,
                            secure=conf["SECURE_COOKIES"], samesite="Lax", path="/",
                            max_age=conf["SESSION_ABSOLUTE_TTL"])
    elif g.get("clear_session_cookie"):
        response.delete_cookie(COOKIE, path="/", httponly=True, secure=conf["SECURE_COOKIES"],
                               samesite="Lax")
    return response
