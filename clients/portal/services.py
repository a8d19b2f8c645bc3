"""The portals' services: what a citizen comes for once signed in. Each page states what it
needs; a session that does not satisfy it is sent back through /login (step-up)."""

from __future__ import annotations

import hashlib
import secrets
import time

from flask import Blueprint, redirect, request
from flask_babel import lazy_gettext as _l

from . import websession
from .acr import LOA2, satisfies
from .errors import PortalError
from .views import login_url, page

APPLICATION_KINDS = {
    "residence": _l("Confirmation of residence"),
    "birth-copy": _l("Copy of a birth certificate"),
    "business": _l("Household business registration"),
}
MAX_DETAILS = 1000


def _needs(acr: str | None = None):
    """None when the session satisfies `acr` (or any sign-in when None); else a redirect."""
    user = websession.current().user
    if user and (acr is None or satisfies(user.get("acr"), acr)):
        return None
    return redirect(login_url(request.path, acr), 303)


def apply():
    """An application at level 1: a short form (POST + CSRF), then a reference number."""
    if (gate := _needs()) is not None:
        if request.method == "POST":  # the form outlived the session: say so, lose nothing
            raise PortalError("session_expired", "apply form without a session")
        return gate
    sess = websession.current()
    form, problems = {"kind": "residence", "details": ""}, []
    if request.method == "POST":
        if not sess.csrf_ok(request.form.get("csrf_token")):
            raise PortalError("csrf", "apply form")
        form = {"kind": request.form.get("kind", ""), "details":
                request.form.get("details", "").strip()}
        if form["kind"] not in APPLICATION_KINDS:
            problems.append(("kind", _l("Choose the kind of application.")))
        if not form["details"] or len(form["details"]) > MAX_DETAILS:
            problems.append(("details", _l("Describe your request in 1 to 1000 characters.")))
        if not problems:
            reference = f"DVC-{time.strftime('%Y%m%d')}-{secrets.token_hex(3).upper()}"
            return page("applied.html", reference=reference,
                        kind=APPLICATION_KINDS[form["kind"]])
    return page("apply.html", kinds=APPLICATION_KINDS, form=form, problems=dict(problems),
                csrf_token=sess.csrf_token(), status=400 if problems else 200)


def land():
    """A level-2 service: a level-1 session goes back to the IdP asking for level 2."""
    if (gate := _needs(LOA2)) is not None:
        return gate
    user = websession.current().user
    seed = int(hashlib.sha256(user["sub"].encode()).hexdigest()[:8], 16)
    parcels = [{"number": f"{seed % 90 + 10}/{seed % 700 + 100}", "area": seed % 400 + 60,
                "use": _l("Residential land")}]
    return page("land.html", parcels=parcels)


def contributions():
    """A synthetic contribution history (derived from the pairwise sub, so stable)."""
    if (gate := _needs()) is not None:
        return gate
    user = websession.current().user
    seed = int(hashlib.sha256(user["sub"].encode()).hexdigest()[:8], 16)
    base = 4_000_000 + seed % 20 * 250_000
    now = time.gmtime()
    rows = []
    for back in range(12):
        year, month = now.tm_year, now.tm_mon - 1 - back
        while month < 1:
            year, month = year - 1, month + 12
        salary = base + (0 if back < 6 else -250_000)
        rows.append({"period": f"{month:02d}/{year}", "salary": salary,
                     "paid": salary * 8 // 100, "employer_paid": salary * 175 // 1000})
    return page("contributions.html", rows=rows)


VIEWS = {"services.apply": ("/apply", apply, ["GET", "POST"]),
         "services.land": ("/land", land, ["GET"]),
         "services.contributions": ("/contributions", contributions, ["GET"])}


def make_services(profile) -> Blueprint:
    """Only this portal's services get routes."""
    bp = Blueprint("services", __name__)
    for service in profile.services:
        path, view, methods = VIEWS[service.endpoint]
        bp.add_url_rule(path, view.__name__, view, methods=methods)
    return bp
