"""Issue 5, criterion 3: on a first visit (fresh profile, empty cache) the login page with
everything it loads weighs at most 100 KB uncompressed, and it works with JavaScript off.

`pytest -s` prints the per-resource report. The icon a desktop browser fetches (the page's
`<link rel=icon>`, else /favicon.ico) is counted too, fetched here if headless Chromium did not.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest

from tests.browser.test_pages import authorize_url
from tests.helpers import CITIZEN_PASSWORD, CITIZEN_PID, register_client

LIMIT = 100 * 1024  # bytes, uncompressed bodies of every resource


def first_load(browser, url: str, javascript: bool) -> list[dict]:
    """Every response of a first visit to `url`: type, status, body size, headers size, path."""
    context = browser.new_context(java_script_enabled=javascript)  # new: empty cache, no cookies
    page = context.new_page()
    responses = []
    page.on("response", lambda response: responses.append(response))
    page.goto(url)
    page.wait_for_load_state("networkidle")
    icon = page.evaluate("(document.querySelector('link[rel~=icon]') || {}).href || ''") \
        or urljoin(url, "/favicon.ico")
    rows = []
    for response in responses:
        redirect = 300 <= response.status < 400
        body = b"" if redirect else response.body()  # decoded: the uncompressed size
        rows.append({"type": "favicon" if response.url == icon else
                     response.request.resource_type, "status": response.status,
                     "body": len(body), "url": response.url,
                     "headers": response.request.sizes()["responseHeadersSize"]})
    if not any(row["type"] == "favicon" for row in rows):
        answer = context.request.get(icon, headers={"Accept-Encoding": "identity"})
        rows.append({"type": "favicon", "status": answer.status, "body": len(answer.body()),
                     "url": answer.url, "headers": sum(len(k) + len(v) + 4 for k, v in
                                                       answer.headers.items())})
    context.close()
    return rows


def report(title: str, rows: list[dict]) -> str:
    lines = [title, f"  {'type':<11}{'status':>6}{'body B':>9}{'headers B':>11}  path"]
    for row in rows:
        parts = urlsplit(row["url"])
        path = parts.path + (f"?{parts.query[:40]}..." if parts.query else "")
        lines.append(f"  {row['type']:<11}{row['status']:>6}{row['body']:>9,}"
                     f"{row['headers']:>11,}  {path}")
    body, headers = sum(r["body"] for r in rows), sum(r["headers"] for r in rows)
    lines.append(f"  {'total':<17}{body:>9,}{headers:>11,}  ({len(rows)} responses; "
                 f"limit {LIMIT:,} B of bodies)")
    return "\n".join(lines)


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
@pytest.mark.parametrize("arrival", ["direct", "from-a-portal"])
def test_first_load_of_the_login_page_is_at_most_100_kb(browser, live_app, arrival,
                                                         javascript):
    app, base = live_app
    url = f"{base}/login" if arrival == "direct" else authorize_url(base, register_client(app))
    rows = first_load(browser, url, javascript)
    print("\n" + report(f"login page, first load, {arrival.replace('-', ' ')}, JavaScript "
                        f"{'on' if javascript else 'off'}:", rows))
    assert [r["type"] for r in rows if r["type"] == "document" and r["status"] == 200] == \
        ["document"]
    assert {r["type"] for r in rows} >= {"document", "stylesheet", "favicon"}
    assert all(r["status"] < 400 for r in rows), "a resource of the page is missing"
    assert sum(r["body"] for r in rows) <= LIMIT
    assert sum(r["body"] + r["headers"] for r in rows) <= LIMIT  # what goes over the wire


def test_login_page_signs_in_without_javascript(browser, live_app):
    """test_pages.py signs in for a portal without JavaScript; this is the citizen who opens
    the login page directly: the form posts, a mistake is explained, then the account opens."""
    _app, base = live_app
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{base}/login")
    assert page.locator("#passkey-area").is_hidden()  # passkeys need JavaScript: not offered
    page.fill("#national_id", CITIZEN_PID)
    page.fill("#password", "not-the-password")
    with page.expect_navigation():
        page.press("#password", "Enter")
    assert page.locator("[role=alert]").is_visible()
    assert page.input_value("#national_id") == CITIZEN_PID
    page.fill("#password", CITIZEN_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{base}/account")
    assert page.locator("h1").inner_text()  # "Hello, <name>"
    assert page.locator("form[action='/logout/confirm']").count() == 1
    context.close()
