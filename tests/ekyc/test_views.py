"""The citizen onboarding pages without JavaScript (plain forms through the Flask test client):
consent, both sides of the card, the selfie challenge, submission, status, result, account
activation, and then a login that works. Also: CSRF on every form, the case token never in a
URL, a page or a log, and the English switch.

The pipeline runs for real (JOBS_SYNC) against the register stub of tests/ekyc/conftest.py;
only the document reader is the conftest's `FakeReader` (the reader has its own tests), so
these tests are about the pages.
"""

from __future__ import annotations

import io
import logging
import re
import time

import pyotp
import pytest

from tests.ekyc.conftest import FakeReader, photo, reading_for, selfie_frames
from tests.helpers import csrf_token

START = "/onboarding/"


# -- a citizen's browser -----------------------------------------------------------------------

class Browser:
    """A test client that acts like a person filling in the pages, remembering every response."""

    def __init__(self, client):
        self.client = client
        self.responses = []

    def get(self, url, **kw):
        response = self.client.get(url, **kw)
        self.responses.append(response)
        return response

    def post(self, url, data=None, **kw):
        response = self.client.post(url, data=data or {}, **kw)
        self.responses.append(response)
        return response

    def form(self, url, fields=None, page_url=None, **kw):
        """GET the page (for its CSRF token), then POST the form with `fields`."""
        page = self.get(page_url or url)
        return self.post(url, {"csrf_token": csrf_token(page.text), **(fields or {})}, **kw)

    def consent(self):
        from ekyc import policy

        return self.form(START, {"consent": "yes", "consent_version": policy.CONSENT_VERSION})

    def card(self, side, data, content_type="image/jpeg", **extra):
        return self.form(f"/onboarding/card/{side}",
                         {"photo": (io.BytesIO(data), f"{side}.jpg", content_type), **extra},
                         content_type="multipart/form-data")

    def selfie(self, frames, stamps=None, nonce=None):
        page = self.get("/onboarding/selfie")
        fields = {"csrf_token": csrf_token(page.text),
                  "nonce": nonce or re.search(r'name="nonce" value="([^"]+)"', page.text)[1],
                  "frames": [(io.BytesIO(f), f"f{i}.jpg", "image/jpeg")
                             for i, f in enumerate(frames)]}
        if stamps is not None:
            fields.update(source="camera", timestamps_ms=",".join(map(str, stamps)))
        else:
            fields.update(source="upload", timestamps_ms="")
        return self.post("/onboarding/selfie", fields, content_type="multipart/form-data")

    def capture_all(self):
        assert self.consent().status_code == 302
        assert self.card("front", photo()).status_code == 302
        assert self.card("back", photo(color=(10, 10, 10))).status_code == 302
        response = self.selfie(selfie_frames(5), stamps=[1000 + 300 * i for i in range(5)])
        assert response.status_code == 302, response.text
        return response


def _cases(app):
    from ekyc.models import Case
    from idp.extensions import db

    with app.app_context():
        rows = db.session.scalars(db.select(Case)).all()
        db.session.remove()
    return rows


@pytest.fixture
def app(ekyc_app):
    return ekyc_app()


@pytest.fixture
def browser(app):
    return Browser(app.test_client())


@pytest.fixture
def citizen(citizens):
    """A living citizen the register knows, without an account (#0 is the seeded demo one)."""
    return next(c for c in citizens[1:] if c.status == "alive")


@pytest.fixture
def approving(ekyc_app, register_stub, citizen):
    """An app whose cases pass every check: the card reads as `citizen`'s."""

    def factory(**overrides):
        app = ekyc_app(**overrides)
        register_stub(app)
        app.extensions["ekyc.reader"] = FakeReader(reading_for(citizen))
        return app

    return factory


def _text(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.text).split())


# -- start and consent -------------------------------------------------------------------------

