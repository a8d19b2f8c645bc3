"""Test helpers that act like a relying party and a citizen (no mocks of our own code)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from idp.clients import create_client, validate_metadata
from idp.extensions import db

CITIZEN_PID = "001199000001"
CITIZEN_PASSWORD = "Citizen-Demo-1"
REDIRECT_URI = "https://portal-a.example.vn/callback"


@dataclass
class RP:
    """A registered client and what it needs to run flows."""

    client_id: str
    client_secret: str | None
    redirect_uri: str
    meta: dict = field(default_factory=dict)

    @property
    def auth(self):
        return (self.client_id, self.client_secret) if self.client_secret else None


def register_client(app, first_party: bool = False, public_subject: bool = False,
                    **metadata) -> RP:
    raw = {"client_name": "Cổng dịch vụ công A", "redirect_uris": [REDIRECT_URI],
           "grant_types": ["authorization_code", "refresh_token"],
           "scope": "openid profile email phone address offline_access national_id"}
    raw.update(metadata)
    with app.app_context():
        meta = validate_metadata(raw, allow_http=True)
        client, secret = create_client(meta, first_party=first_party,
                                       public_subject=public_subject)
        rp = RP(client.client_id, secret.get("client_secret"), raw["redirect_uris"][0], meta)
        db.session.remove()
    return rp


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .rstrip(b"=").decode()
    return verifier, challenge


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def query_of(location: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def login(client, pid: str = CITIZEN_PID, password: str = CITIZEN_PASSWORD,
          interaction: str | None = None):
    """Submit the login form like a browser; returns the POST response."""
    page = client.get("/login", query_string={"interaction": interaction} if interaction else {})
    data = {"csrf_token": csrf_token(page.text), "national_id": pid, "password": password}
    if interaction:
        data["interaction"] = interaction
    return client.post("/login", data=data)


def authorize_params(rp: RP, **extra) -> dict:
    params = {"client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
              "response_type": "code", "scope": "openid profile",
              "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8)}
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


def follow_to_client(client, response, rp: RP, consent: bool = True, max_hops: int = 10):
    """Follow IdP redirects (login already done) through consent until the client's redirect."""
    for _ in range(max_hops):
        location = response.headers.get("Location")
        if response.status_code not in (302, 303) or location is None:
            return response
        if location.startswith(rp.redirect_uri.split("?")[0]):
            return response
        path = urlsplit(location)
        response = client.get(path.path + ("?" + path.query if path.query else ""))
        if path.path == "/consent" and response.status_code == 200 and consent:
            interaction = query_of(location)["interaction"]
            response = client.post("/consent", data={"csrf_token": csrf_token(response.text),
                                                     "interaction": interaction,
                                                     "decision": "allow"})
    return response


def get_code(client, rp: RP, login_first: bool = True, **params) -> tuple[dict, dict]:
    """Run the authorization request to the client's redirect; returns (callback query, params)."""
    params = authorize_params(rp, **params)
    response = client.get("/authorize", query_string=params)
    location = response.headers.get("Location", "")
    if login_first and location.startswith("/login"):
        interaction = query_of(location)["interaction"]
        response = login(client, interaction=interaction)
    response = follow_to_client(client, response, rp)
    assert response.status_code in (302, 303), response.text[:500]
    return query_of(response.headers["Location"]), params


def exchange(client, rp: RP, code: str, verifier: str | None = None, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri}
    if verifier:
        data["code_verifier"] = verifier
    data.update(extra)
    if rp.client_secret and rp.meta.get("token_endpoint_auth_method",
                                        "client_secret_basic") == "client_secret_basic":
        return client.post("/token", data=data, auth=rp.auth)
    if rp.client_secret:
        data.update(client_id=rp.client_id, client_secret=rp.client_secret)
    else:
        data.setdefault("client_id", rp.client_id)
    return client.post("/token", data=data)


def full_login(client, rp: RP, **params) -> dict:
    """Authorization code flow with PKCE to tokens; returns the token response JSON."""
    verifier, challenge = pkce_pair()
    callback, _ = get_code(client, rp, code_challenge=challenge, code_challenge_method="S256",
                           **params)
    response = exchange(client, rp, callback["code"], verifier)
    assert response.status_code == 200, response.json
    return response.json
