"""The IdP's own pages in a real browser, beyond tests/browser/test_pages.py: a portal's sign-in
and consent done from the keyboard alone with a focus ring one can see; axe-core (WCAG 2.2 AA)
on the pages that test does not reach (home, authenticator setup, second step, account with a
service and an authenticator, choose an account, sign out), in Vietnamese and English; and the
screenshots in docs/screenshots/ (the committed PNGs are the last run's)."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from PIL import Image

from tests.browser.test_pages import authorize_url, axe_violations, sign_in
from tests.helpers import CITIZEN_PASSWORD, CITIZEN_PID, register_client

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}

# What has focus, where it is, and the contrast of its focus ring against what surrounds it
# (WCAG 1.4.11: 3:1), the surroundings read at a point just outside the ring.
FOCUS_JS = """() => {
  const e = document.activeElement, s = getComputedStyle(e), r = e.getBoundingClientRect();
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const gap = parseFloat(s.outlineOffset) + parseFloat(s.outlineWidth) + 2;
  let under = document.elementFromPoint(r.left + r.width / 2, Math.max(0, r.top - gap));
  let bg = [255, 255, 255];
  for (; under; under = under.parentElement) {
    const c = rgb(getComputedStyle(under).backgroundColor);
    if (c.length === 3 || c[3] > 0) { bg = c.slice(0, 3); break; }
  }
  const [a, b] = [lum(rgb(s.outlineColor)), lum(bg)].sort((x, y) => y - x);
  return {tag: e.tagName, id: e.id, name: e.name || '', value: e.value || '',
          href: e.getAttribute('href') || '', text: (e.innerText || '').trim(),
          inMain: !!e.closest('main'), outline: s.outlineStyle,
          width: parseFloat(s.outlineWidth) || 0, contrast: (a + 0.05) / (b + 0.05),
          onScreen: r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= 0
                    && r.right <= innerWidth && r.bottom <= innerHeight};
}"""


def press(page, key: str) -> dict:
    """Press `key` and return the newly focused element, which must show a visible focus ring."""
    page.keyboard.press(key)
    focus = page.evaluate(FOCUS_JS)
    if focus["tag"] not in ("BODY", "MAIN"):
        assert focus["outline"] != "none" and focus["width"] >= 2, f"no focus ring: {focus}"
        assert focus["contrast"] >= 3, f"focus ring hard to see: {focus}"
        assert focus["onScreen"], f"focused element off screen: {focus}"
    return focus


def tab_until(page, wanted, limit: int = 25) -> list[dict]:
    """Tab until `wanted(focus)`; returns every focus on the way (the last one is `wanted`)."""
    seen = []
    for _ in range(limit):
        seen.append(press(page, "Tab"))
        if wanted(seen[-1]):
            return seen
    raise AssertionError(f"never reached by Tab: {[f['id'] or f['text'] for f in seen]}")


def test_portal_sign_in_and_consent_from_the_keyboard_alone(browser, live_app):
    app, base = live_app
    rp = register_client(app, policy_uri="https://portal-a.example.vn/privacy",
                         tos_uri="https://portal-a.example.vn/terms")
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.route(f"{rp.redirect_uri}**", lambda route: route.fulfill(status=200, body="ok"))
    page.goto(authorize_url(base, rp))  # the portal sent the citizen here
    page.wait_for_url("**/login?**")

    # The skip link comes first, shows itself, and leads into the page's content.
    skip = press(page, "Tab")
    assert skip["href"] == "#main" and skip["text"]
    press(page, "Enter")
    first = press(page, "Tab")
    assert first["inMain"] and "privacy" in first["href"]  # the portal's policy, then the form

    # Fields in reading order: ID number, password, the sign-in button; Shift+Tab goes back.
    before = tab_until(page, lambda f: f["id"] == "national_id")
    assert all(f["inMain"] for f in before)
    page.keyboard.type(CITIZEN_PID)
    assert press(page, "Tab")["id"] == "password"
    page.keyboard.type("not the password")
    button = press(page, "Tab")
    assert button["tag"] == "BUTTON" and button["text"] == page.inner_text("h1")  # "Sign in"
    assert press(page, "Shift+Tab")["id"] == "password"
    assert press(page, "Shift+Tab")["id"] == "national_id"
    press(page, "Tab")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # Enter in a field submits the form
    assert page.locator("[role=alert]").count() == 1
    # The failed attempt keeps the ID number and leaves the password for the citizen to retype.
    assert page.input_value("#national_id") == CITIZEN_PID
    assert page.input_value("#password") == ""
    tab_until(page, lambda f: f["id"] == "password")
    page.keyboard.type(CITIZEN_PASSWORD)
    press(page, "Tab")
    with page.expect_navigation(url="**/consent?**"):
        page.keyboard.press("Enter")

    # Consent: the portal's links, then Allow, then Do not allow; Space on Allow decides.
    order = tab_until(page, lambda f: f["value"] == "allow")
    assert [f["tag"] for f in order if f["inMain"]] == ["A", "A", "BUTTON"]
    assert press(page, "Tab")["value"] == "deny"
    assert press(page, "Shift+Tab")["value"] == "allow"
    with page.expect_request(f"{rp.redirect_uri}**") as arrived:
        page.keyboard.press("Space")
    query = parse_qs(urlsplit(arrived.value.url).query)
    assert query["state"] == ["browser-state"] and query["code"][0]
    context.close()


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_more_pages_meet_wcag_22_aa(browser, live_app, axe_source, lang):
    app, base = live_app
    rp = register_client(app)
    context = browser.new_context(bypass_csp=True, viewport=VIEWPORT)  # the CSP blocks axe
    page = context.new_page()
    page.route(f"{rp.redirect_uri}**", lambda route: route.fulfill(status=200, body="ok"))
    problems = {}
    page.goto(f"{base}/lang/{lang}?next=/")
    assert page.locator("html").get_attribute("lang") == lang
    problems["home"] = axe_violations(page, axe_source)
    sign_in(page, base)

    page.goto(f"{base}/account/totp")
    problems["authenticator setup"] = axe_violations(page, axe_source)
    page.fill("#code", "000000")
    page.click("form button[type=submit]")
    page.wait_for_selector("[role=alert]")
    assert page.get_attribute("#code", "aria-describedby") == "otp-error"  # read with the field
    problems["authenticator setup error"] = axe_violations(page, axe_source)
    secret = page.inner_text("code.secret").replace(" ", "")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("form button[type=submit]")
    page.wait_for_url(f"{base}/account")

    page.goto(authorize_url(base, rp))
    page.wait_for_url("**/consent?**")
    page.click("button[value=allow]")
    page.wait_for_url(f"{rp.redirect_uri}**")
    page.goto(f"{base}/account")
    assert page.locator("form[action='/account/consents/revoke']").count() == 1
    problems["account with a service and an authenticator"] = axe_violations(page, axe_source)

    page.goto(authorize_url(base, rp) + "&prompt=select_account")
    page.wait_for_url("**/select-account?**")
    problems["choose an account"] = axe_violations(page, axe_source)

    page.goto(f"{base}/logout")
    problems["sign out?"] = axe_violations(page, axe_source)
    page.click("main form button[type=submit]")
    page.wait_for_selector("a[href='/login']")
    problems["signed out"] = axe_violations(page, axe_source)

    page.goto(f"{base}/login")
    page.fill("#national_id", CITIZEN_PID)
    page.fill("#password", CITIZEN_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url("**/login/otp")
    problems["second step"] = axe_violations(page, axe_source)
    page.fill("#code", "000000")
    page.click("form button[type=submit]")
    page.wait_for_selector("[role=alert]")
    problems["second step error"] = axe_violations(page, axe_source)
    context.close()
    assert {k: v for k, v in problems.items() if v} == {}


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_screenshots_of_the_idp_pages(browser, live_app, lang):
    """docs/screenshots/idp-<page>-<lang>.png: what a citizen sees, for readers of the repo."""
    app, base = live_app
    rp = register_client(app, client_name="Cổng Dịch vụ công (demo)",
                         policy_uri="https://portal-a.example.vn/privacy",
                         tos_uri="https://portal-a.example.vn/terms")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=VIEWPORT, locale=f"{lang}-VN")
    page = context.new_page()
    page.route(f"{rp.redirect_uri}**", lambda route: route.fulfill(status=200, body="ok"))
    written = []

    def shoot(name: str) -> None:
        path = SCREENSHOTS / f"idp-{name}-{lang}.png"
        png = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
        # 128 colours look the same on these flat pages and keep the committed files small.
        png.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE) \
            .save(path, optimize=True)
        written.append(path)

    page.goto(f"{base}/lang/{lang}?next=/")
    shoot("home")
    page.goto(authorize_url(base, rp))
    page.wait_for_url("**/login?**")
    shoot("login")
    page.fill("#national_id", CITIZEN_PID)
    page.fill("#password", CITIZEN_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url("**/consent?**")
    shoot("consent")
    page.click("button[value=allow]")
    page.wait_for_url(f"{rp.redirect_uri}**")
    page.goto(f"{base}/account")
    shoot("account")
    page.goto(f"{base}/onboarding/")
    shoot("onboarding-start")
    page.goto(f"{base}/authorize?client_id=unknown")
    shoot("error")
    context.close()
    for path in written:
        assert 0 < path.stat().st_size < 150_000, f"{path.name}: keep committed PNGs small"