def test_start_page_says_what_is_needed_and_shows_the_consent_text_with_its_version(browser):
    from ekyc import policy

    page = browser.get(START)
    assert page.status_code == 200
    assert '<html lang="vi">' in page.text
    assert policy.CONSENT_VERSION in page.text
    assert "DỮ LIỆU SINH TRẮC HỌC" in page.text  # the Vietnamese consent text, by default
    assert 'type="checkbox" id="consent" name="consent"' in page.text
    assert 'aria-labelledby="progress-label"' in page.text and 'value="1"' in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert "script-src 'self' 'nonce-" in page.headers["Content-Security-Policy"]
    assert "<script>" not in page.text  # CSP: scripts are files, never inline


def test_home_and_login_pages_link_to_registration(client):
    assert 'href="/onboarding/"' in client.get("/").text
    assert 'href="/onboarding/"' in client.get("/login").text


def test_consent_is_required_and_nothing_is_opened_without_it(app, browser):
    response = browser.form(START, {"consent_version": "2026-11-v1"})
    assert response.status_code == 400
    assert 'role="alert"' in response.text and 'aria-invalid="true"' in response.text
    assert _cases(app) == []
    # Without a case, the next steps send the citizen back to the start.
    assert browser.get("/onboarding/card/front").headers["Location"].endswith(START)


def test_consent_to_an_outdated_text_is_refused(app, browser):
    response = browser.form(START, {"consent": "yes", "consent_version": "2020-01-v0"})
    assert response.status_code == 409
    assert _cases(app) == []


def test_consent_is_recorded_with_its_version_and_the_case_token_stays_in_the_session(
        app, browser):
    from ekyc import policy

    response = browser.consent()
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/onboarding/card/front")
    (case,) = _cases(app)
    assert case.consent_version == policy.CONSENT_VERSION
    assert case.channel == "web" and case.locale == "vi"
    with browser.client.session_transaction() as flask_session:
        held = flask_session["ekyc"]
    assert held["case"] == case.id and len(held["token"]) >= 40


def test_new_cases_are_limited_per_network(ekyc_app):
    app = ekyc_app(EKYC_CASES_PER_IP=2)
    statuses = [Browser(app.test_client()).consent().status_code for _ in range(3)]
    assert statuses == [302, 302, 429]
    assert len(_cases(app)) == 2


# -- the card ----------------------------------------------------------------------------------

def test_card_front_then_back_are_stored_and_the_page_confirms(app, browser):
    browser.consent()
    response = browser.card("front", photo())
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/onboarding/card/front")  # confirm, retake
    page = browser.get("/onboarding/card/front")
    assert 'role="status" class="ok"' in page.text and 'href="/onboarding/card/back"' in page.text
    # With a preview already seen (JavaScript), sending moves on to the next step.
    response = browser.card("back", photo(), advance="1")
    assert response.headers["Location"].endswith("/onboarding/selfie")
    (case,) = _cases(app)
    assert case.state == "capturing"


@pytest.mark.parametrize("data,content_type,status", [
    (b"%PDF-1.7 not a photo at all" * 20, "application/pdf", 415),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "image/jpeg", 400),  # a broken JPEG
    (photo(100, 80), "image/jpeg", 400),  # too small to read
])
def test_bad_card_photos_are_refused_with_a_clear_message(browser, data, content_type, status):
    browser.consent()
    response = browser.card("front", data, content_type)
    assert response.status_code == status
    assert 'role="alert"' in response.text and 'aria-invalid="true"' in response.text
    page = browser.get("/onboarding/card/front")
    assert 'class="ok"' not in page.text  # nothing was stored


def test_oversized_card_photo_is_refused_with_413(ekyc_app):
    app = ekyc_app(UPLOAD_MAX_BYTES=200_000)
    browser = Browser(app.test_client())
    browser.consent()
    big = photo(2000, 1400, quality=100)
    assert len(big) > 200_000
    response = browser.card("front", big)
    assert response.status_code == 413
    assert 'role="alert"' in response.text


def test_no_file_chosen_asks_for_a_photo(browser):
    browser.consent()
    page = browser.get("/onboarding/card/front")
    response = browser.post("/onboarding/card/front", {"csrf_token": csrf_token(page.text)},
                            content_type="multipart/form-data")
    assert response.status_code == 400 and 'role="alert"' in response.text


