"""Onboarding in a real browser (Debian's Chromium through Playwright): a citizen registers with
a generated card and faces-dev selfies and signs in; every step works without JavaScript (the
status page refreshes itself) and, with it, the status page follows the case; every onboarding
page passes axe-core (WCAG 2.2 AA) in Vietnamese and English; the flow works from the keyboard
alone; and with Chromium's fake camera the JavaScript path captures the card and a burst of
selfie frames.

The register stub and the citizens come from tests/ekyc/conftest.py. The end-to-end test uses
the real document reader on a card from `ekyc.document.synth`; the others use the conftest's
`FakeReader` so that they test the pages, not the reader.
"""

from __future__ import annotations

import itertools
import threading
import time

import pyotp
import pytest
from werkzeug.serving import make_server

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.test_pages import axe_violations
from tests.ekyc.conftest import (  # noqa: F401  (fixtures used by the tests below)
    FakeReader,
    _register_db,
    citizens,
    photo,
    reading_for,
    register_stub,
)

FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture
def citizen(citizens):  # noqa: F811
    """A living citizen the register knows, without an account (#0 is the seeded demo one)."""
    return next(c for c in citizens[1:] if c.status == "alive")


@pytest.fixture
def server(make_app, tmp_path, register_stub):  # noqa: F811
    """Factory: the IdP with onboarding on localhost:<port> in a thread, the register stub
    running; yields (app, base_url)."""
    started = []

    def factory(reader=None, **overrides):
        http = make_server("localhost", 0, None, threaded=True)
        base = f"http://localhost:{http.socket.getsockname()[1]}"
        app = make_app(ISSUER=base, MEDIA_DIR=str(tmp_path / "media"), REGISTER_RETRIES=1,
                       REGISTER_RETRY_BACKOFF=0.0, **overrides)
        register_stub(app, REGISTER_TRUSTED_ISSUER=base)  # the IdP signs as `base` here
        if reader is not None:
            app.extensions["ekyc.reader"] = reader
        http.app = app
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        started.append((http, thread))
        return app, base

    yield factory
    for http, thread in started:
        http.shutdown()
        http.server_close()
        thread.join(timeout=5)
    from ekyc import register_client, register_events

    register_client.close_sessions()
    register_events.forget_keys()


def go(page, selector: str, following: str) -> None:
    """Click `selector`, which submits or follows a link, and expect to land on `following`
    (else fail at once with what the page says, instead of waiting for a timeout)."""
    with page.expect_navigation():
        page.click(selector)
    if not page.url.split("?")[0].endswith(following):
        alert = page.locator("[role=alert]")
        said = alert.first.inner_text() if alert.count() else page.inner_text("main")[:300]
        raise AssertionError(f"expected {following}, got {page.url}: {said}")


def jpeg(name: str, data: bytes) -> dict:
    return {"name": name, "mimeType": "image/jpeg", "buffer": data}


def consent(page, base: str) -> None:
    page.goto(f"{base}/")
    page.click("a[href='/onboarding/']")
    page.check("#consent")
    page.click("form[action='/onboarding/'] button[type=submit]")
    page.wait_for_url("**/onboarding/card/front")


def send_card(page, side: str, data: bytes, following: str) -> None:
    page.set_input_files("#photo", files=[jpeg(f"{side}.jpg", data)])
    page.wait_for_selector("img[data-part=preview]:not([hidden])")  # the preview (JavaScript)
    go(page, "form[data-upload=card] button[type=submit]", following)


def send_selfies(page, images: list[bytes]) -> None:
    inputs = page.locator("form[data-upload=selfie] input[type=file]")
    cycle = itertools.cycle(images)
    for i in range(inputs.count()):
        inputs.nth(i).set_input_files(files=[jpeg(f"selfie-{i}.jpg", next(cycle))])
    go(page, "form[data-upload=selfie] button[type=submit]", "/onboarding/review")


