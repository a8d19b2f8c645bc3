"""The portals in Debian's Chromium against the real IdP (acceptance criterion 1): single
sign-on across two portals, single logout through back-channel logout, step-up to a second
factor and to level 2, denied consent. Screenshots go to docs/screenshots/portal-*.png."""

from __future__ import annotations

import time
from pathlib import Path

import pyotp
import pytest

from tests.clients.servers import idp_stack, portal

from .test_pages import axe_violations

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}
PASSWORD = "Portal-Browser-1"
SSO_CITIZEN, DENY_CITIZEN, LEVEL_CITIZEN = "001199000201", "001199000202", "001199000203"
A11Y_CITIZEN = "001199000204"
LOGOUT_WAIT = 20  # seconds for the IdP's back-channel job to reach the first portal


@pytest.fixture(scope="module")
def portals(tmp_path_factory, browser):
    """The IdP and both Python portals as real servers (browser first: skips without
    Chromium before anything starts)."""
    with idp_stack(tmp_path_factory.mktemp("browser-portals")) as stack:
        stack.add_citizen(SSO_CITIZEN, PASSWORD, name="Đỗ Thị Hoa")
        stack.add_citizen(DENY_CITIZEN, PASSWORD, name="Vũ Văn Khánh")
        stack.add_citizen(LEVEL_CITIZEN, PASSWORD, name="Hoàng Thị Lan")
        stack.add_citizen(A11Y_CITIZEN, PASSWORD, name="Bùi Văn Minh")
        with portal(stack, "public_services") as one, portal(stack, "social_insurance") as two:
            yield stack, one, two


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT, locale="vi-VN")
    page = context.new_page()
    yield page
    context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"portal-{name}.png"))


def idp_login(page, pid: str) -> None:
    page.fill("#national_id", pid)
    page.fill("#password", PASSWORD)
    page.click("form button[type=submit]")


def test_single_sign_on_and_single_logout(portals, page):
    stack, one, two = portals
    # Portal 1: sign in with a password and allow sharing.
    page.goto(one + "/")
    shot(page, "public-services-home")
    page.click("main a.button")
    page.wait_for_url(stack.issuer + "/login**")
    idp_login(page, SSO_CITIZEN)
    page.wait_for_url(stack.issuer + "/consent**")
    page.click("button[name=decision][value=allow]")
    page.wait_for_url(one + "/")
    sub_one = page.text_content("#sub")
    assert sub_one and "Đỗ Thị Hoa" in page.text_content("main")
    shot(page, "public-services-signed-in")

    # Portal 2 asks for a second factor: the IdP asks for it (setting up an authenticator
    # app, as this citizen has none), never for the password again.
    idp_pages = []
    page.on("framenavigated", lambda frame: idp_pages.append(frame.url))
    page.goto(two + "/")
    page.click("main a.button")
    page.wait_for_url(stack.issuer + "/login/step-up**")
    shot(page, "step-up-second-factor")
    secret = page.text_content("code.secret").strip()
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("button[name=action][value=setup]")
    page.wait_for_url(stack.issuer + "/consent**")
    page.click("button[name=decision][value=allow]")
    page.wait_for_url(two + "/")
    assert not any(url.startswith(stack.issuer + "/login?") or url == stack.issuer + "/login"
                   for url in idp_pages), idp_pages
    assert page.text_content("#acr") == "urn:dinhdanh:loa:1:mfa"
    assert "mfa" in page.text_content("#amr")
    assert page.text_content("#sub") != sub_one  # pairwise: another portal, another sub
    shot(page, "social-insurance-signed-in")
    page.click("main h3 a")
    page.wait_for_url(two + "/contributions")
    shot(page, "social-insurance-contributions")

    # Log out at portal 2: its own session, the IdP's, and (back-channel) portal 1's.
    page.goto(two + "/logout")
    shot(page, "logout")
    page.click("main form button[type=submit]")
    page.wait_for_url(two + "/?state=**")
    assert page.locator("p.notice[role=status]").is_visible()
    shot(page, "signed-out")
    assert page.request.get(two + "/me").status == 401
    deadline = time.monotonic() + LOGOUT_WAIT
    while page.request.get(one + "/me").status != 401 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert page.request.get(one + "/me").status == 401
    page.goto(one + "/")
    assert page.locator("#sub").count() == 0


def test_denied_consent_is_a_clean_error_at_the_portal(portals, page):
    stack, one, _ = portals
    page.goto(one + "/login")
    idp_login(page, DENY_CITIZEN)
    page.wait_for_url(stack.issuer + "/consent**")
    with page.expect_response(lambda r: r.url.startswith(one + "/callback")) as answer:
        page.click("button[name=decision][value=deny]")
    assert answer.value.status == 403
    assert "Quyền truy cập không được cho phép" in page.text_content("h1")
    assert page.text_content("main code") == "access_denied"
    shot(page, "access-denied")
    assert page.request.get(one + "/me").status == 401


def test_level_2_service_explains_how_to_get_there(portals, page):
    stack, one, _ = portals
    page.goto(one + "/?lang=en")
    page.goto(one + "/land")
    page.wait_for_url(stack.issuer + "/login**")
    idp_login(page, LEVEL_CITIZEN)
    page.wait_for_url(stack.issuer + "/login/step-up/level**")
    with page.expect_response(lambda r: r.url.startswith(one + "/callback")) as answer:
        page.click("main form button[type=submit]")
    assert answer.value.status == 403
    assert "Your account needs a higher level" in page.text_content("h1")
    shot(page, "level-2-needed-en")


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_portal_pages_meet_wcag_22_aa(portals, browser, axe_source, lang):
    """axe-core on the portal's pages, signed out and in (the scan is injected, so this
    context bypasses the portal's no-script CSP)."""
    stack, one, _ = portals
    context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(f"{one}/?lang={lang}")
        found = {"home": axe_violations(page, axe_source)}
        page.goto(f"{one}/callback?state=unknown")
        found["error"] = axe_violations(page, axe_source)
        page.goto(f"{one}/login?next=/apply")
        idp_login(page, A11Y_CITIZEN)
        page.wait_for_url(lambda url: url.startswith((one, stack.issuer + "/consent")))
        if page.url.startswith(stack.issuer):  # the first time only: consent is remembered
            page.click("button[name=decision][value=allow]")
        page.wait_for_url(one + "/apply")
        found["apply"] = axe_violations(page, axe_source)
        page.click("main form button[type=submit]")  # empty: the form shows its errors
        found["apply-errors"] = axe_violations(page, axe_source)
        if lang == "vi":
            shot(page, "apply-errors")
        page.fill("#details", "Để làm thủ tục nhập học cho con")
        page.click("main form button[type=submit]")
        assert page.text_content("#reference").startswith("DVC-")
        found["applied"] = axe_violations(page, axe_source)
        if lang == "vi":
            shot(page, "application-received")
        for path in ("/", "/logout"):
            page.goto(one + path)
            found[path] = axe_violations(page, axe_source)
        assert {k: v for k, v in found.items() if v} == {}
    finally:
        context.close()
