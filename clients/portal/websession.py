"""The portal's own session: a random value in the portal's cookie (HttpOnly, SameSite=Lax,
Secure outside development), the data server-side in the store. Also the language choice and
the CSRF token, both kept in that session."""

from __future__ import annotations

import hmac
import secrets

from flask import current_app, g, request

from .store import key_hash

LANGUAGES = ("vi", "en")


class PortalSession:
    def __init__(self, cookie_value: str | None, data: dict | None):
        self.cookie_value = cookie_value if data is not None else None
        self.data = data if data is not None else {}
        self.dirty = False
        self.replaced: str | None = None  # old cookie value to forget (rotation)

    @property
    def user(self) -> dict | None:
        return self.data.get("user")

    def changed(self) -> None:
        self.dirty = True

    def rotate(self) -> None:
        """A new cookie value (at sign-in and sign-out): no session fixation."""
        self.replaced = self.cookie_value
        self.cookie_value = None
        self.dirty = True

    def csrf_token(self) -> str:
        if "csrf" not in self.data:
            self.data["csrf"] = secrets.token_urlsafe(24)
            self.changed()
        return self.data["csrf"]

    def csrf_ok(self, value: object) -> bool:
        expected = self.data.get("csrf")
        return bool(expected) and isinstance(value, str) and \
            hmac.compare_digest(expected, value)


def current() -> PortalSession:
    if "portal_session" not in g:
        value = request.cookies.get(current_app.config["PROFILE"].portal.cookie)
        data = None
        if value and len(value) < 100:
            data = current_app.extensions["portal_store"].load(key_hash(value))
        g.portal_session = PortalSession(value, data)
    return g.portal_session


def current_lang() -> str:
    choice = request.args.get("lang") if request else None
    if choice in LANGUAGES:
        return choice
    return current().data.get("lang", "vi")


def _remember_lang() -> None:
    choice = request.args.get("lang")
    if choice in LANGUAGES and current().data.get("lang") != choice:
        current().data["lang"] = choice
        current().changed()


def _save(response):
    sess = g.get("portal_session")
    if sess is None or not sess.dirty:
        return response
    conf = current_app.config
    store = current_app.extensions["portal_store"]
    if sess.replaced:
        store.delete(key_hash(sess.replaced))
    if sess.cookie_value is None:
        sess.cookie_value = secrets.token_urlsafe(32)
    store.save(key_hash(sess.cookie_value), sess.data, conf["SESSION_TTL"])
    response.set_cookie(conf["PROFILE"].portal.cookie, sess.cookie_value, httponly=True,
                        samesite="Lax", secure=conf["COOKIE_SECURE"], path="/")
    response.vary.add("Cookie")
    return response


def destroy() -> None:
    """End this browser's portal session (sign-out); keeps only the language."""
    sess = current()
    lang = sess.data.get("lang")
    sess.rotate()
    sess.data = {"lang": lang} if lang else {}


def init_app(app) -> None:
    app.before_request(_remember_lang)
    app.after_request(_save)