def activate(page) -> str:
    """Choose the password and confirm the authenticator app; returns the TOTP secret."""
    page.click("a[href='/onboarding/activate']")
    page.fill("#password", "Good-Password-1")
    page.fill("#password2", "Good-Password-1")
    page.click("form button[type=submit]")
    page.wait_for_url("**/onboarding/activate/app")
    secret = page.inner_text("#totp-key").replace(" ", "")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("form button[type=submit]")
    page.wait_for_url("**/onboarding/done")
    return secret


def selfie_images(citizen) -> list[bytes]:
    from register.seed import faces_dir, identity_images, portrait_identity

    folder = faces_dir()
    identity = portrait_identity(citizen)
    if folder is None or identity is None:
        pytest.skip("faces-dev test data absent (set EKYC_TEST_DATA)")
    files = identity_images(identity)[1:] or identity_images(identity)
    return [(folder / f).read_bytes() for f in files]


# -- a citizen, end to end -----------------------------------------------------------------------

def test_citizen_registers_with_a_generated_card_and_signs_in(browser, server, citizen):
    from ekyc.document.synth import make_card

    selfies = selfie_images(citizen)
    front, back, _truth = make_card(citizen, seed=11)
    _app, base = server()  # the real document reader
    context = browser.new_context()
    page = context.new_page()
    consent(page, base)
    send_card(page, "front", front, "/onboarding/card/back")
    send_card(page, "back", back, "/onboarding/selfie")
    send_selfies(page, selfies)
    go(page, "form[action='/onboarding/submit'] button", "/onboarding/status")
    assert page.locator("a[href='/onboarding/activate']").count() == 1, page.inner_text("main")
    secret = activate(page)
    page.click("a[href='/login']")
    page.fill("#national_id", citizen.national_id)
    page.fill("#password", "Good-Password-1")
    page.click("form button[type=submit]")
    page.wait_for_url("**/login/otp")
    page.fill("#code", pyotp.TOTP(secret).at(time.time() + 30))  # the activation spent "now"
    page.click("form button[type=submit]")
    page.wait_for_url(f"{base}/account")
    assert citizen.full_name in page.inner_text("h1")
    context.close()


def test_every_step_works_without_javascript(browser, server, citizen):
    _app, base = server(reader=SlowReader(reading_for(citizen)), JOBS_SYNC=False,
                        JOBS_BACKEND="thread")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    consent(page, base)
    for side, following in (("front", "/onboarding/card/back"), ("back", "/onboarding/selfie")):
        assert page.locator("[data-camera=card]").is_hidden()  # no camera without JavaScript
        page.set_input_files("#photo", files=[jpeg(f"{side}.jpg", photo())])
        go(page, "form[data-upload=card] button[type=submit]", f"/onboarding/card/{side}")
        assert page.locator("p.ok[role=status]").count() == 1  # received; retake or continue
        go(page, f"a[href='{following}']", following)
    inputs = page.locator("form[data-upload=selfie] input[type=file]")
    for i in range(inputs.count()):
        inputs.nth(i).set_input_files(files=[jpeg(f"s{i}.jpg", photo(400, 500))])
    go(page, "form[data-upload=selfie] button[type=submit]", "/onboarding/review")
    go(page, "form[action='/onboarding/submit'] button", "/onboarding/status")
    # The <noscript> meta refresh reloads the page until the decision is there.
    page.wait_for_selector("a[href='/onboarding/activate']", timeout=20_000)
    context.close()


class SlowReader(FakeReader):
    """A reader that takes a while, so the status page is seen while the case is processed."""

    def __call__(self, front: bytes, back: bytes | None):
        time.sleep(2)
        return super().__call__(front, back)


def test_status_page_follows_the_case_with_javascript(browser, server, citizen):
    # A worker thread processes the case (not the request itself, as JOBS_SYNC would).
    _app, base = server(reader=SlowReader(reading_for(citizen)), JOBS_SYNC=False,
                        JOBS_BACKEND="thread")
    context = browser.new_context()
    page = context.new_page()
    consent(page, base)
    send_card(page, "front", photo(), "/onboarding/card/back")
    send_card(page, "back", photo(), "/onboarding/selfie")
    send_selfies(page, [photo(400, 500)])
    go(page, "form[action='/onboarding/submit'] button", "/onboarding/status")
    assert page.locator("[data-status]").get_attribute("data-status") in ("submitted",
                                                                         "processing")
    assert page.locator("a[href='/onboarding/activate']").count() == 0
    # capture.js polls and reloads the page once the decision is there.
    page.wait_for_selector("a[href='/onboarding/activate']", timeout=20_000)
    assert page.locator("[data-status]").get_attribute("data-status") == "approved"
    context.close()


