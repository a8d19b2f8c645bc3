"""The sign-in/sign-out scenario every portal passes (Python and Node alike), driven by a
scripted citizen: a `requests.Session` that follows redirects between the portal and the IdP
and fills in the IdP's pages as a person would (login, one-time code, step-up, consent)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from html import unescape
from urllib.parse import urljoin, urlsplit

import pyotp
import requests

MAX_HOPS = 20
REDIRECTS = (301, 302, 303, 307, 308)
_USED_STEPS: dict[str, int] = {}  # TOTP secret -> last time step whose code was sent
_SECRETS: dict[tuple[str, str], str] = {}  # (issuer, national id) -> TOTP secret set up


def one_time_code(secret: str) -> str:
    """The current TOTP code; a code is single use (RFC 6238 5.2), so when this secret's code
    for the current 30-second step was already sent, wait for the next step."""
    totp = pyotp.TOTP(secret)
    step = int(time.time() // totp.interval)
    if _USED_STEPS.get(secret) == step:
        time.sleep((step + 1) * totp.interval - time.time() + 0.2)
        step += 1
    _USED_STEPS[secret] = step
    return totp.at(step * totp.interval)


def hidden_field(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"the page has no {name!r} field:\n{html[:1500]}"
    return unescape(match.group(1))


@dataclass
class Citizen:
    """A scripted browser for one citizen; `totp_secret` is learnt when the IdP sets one up."""
    issuer: str
    national_id: str
    password: str
    totp_secret: str | None = None
    consent: bool = True
    http: requests.Session = field(default_factory=requests.Session)
    seen: list[str] = field(default_factory=list)  # IdP pages in order: "/login", "/consent"

    def get(self, url: str) -> requests.Response:
        return self.http.get(url, allow_redirects=False, timeout=20)

    def post(self, url: str, data: dict) -> requests.Response:
        return self.http.post(url, data=data, allow_redirects=False, timeout=20,
                              headers={"Referer": url})

    def follow(self, response: requests.Response) -> requests.Response:
        """Follow redirects and answer the IdP's pages until a page outside the IdP."""
        for _ in range(MAX_HOPS):
            if response.status_code in REDIRECTS:
                response = self.get(urljoin(response.url, response.headers["Location"]))
                continue
            if not response.url.startswith(self.issuer + "/"):
                return response
            path = urlsplit(response.url).path
            self.seen.append(path)
            assert response.status_code == 200, \
                f"IdP page {response.url}: {response.status_code}\n{response.text[:1500]}"
            response = self._answer(path, response)
        raise AssertionError(f"more than {MAX_HOPS} hops")

    def _form(self, page: requests.Response, **fields) -> requests.Response:
        data = {"csrf_token": hidden_field(page.text, "csrf_token"), **fields}
        if 'name="interaction"' in page.text:
            data["interaction"] = hidden_field(page.text, "interaction")
        form = re.search(r'<form method="post"(?: action="([^"]*)")?', page.text)
        assert form, f"no form on {page.url}:\n{page.text[:1500]}"
        return self.post(urljoin(page.url, unescape(form.group(1) or page.url)), data)

    def _code(self) -> str:
        self.totp_secret = self.totp_secret or _SECRETS.get((self.issuer, self.national_id))
        assert self.totp_secret, "the IdP asks for a one-time code but none was set up"
        return one_time_code(self.totp_secret)

    def _answer(self, path: str, page: requests.Response) -> requests.Response:
        if path == "/login":
            return self._form(page, national_id=self.national_id, password=self.password)
        if path == "/login/otp":
            return self._form(page, code=self._code())
        if path == "/login/step-up":
            secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page.text)
            if secret:  # no second factor yet: the IdP offers to set up an authenticator app
                self.totp_secret = secret.group(1)
                _SECRETS[(self.issuer, self.national_id)] = self.totp_secret
                return self._form(page, code=self._code(), action="setup")
            if 'value="code"' in page.text:
                return self._form(page, code=self._code(), action="code")
            relogin = re.search(r'href="([^"]*reauth=1[^"]*)"', page.text)
            assert relogin, f"unexpected step-up page:\n{page.text[:1500]}"
            return self.get(urljoin(page.url, unescape(relogin.group(1))))
        if path == "/login/step-up/level":
            return self._form(page)
        if path == "/consent":
            return self._form(page, decision="allow" if self.consent else "deny")
        raise AssertionError(f"stuck on {page.url}:\n{page.text[:1500]}")

    def close(self) -> None:
        self.http.close()


def sign_in(citizen: Citizen, base_url: str, login_path: str = "/login") -> requests.Response:
    """Start at the portal's /login and come back to a portal page."""
    page = citizen.follow(citizen.get(base_url + login_path))
    assert page.url.startswith(base_url), f"ended at {page.url}"
    return page


def sign_out(citizen: Citizen, base_url: str) -> requests.Response:
    """The portal's logout form (GET page, POST with its CSRF token), then the IdP's logout
    and back to the portal."""
    form = citizen.get(base_url + "/logout")
    assert form.status_code == 200, form.text[:1000]
    response = citizen.post(base_url + "/logout",
                            {"csrf_token": hidden_field(form.text, "csrf_token")})
    assert response.status_code in REDIRECTS, response.text[:1000]
    end_session = urljoin(base_url, response.headers["Location"])
    assert end_session.startswith(citizen.issuer + "/logout?"), end_session
    return citizen.follow(response)


def sign_in_and_out(base_url: str, issuer: str, *, national_id: str, password: str,
                    totp_secret: str | None = None) -> dict:
    """/login -> IdP login (+ second factor) -> consent -> /callback -> /me (200, sub) ->
    /logout (form) -> IdP logout -> /me 401. Returns what the citizen saw."""
    citizen = Citizen(issuer, national_id, password, totp_secret)
    try:
        landed = sign_in(citizen, base_url)
        assert landed.status_code == 200, f"{landed.url}: {landed.status_code}\n" \
                                          f"{landed.text[:1500]}"
        me = citizen.get(base_url + "/me")
        assert me.status_code == 200, me.text[:500]
        claims = me.json()
        assert claims["sub"]
        signed_in_pages = list(citizen.seen)
        home = sign_out(citizen, base_url)
        after = citizen.get(base_url + "/me")
        return {"claims": claims, "idp_pages": signed_in_pages, "landed": landed,
                "home_after_logout": home, "me_after_logout": after.status_code,
                "totp_secret": citizen.totp_secret}
    finally:
        citizen.close()
