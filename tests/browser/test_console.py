"""The operator console in a real browser (Debian's Chromium through Playwright): the demo
operator signs in through the IdP with their password and authenticator code, finds in the queue
the case that the real pipeline sent to review, claims it and approves it; axe-core checks the
console's pages in Vietnamese and English.

The case is made the way `make run` makes its demo case (`ekyc.review.demo`): an onboarding
through the public API with a citizen's previous card, read by the real document reader, checked
against the register stub, which answers that a newer card exists.
"""

from __future__ import annotations

import pyotp
import pytest

from ekyc.models import Case
from ekyc.review.demo import submit_demo_case
from idp.cli import DEMO_STAFF
from idp.extensions import db
from idp.models import Account
from tests.browser.test_onboarding import citizen, go, server  # noqa: F401  (fixtures)
from tests.browser.test_pages import axe_violations
from tests.ekyc.conftest import _register_db, citizens, register_stub  # noqa: F401


def sign_in(page, base: str, username: str, lang: str = "en") -> None:
    password, _role, secret = DEMO_STAFF[username]
    page.goto(f"{base}/lang/{lang}?next=/ops/")
    with page.expect_navigation():
        page.click("main a[href$='/ops/login']")
    page.wait_for_url("**/login?**")
    page.fill("#national_id", username)
    page.fill("#password", password)
    go(page, "form button[type=submit]", "/login/otp")
    page.fill("#code", pyotp.TOTP(secret).now())
    with page.expect_navigation():
        page.click("form button[type=submit]")
    page.wait_for_url("**/ops/**")


@pytest.fixture
def review_case(server, citizen):  # noqa: F811
    app, base = server()
    status = submit_demo_case(base, citizen=citizen, wait=90)
    assert status["state"] == "needs_review", status
    assert [r["code"] for r in status["reasons"]] == ["register_card_superseded"]
    return app, base, status["case_id"]


def test_the_demo_operator_reviews_and_approves_a_case_in_the_browser(browser, review_case):
    app, base, case_id = review_case
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, base, "ops-demo")
    assert page.url.endswith("/ops/queue")
    row = page.locator(f"a[href*='/ops/cases/{case_id}']")
    assert row.count() == 1, page.inner_text("main")[:500]
    go(page, f"a[href*='/ops/cases/{case_id}']", f"/ops/cases/{case_id}")
    assert "newer card" in page.inner_text("main") or "register_card_superseded" in \
        page.content()
    go(page, "form[action$='/claim'] button[type=submit]", f"/ops/cases/{case_id}")
    approve = "form[data-kind=approve]"
    page.select_option(f"{approve} select[name=reason_code]", index=1)
    page.fill(f"{approve} textarea[name=note]", "Card issued 2 years before the current one.")
    go(page, f"{approve} button[type=submit]", f"/ops/cases/{case_id}")
    page.screenshot(path="docs/screenshots/ops-case-approved.png", full_page=True)
    with app.app_context():
        case = db.session.get(Case, case_id)
        assert case.state == "approved"
        assert case.events[-1].actor == "ops-demo"
        account = db.session.get(Account, case.account_id)
        assert account.status == "pending_activation" and account.level == 1
        db.session.remove()
    context.close()


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_console_pages_have_no_accessibility_violations(browser, axe_source, review_case,
                                                         lang):
    _app, base, case_id = review_case
    context = browser.new_context(bypass_csp=True)  # the CSP blocks axe
    page = context.new_page()
    sign_in(page, base, "ops-supervisor", lang)
    for path in ("/ops/queue", f"/ops/cases/{case_id}?purpose=review", "/ops/dashboard",
                 "/ops/audit", "/ops/accounts", "/ops/counter", "/ops/overrides"):
        page.goto(base + path)
        assert page.locator("main").count() == 1, path
        violations = axe_violations(page, axe_source)
        assert violations == [], (path, violations)
        if lang == "en" and path.startswith("/ops/cases/"):
            page.screenshot(path="docs/screenshots/ops-case.png", full_page=True)
        elif lang == "en" and path == "/ops/queue":
            page.screenshot(path="docs/screenshots/ops-queue.png", full_page=True)
        elif lang == "en" and path == "/ops/dashboard":
            page.screenshot(path="docs/screenshots/ops-dashboard.png", full_page=True)
    context.close()