# -- accessibility -------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["vi", "en"])
def test_onboarding_pages_meet_wcag_22_aa(browser, server, axe_source, citizen, lang):
    _app, base = server(reader=FakeReader(reading_for(citizen)), UPLOAD_MAX_BYTES=300_000)
    context = browser.new_context(bypass_csp=True)  # our CSP (rightly) blocks injected axe
    page = context.new_page()
    page.goto(f"{base}/lang/{lang}?next=/onboarding/")
    assert page.locator("html").get_attribute("lang") == lang
    problems = {"start": axe_violations(page, axe_source)}
    page.check("#consent")
    page.click("form[action='/onboarding/'] button[type=submit]")
    page.wait_for_url("**/onboarding/card/front")
    problems["card"] = axe_violations(page, axe_source)
    # A photo over the size cap is refused in the page, before a long upload.
    page.set_input_files("#photo", files=[jpeg("big.jpg", b"\xff\xd8\xff" + bytes(400_000))])
    page.wait_for_selector("[data-part=too-large][role=alert]:not([hidden])")
    assert page.eval_on_selector("#photo", "e => e.files.length") == 0
    problems["card too large"] = axe_violations(page, axe_source)
    page.set_input_files("#photo", files=[{"name": "x.pdf", "mimeType": "application/pdf",
                                           "buffer": b"%PDF-1.4 not a photo" * 10}])
    page.click("form[data-upload=card] button[type=submit]")
    page.wait_for_selector("[role=alert]")
    problems["card error"] = axe_violations(page, axe_source)
    send_card(page, "front", photo(), "/onboarding/card/back")
    send_card(page, "back", photo(), "/onboarding/selfie")
    problems["selfie"] = axe_violations(page, axe_source)
    send_selfies(page, [photo(400, 500)])
    problems["review"] = axe_violations(page, axe_source)
    go(page, "form[action='/onboarding/submit'] button", "/onboarding/status")
    problems["status"] = axe_violations(page, axe_source)
    page.click("a[href='/onboarding/activate']")
    problems["password"] = axe_violations(page, axe_source)
    page.fill("#password", "Good-Password-1")
    page.fill("#password2", "Good-Password-1")
    page.click("form button[type=submit]")
    page.wait_for_url("**/onboarding/activate/app")
    problems["authenticator"] = axe_violations(page, axe_source)
    secret = page.inner_text("#totp-key").replace(" ", "")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("form button[type=submit]")
    page.wait_for_url("**/onboarding/done")
    problems["done"] = axe_violations(page, axe_source)
    context.close()
    assert {k: v for k, v in problems.items() if v} == {}


def _focus(page) -> dict:
    return page.evaluate("""() => { const e = document.activeElement, s = getComputedStyle(e);
        return {tag: e.tagName, id: e.id, type: e.type || '', text: (e.innerText || '').trim(),
                outline: s.outlineStyle, width: s.outlineWidth}; }""")


def _tab_to(page, predicate, limit: int = 30) -> list[dict]:
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focus = _focus(page)
        seen.append(focus)
        assert focus["outline"] != "none", f"no visible focus on {focus}"
        if predicate(focus):
            return seen
    raise AssertionError(f"never reached by Tab: {seen}")