def test_unknown_card_side_is_404(browser):
    browser.consent()
    assert browser.get("/onboarding/card/left").status_code == 404


# -- the selfie --------------------------------------------------------------------------------

def test_selfie_page_shows_a_random_challenge_in_plain_words(browser):
    from ekyc.service import CHALLENGE_ACTIONS

    browser.consent()
    page = browser.get("/onboarding/selfie")
    codes = re.findall(r'data-action-code="([a-z_]+)"', page.text)
    assert 2 <= len(codes) <= 3 and set(codes) <= set(CHALLENGE_ACTIONS)
    assert len(re.findall(r'<input type="file" id="frame-\d"', page.text)) == len(codes) + 1
    # Each page view draws a new challenge and nonce.
    again = browser.get("/onboarding/selfie")
    nonce = re.compile(r'name="nonce" value="([^"]+)"')
    assert nonce.search(page.text)[1] != nonce.search(again.text)[1]


def test_camera_frames_with_timestamps_are_stored(app, browser):
    browser.consent()
    response = browser.selfie(selfie_frames(6), stamps=[5000 + 250 * i for i in range(6)])
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/onboarding/review")
    review = browser.get("/onboarding/review")
    assert review.text.count("✓") == 1  # the selfie; both card sides still missing
    assert "/onboarding/submit" not in review.text


def test_selfie_without_javascript_uploads_one_photo_per_instruction(app, browser):
    browser.consent()
    inputs = len(re.findall(r'<input type="file" id="frame-\d"',
                            browser.get("/onboarding/selfie").text))
    response = browser.selfie(selfie_frames(inputs))
    assert response.status_code == 302, _text(response)
    assert response.headers["Location"].endswith("/onboarding/review")
    from ekyc.models import Challenge
    from idp.extensions import db

    with app.app_context():
        (challenge,) = db.session.scalars(db.select(Challenge).filter(
            Challenge.used_at.is_not(None))).all()
        assert challenge.frame_count == inputs
        assert challenge.timestamps_ms == []  # no timing was invented for uploaded photos


def test_a_used_or_unknown_challenge_is_refused_and_a_new_one_shown(browser):
    browser.consent()
    page = browser.get("/onboarding/selfie")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)[1]
    stamps = [1, 2, 3]
    assert browser.selfie(selfie_frames(3), stamps, nonce=nonce).status_code == 302
    replay = browser.selfie(selfie_frames(3), stamps, nonce=nonce)
    assert replay.status_code == 409 and 'role="alert"' in replay.text
    assert nonce not in replay.text  # a fresh challenge to answer
    unknown = browser.selfie(selfie_frames(3), stamps, nonce="not-a-nonce")
    assert unknown.status_code == 400 and 'role="alert"' in unknown.text


def test_too_few_frames_or_frames_out_of_order_are_refused(browser):
    browser.consent()
    assert browser.selfie(selfie_frames(1), [1]).status_code == 400
    assert browser.selfie(selfie_frames(3), [30, 20, 10]).status_code == 400
    assert browser.selfie(selfie_frames(3), ["x", "y", "z"]).status_code == 400


# -- submit, status, result ----------------------------------------------------------------------

def test_submit_with_missing_photos_says_what_is_missing(browser):
    browser.consent()
    browser.card("front", photo())
    review = browser.get("/onboarding/review")
    assert review.text.count("✗") == 2
    response = browser.form("/onboarding/submit", page_url=START)
    assert response.status_code == 400 and 'role="alert"' in response.text


