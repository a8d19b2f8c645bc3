"""A citizen's browser for end-to-end tests: a `requests.Session` (cookie jar) that follows the
IdP's redirects and submits its login and consent forms as a person would, and stops at the
redirect to the relying party without following it."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import requests

CITIZEN_PID = "001199000001"
CITIZEN_PASSWORD = "Citizen-Demo-1"
MAX_HOPS = 12


def hidden_field(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"the page has no hidden {name!r} field:\n{html[:1000]}"
    return match.group(1)


class Browser:
    def __init__(self, issuer: str):
        self.issuer = issuer
        self.session = requests.Session()
        self.visited: list[str] = []  # IdP paths seen, to assert on the interaction

    def close(self) -> None:
        self.session.close()

    def get(self, url: str) -> requests.Response:
        return self.session.get(url, allow_redirects=False, timeout=15)

    def _post_form(self, url: str, page: str, **fields) -> requests.Response:
        data = {"csrf_token": hidden_field(page, "csrf_token"), **fields}
        return self.session.post(url, data=data, allow_redirects=False, timeout=15,
                                 headers={"Referer": url})

    def run_to_client(self, url: str, redirect_uri: str, *, consent: bool = True,
                      pid: str = CITIZEN_PID, password: str = CITIZEN_PASSWORD) -> str:
        """Open `url`, sign in and consent as needed, and return the URL that the IdP redirects
        to at `redirect_uri` (not followed: the relying party's callback is the test itself)."""
        response = self.get(url)
        for _ in range(MAX_HOPS):
            if response.status_code in (301, 302, 303, 307, 308):
                location = urljoin(response.url, response.headers["Location"])
                if location.split("?")[0] == redirect_uri.split("?")[0]:
                    return location
                assert location.startswith(self.issuer), f"unexpected redirect to {location}"
                self.visited.append(urlsplit(location).path)
                response = self.get(location)
                continue
            assert response.status_code == 200, \
                f"{response.request.method} {response.url}: {response.status_code}\n" \
                f"{response.text[:1000]}"
            path = urlsplit(response.url).path
            if path == "/login":
                response = self._post_form(
                    urljoin(self.issuer, "/login"), response.text, national_id=pid,
                    password=password, interaction=hidden_field(response.text, "interaction"))
            elif path == "/consent":
                response = self._post_form(
                    response.url, response.text,
                    interaction=hidden_field(response.text, "interaction"),
                    decision="allow" if consent else "deny")
            else:
                raise AssertionError(f"stuck on {response.url}:\n{response.text[:1000]}")
        raise AssertionError(f"more than {MAX_HOPS} redirects before reaching the client")