def test_onboarding_works_from_the_keyboard_alone(browser, server, citizen):
    _app, base = server(reader=FakeReader(reading_for(citizen)))
    context = browser.new_context()
    page = context.new_page()
    # Playwright intercepts file choosers only once a listener exists: register one up front.
    page.on("filechooser", lambda _chooser: None)
    page.goto(f"{base}/onboarding/")
    order = _tab_to(page, lambda f: f["id"] == "consent")
    assert order[0]["text"]  # the skip link comes first
    page.keyboard.press("Space")
    _tab_to(page, lambda f: f["tag"] == "BUTTON")
    page.keyboard.press("Enter")
    page.wait_for_url("**/onboarding/card/front")
    for side, following in (("front", "/onboarding/card/back"), ("back", "/onboarding/selfie")):
        _tab_to(page, lambda f: f["id"] == "photo")
        with page.expect_file_chooser() as chooser:
            page.keyboard.press("Space")
        chooser.value.set_files(files=[jpeg(f"{side}.jpg", photo())])
        _tab_to(page, lambda f: f["tag"] == "BUTTON" and f["type"] == "submit")
        page.keyboard.press("Enter")
        page.wait_for_url(f"**{following}")
    count = page.locator("form[data-upload=selfie] input[type=file]").count()
    for i in range(count):
        _tab_to(page, lambda f, i=i: f["id"] == f"frame-{i}")
        with page.expect_file_chooser() as chooser:
            page.keyboard.press("Enter")
        chooser.value.set_files(files=[jpeg(f"s{i}.jpg", photo(400, 500))])
    _tab_to(page, lambda f: f["tag"] == "BUTTON" and f["type"] == "submit")
    page.keyboard.press("Enter")
    page.wait_for_url("**/onboarding/review")
    _tab_to(page, lambda f: f["tag"] == "BUTTON" and f["type"] == "submit")
    page.keyboard.press("Enter")
    page.wait_for_url("**/onboarding/status")
    _tab_to(page, lambda f: f["tag"] == "A" and "activate" in page.evaluate(
        "document.activeElement.href"))
    page.keyboard.press("Enter")
    page.wait_for_url("**/onboarding/activate")
    context.close()


# -- the camera (JavaScript path) ----------------------------------------------------------------

@pytest.fixture
def camera_browser(browser):
    """A second Chromium whose camera is Chromium's fake device (a moving test pattern)."""
    other = browser.browser_type.launch(executable_path=CHROMIUM, headless=True,
                                        args=CHROMIUM_ARGS + FAKE_CAMERA)
    yield other
    other.close()


def _shoot_card(page, following: str) -> None:
    page.click("[data-camera=card] [data-action=start]")
    page.wait_for_function(
        "() => document.querySelector('[data-camera=card] video').readyState >= 2")
    page.click("[data-camera=card] [data-action=shoot]")
    page.wait_for_selector("img[data-part=preview]:not([hidden])")
    assert page.eval_on_selector("#photo", "e => e.files.length") == 1
    page.click("form[data-upload=card] button[type=submit]")
    page.wait_for_url(f"**{following}")


def test_camera_captures_the_card_and_a_burst_of_selfie_frames(camera_browser, server,
                                                                 citizen):
    app, base = server(reader=FakeReader(reading_for(citizen)))
    context = camera_browser.new_context()
    page = context.new_page()
    consent(page, base)
    _shoot_card(page, "/onboarding/card/back")
    _shoot_card(page, "/onboarding/selfie")
    page.click("[data-camera=selfie] [data-action=start]")
    page.wait_for_function(
        "() => document.querySelector('[data-camera=selfie] video').readyState >= 2")
    page.click("[data-camera=selfie] [data-action=shoot]")
    page.wait_for_url("**/onboarding/review", timeout=30_000)
    assert page.locator(".summary li").filter(has_text="✓").count() == 3
    from ekyc.models import Challenge
    from idp.extensions import db

    with app.app_context():
        (used,) = db.session.scalars(db.select(Challenge).filter(
            Challenge.used_at.is_not(None))).all()
        stamps = list(used.timestamps_ms)
        db.session.remove()
    assert 8 <= used.frame_count <= app.config["SELFIE_MAX_FRAMES"]
    assert len(stamps) == used.frame_count
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert stamps[-1] - stamps[0] >= 2000  # spread over the challenge, not one instant
    context.close()