def test_whole_flow_approved_then_activation_then_login(approving):
    app = approving()
    browser = Browser(app.test_client())
    browser.capture_all()
    review = browser.get("/onboarding/review")
    assert review.text.count("✓") == 3
    response = browser.form("/onboarding/submit", page_url="/onboarding/review")
    assert response.headers["Location"].endswith("/onboarding/status")
    status = browser.get("/onboarding/status")
    assert status.status_code == 200
    assert 'href="/onboarding/activate"' in status.text
    assert 'http-equiv="refresh"' not in status.text  # decided: nothing to refresh
    assert browser.get("/onboarding/status.json").json == {"state": "approved",
                                                           "next": "activate"}

    # The account exists but cannot sign in before activation.
    from tests.helpers import login

    pid = reading_for_pid(app)
    refused = login(app.test_client(), pid, "Whatever-Password-1")
    assert refused.status_code == 401

    # Password rules of the existing password code, then the authenticator app.
    weak = browser.form("/onboarding/activate", {"password": "short", "password2": "short"})
    assert weak.status_code == 400 and 'role="alert"' in weak.text
    differ = browser.form("/onboarding/activate", {"password": "Good-Password-1",
                                                   "password2": "Good-Password-2"})
    assert differ.status_code == 400
    chosen = browser.form("/onboarding/activate", {"password": "Good-Password-1",
                                                   "password2": "Good-Password-1"})
    assert chosen.headers["Location"].endswith("/onboarding/activate/app")
    page = browser.get("/onboarding/activate/app")
    assert 'src="data:image/png;base64,' in page.text  # the QR code
    secret = re.search(r'id="totp-key">([A-Z2-7 ]+)<', page.text)[1].replace(" ", "")
    with browser.client.session_transaction() as flask_session:
        assert "Good-Password-1" not in str(dict(flask_session))  # kept encrypted
    wrong = browser.form("/onboarding/activate/app", {"code": "000000"})
    assert wrong.status_code == 400 and 'role="alert"' in wrong.text
    done = browser.form("/onboarding/activate/app", {"code": pyotp.TOTP(secret).now()})
    assert done.headers["Location"].endswith("/onboarding/done")
    assert 'href="/login"' in browser.get("/onboarding/done").text

    # Now the citizen signs in: password, then the code from the app.
    citizen = app.test_client()
    first = login(citizen, pid, "Good-Password-1")
    assert first.headers["Location"].endswith("/login/otp")
    page = citizen.get("/login/otp")
    code = pyotp.TOTP(secret).at(time.time() + 30)  # the next step: the last one is spent
    second = citizen.post("/login/otp", data={"csrf_token": csrf_token(page.text), "code": code})
    assert second.status_code == 302 and second.headers["Location"].endswith("/account")
    assert citizen.get("/account").status_code == 200
    # The case is finished: this browser no longer holds its token.
    assert browser.get("/onboarding/status").headers["Location"].endswith(START)


def reading_for_pid(app) -> str:
    reader = app.extensions["ekyc.reader"]
    return reader.reading.national_id


def test_register_down_waits_and_the_status_page_refreshes_itself(ekyc_app, citizen):
    app = ekyc_app()  # REGISTER_URL points at a closed port
    app.extensions["ekyc.reader"] = FakeReader(reading_for(citizen))
    browser = Browser(app.test_client())
    browser.capture_all()
    browser.form("/onboarding/submit", page_url="/onboarding/review")
    status = browser.get("/onboarding/status")
    assert status.status_code == 200
    assert re.search(r'<noscript><meta http-equiv="refresh" content="\d+"></noscript>',
                     status.text)
    assert 'data-poll="/onboarding/status.json"' in status.text
    assert 'role="status"' in status.text
    assert browser.get("/onboarding/status.json").json["state"] == "waiting_register"
    assert "/onboarding/activate" not in status.text


def test_rejected_case_says_why_and_offers_a_new_application(ekyc_app, citizen):
    app = ekyc_app()
    app.extensions["ekyc.reader"] = FakeReader(reading_for(citizen, national_id=None))
    browser = Browser(app.test_client())
    browser.capture_all()
    browser.form("/onboarding/submit", page_url="/onboarding/review")
    status = browser.get("/onboarding/status")
    assert browser.get("/onboarding/status.json").json["state"] == "rejected"
    assert 'class="reasons"' in status.text
    assert 'http-equiv="refresh"' not in status.text
    restart = browser.form("/onboarding/restart", page_url="/onboarding/status")
    assert restart.headers["Location"].endswith(START)
    assert browser.get("/onboarding/status").headers["Location"].endswith(START)


