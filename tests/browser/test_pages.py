"""What a citizen sees in a real browser: accessibility (axe-core, WCAG 2.2 AA), the pages
without JavaScript, and passkeys with Chromium's virtual authenticator."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.helpers import CITIZEN_PASSWORD, CITIZEN_PID, pkce_pair, register_client

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def axe_violations(page, axe_source: str) -> list[str]:
    page.add_script_tag(content=axe_source)
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS)
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes: "
            f"{v['nodes'][0]['target']})" for v in result["violations"]]


def sign_in(page, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#national_id", CITIZEN_PID)
    page.fill("#password", CITIZEN_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{base}/account")


def authorize_url(base: str, rp) -> str:
    _, challenge = pkce_pair()
    return f"{base}/authorize?" + urlencode({
        "client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "response_type": "code",
        "scope": "openid profile email address", "state": "browser-state",
        "code_challenge": challenge, "code_challenge_method": "S256"})


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_pages_meet_wcag_22_aa(browser, live_app, axe_source, lang):
    app, base = live_app
    rp = register_client(app, policy_uri="https://portal-a.example.vn/privacy",
                         tos_uri="https://portal-a.example.vn/terms")
    context = browser.new_context(bypass_csp=True)  # our CSP (rightly) blocks injected axe
    page = context.new_page()
    page.goto(f"{base}/lang/{lang}?next=/login")
    problems = {}
    page.goto(f"{base}/login")
    assert page.locator("html").get_attribute("lang") == lang
    problems["login"] = axe_violations(page, axe_source)
    page.fill("#national_id", "123")
    page.fill("#password", "wrong")
    page.click("form button[type=submit]")
    assert page.locator("[role=alert]").count() == 1
    problems["login error"] = axe_violations(page, axe_source)
    page.goto(authorize_url(base, rp))
    page.fill("#national_id", CITIZEN_PID)
    page.fill("#password", CITIZEN_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url("**/consent?**")
    problems["consent"] = axe_violations(page, axe_source)
    page.goto(f"{base}/account")
    problems["account"] = axe_violations(page, axe_source)
    page.goto(f"{base}/authorize?client_id=unknown")
    problems["error"] = axe_violations(page, axe_source)
    context.close()
    assert {k: v for k, v in problems.items() if v} == {}


def test_sign_in_and_consent_work_without_javascript(browser, live_app):
    app, base = live_app
    rp = register_client(app)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    redirects = []
    page.route(f"{rp.redirect_uri}**", lambda route: (redirects.append(route.request.url),
                                                      route.fulfill(status=200, body="ok")))
    page.goto(authorize_url(base, rp))
    page.fill("#national_id", CITIZEN_PID)
    page.fill("#password", CITIZEN_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url("**/consent?**")
    page.click("button[value=allow]")
    page.wait_for_url(f"{rp.redirect_uri}**")
    assert "code=" in redirects[-1] and "state=browser-state" in redirects[-1]
    context.close()


def test_passkey_registration_and_login_with_virtual_authenticator(browser, live_app):
    app, base = live_app
    context = browser.new_context()
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True}})
    sign_in(page, base)
    page.click("#passkey-register")
    page.wait_for_load_state("load")
    page.wait_for_function("document.body.innerText.includes(': 1')")
    # Sign out, then back in with the passkey alone: no ID number, no password.
    page.click("form[action='/logout/confirm'] button")
    page.goto(f"{base}/login")
    page.click("#passkey-login")
    page.wait_for_url(f"{base}/account")
    with app.app_context():
        from idp.extensions import db
        from idp.models import AuditEvent

        events = [e.event for e in db.session.scalars(db.select(AuditEvent)).all()]
    assert "passkey.registered" in events
    assert events.count("login.success") == 2
    context.close()