def test_needs_review_says_an_officer_will_decide(approving):
    app = approving(EKYC_FACE_CHECK="required")
    for name in ("ekyc.face_matcher", "ekyc.liveness", "ekyc.face_index"):
        app.extensions.pop(name)  # no biometric components: an officer compares the faces
    browser = Browser(app.test_client())
    browser.capture_all()
    browser.form("/onboarding/submit", page_url="/onboarding/review")
    status = browser.get("/onboarding/status")
    assert browser.get("/onboarding/status.json").json["state"] == "needs_review"
    assert 'class="ref"' in status.text  # a reference to quote at the counter
    assert "/onboarding/activate" not in status.text


def test_submitted_case_cannot_be_changed_from_the_pages(approving):
    app = approving()
    browser = Browser(app.test_client())
    browser.capture_all()
    browser.form("/onboarding/submit", page_url="/onboarding/review")
    for url in ("/onboarding/card/front", "/onboarding/selfie", "/onboarding/review"):
        assert browser.get(url).headers["Location"].endswith("/onboarding/status"), url


def test_an_expired_application_starts_over(app, browser):
    import datetime as dt

    from ekyc.models import Case
    from idp.extensions import db

    browser.consent()
    with app.app_context():
        case = db.session.scalars(db.select(Case)).one()
        case.created_at -= dt.timedelta(seconds=app.config["EKYC_CASE_TTL"] + 60)
        db.session.commit()
        db.session.remove()
    upload = browser.card("front", photo())
    assert upload.status_code == 410
    assert 'role="alert"' in upload.text and 'id="consent"' in upload.text  # the start page
    assert browser.get("/onboarding/selfie").headers["Location"].endswith(START)


# -- CSRF, the case token, language ------------------------------------------------------------

def test_every_form_refuses_a_post_without_its_csrf_token(app, browser):
    from ekyc import policy

    posts = {START: {"consent": "yes", "consent_version": policy.CONSENT_VERSION}}
    for url, data in posts.items():
        assert browser.post(url, data).status_code == 400
    assert _cases(app) == []
    browser.consent()
    forms = ["/onboarding/card/front", "/onboarding/card/back", "/onboarding/selfie",
             "/onboarding/submit", "/onboarding/restart", "/onboarding/activate",
             "/onboarding/activate/app"]
    for url in forms:
        response = browser.post(url, {"photo": (io.BytesIO(photo()), "a.jpg", "image/jpeg")},
                                content_type="multipart/form-data")
        assert response.status_code == 400, url
        assert "csrf" in response.text.lower(), url
    (case,) = _cases(app)
    assert case.state == "created"
    assert browser.get("/onboarding/card/front").status_code == 200  # the case was kept


def test_case_token_is_never_in_a_url_a_page_or_a_log(approving, caplog):
    caplog.set_level(logging.DEBUG)
    app = approving()
    browser = Browser(app.test_client())
    browser.capture_all()
    browser.form("/onboarding/submit", page_url="/onboarding/review")
    browser.get("/onboarding/status")
    with browser.client.session_transaction() as flask_session:
        token = flask_session["ekyc"]["token"]
    for response in browser.responses:
        assert token not in response.headers.get("Location", "")
        assert token not in response.get_data(as_text=True)
    assert token not in caplog.text
    for record in caplog.records:
        assert token not in record.getMessage()


def test_english_switch(browser):
    browser.get("/lang/en?next=/onboarding/")
    page = browser.get(START)
    assert '<html lang="en">' in page.text
    assert "BIOMETRIC DATA" in page.text
    assert "Create your electronic identity" in page.text
    assert 'hreflang="vi"' in page.text
    browser.consent()
    (case,) = _cases(browser.client.application)
    assert case.locale == "en"
