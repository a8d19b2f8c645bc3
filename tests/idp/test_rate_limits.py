"""Every rate limit, in one place, as a citizen or an attacker would notice it.

| limit (settings)                                  | where it is proven                          |
|---------------------------------------------------|---------------------------------------------|
| password, per account: LOGIN_MAX_FAILURES,        | tests/idp/accounts/test_login.py (locks     |
|   LOGIN_LOCKOUT_SECONDS                           |   even for the right password, per account  |
|                                                   |   not per browser, ends after its duration) |
| password, per IP: LOGIN_IP_MAX_FAILURES,          | test_login.py (spraying many ID numbers,    |
|   LOGIN_IP_WINDOW                                 |   another address unaffected); here: the    |
|                                                   |   window ends, the right password is        |
|                                                   |   refused while it lasts                    |
| TOTP code at sign-in (counts with the password)   | tests/idp/accounts/test_totp.py (locks);    |
|                                                   |   here: per-IP, and the lock ends           |
| TOTP code at /login/step-up                       | tests/idp/test_step_up.py (right code       |
|                                                   |   refused once locked); here: the lock ends |
| new onboarding cases per IP: EKYC_CASES_PER_IP,   | tests/ekyc/test_api.py (429, Retry-After,   |
|   EKYC_CASES_WINDOW (API and /onboarding pages)   |   another address), tests/ekyc/test_views.py|
|                                                   |   (pages); here: the window ends, the pages |
|                                                   |   and the API share one counter, another    |
|                                                   |   address on the pages is not blocked       |
| dynamic client registration per IP:               | here (all of it)                            |
|   REGISTRATION_PER_IP, REGISTRATION_WINDOW        |                                             |
| behind a reverse proxy (TRUSTED_PROXY_HOPS)       | tests/idp/test_proxy.py                     |

A window "ends" here by deleting its Redis key, which is what Redis does when the TTL runs out;
each such test first checks that the key has a TTL within the window, so nothing sleeps.
"""

from __future__ import annotations

import pytest

from idp import store
from tests.helpers import CITIZEN_PASSWORD, login
from tests.idp.accounts.test_login import _account_id
from tests.idp.accounts.test_totp import WRONG_CODE, _enrol, _next_code, _otp, _sign_out

WRONG = "not-the-Password-1"
ATTACKER, CITIZEN = "198.51.100.9", "192.0.2.44"


def _from(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _expire(app, key: str, window: int) -> None:
    """End a fixed window the way Redis does: the key has a TTL within it, then is gone."""
    with app.app_context():
        kv = store.kv()
        assert 0 < kv.ttl(key) <= window, (key, kv.ttl(key))
        kv.delete(key)


def _spray(client, count: int) -> None:
    """Wrong passwords for ID numbers that do not exist: only the per-IP counter grows."""
    for n in range(count):
        assert login(client, pid=f"0011990002{n:02d}", password=WRONG).status_code == 401


# -- password, per IP ----------------------------------------------------------------------------

def test_the_ip_throttle_refuses_the_right_password_until_its_window_ends(make_app):
    app = make_app(LOGIN_IP_MAX_FAILURES=3)
    attacker = _from(app, ATTACKER)
    _spray(attacker, 3)
    assert login(attacker, password=CITIZEN_PASSWORD).status_code == 429
    assert login(_from(app, CITIZEN)).status_code == 302  # the throttle is per address
    _expire(app, f"fail-ip:{ATTACKER}", app.config["LOGIN_IP_WINDOW"])
    assert login(attacker).status_code == 302


# -- TOTP codes at sign-in -----------------------------------------------------------------------

@pytest.fixture
def totp_app(make_app):
    """The demo citizen with an authenticator app; returns (app, its TOTP)."""
    app = make_app(LOGIN_MAX_FAILURES=3, LOGIN_IP_MAX_FAILURES=3)
    client = app.test_client()
    login(client)
    totp = _enrol(client)
    _sign_out(client)
    return app, totp


def test_code_guessing_from_one_address_is_throttled_per_ip(totp_app):
    """Wrong codes count for the address too: once it is throttled, even the right code is
    refused from there."""
    app, totp = totp_app
    attacker = _from(app, ATTACKER)
    _spray(attacker, 2)
    login(attacker)
    assert _otp(attacker, WRONG_CODE).status_code == 401  # the third failure from here
    assert _otp(attacker, _next_code(totp)).status_code == 429


def test_a_code_lockout_ends_and_the_right_code_then_works(totp_app):
    app, totp = totp_app
    client = app.test_client()
    login(client)
    for _ in range(3):
        assert _otp(client, WRONG_CODE).status_code == 401
    code = _next_code(totp)
    assert _otp(client, code).status_code == 429
    account_id = _account_id(app)
    _expire(app, f"lock:{account_id}", app.config["LOGIN_LOCKOUT_SECONDS"])
    with app.app_context():  # the per-IP failures of this test are not what is proven here
        store.kv().delete("fail-ip:127.0.0.1")
    assert _otp(client, code).status_code == 302
    assert client.get("/account").status_code == 200


# -- TOTP codes at /login/step-up ----------------------------------------------------------------

def test_a_step_up_lockout_ends_and_the_right_code_then_works(make_app):
    from tests.idp.test_step_up import _submit, throttled_step_up

    app, client, page, totp = throttled_step_up(make_app)
    _expire(app, f"lock:{_account_id(app)}", app.config["LOGIN_LOCKOUT_SECONDS"])
    response = _submit(client, "/login/step-up", page, code=totp.now())
    assert response.status_code in (302, 303), response.text[:300]


# -- new onboarding cases per IP -----------------------------------------------------------------

API = "/api/onboarding/v1"


@pytest.fixture
def onboarding_app(make_app, tmp_path):
    return make_app(MEDIA_DIR=str(tmp_path / "media"), EKYC_CASES_PER_IP=2,
                    REGISTER_URL="http://127.0.0.1:9")


def _api_case(client):
    from ekyc import policy

    return client.post(f"{API}/cases", json={"consent": True,
                                             "consent_version": policy.CONSENT_VERSION})


def _page_case(client):
    from tests.ekyc.test_views import Browser

    return Browser(client).consent()


def test_pages_and_api_share_one_case_counter_per_address(onboarding_app):
    """An app cannot get round the limit by switching between the pages and the API."""
    client = _from(onboarding_app, ATTACKER)
    assert _page_case(client).status_code == 302
    assert _api_case(client).status_code == 201
    blocked = _api_case(client)
    assert blocked.status_code == 429 and blocked.json["error"] == "rate_limited"
    assert 0 < int(blocked.headers["Retry-After"]) <= onboarding_app.config["EKYC_CASES_WINDOW"]
    assert _page_case(client).status_code == 429
    assert _page_case(_from(onboarding_app, CITIZEN)).status_code == 302  # another network


def test_the_case_window_ends(onboarding_app):
    client = _from(onboarding_app, ATTACKER)
    for _ in range(2):
        assert _api_case(client).status_code == 201
    assert _api_case(client).status_code == 429
    _expire(onboarding_app, f"ekyc-cases-ip:{ATTACKER}",
            onboarding_app.config["EKYC_CASES_WINDOW"])
    assert _api_case(client).status_code == 201


# -- dynamic client registration per IP ----------------------------------------------------------

METADATA = {"client_name": "Cổng thử", "redirect_uris": ["https://portal.example.vn/cb"]}
TOKEN = "initial-access-token-for-tests"


def _register(client, token: str | None = None, **metadata):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/register", json={**METADATA, **metadata}, headers=headers)


def _assert_rate_limited(response, window: int) -> None:
    """RFC 6585 4 and the registration endpoint's JSON error shape (RFC 7591 3.2.2)."""
    assert response.status_code == 429
    assert response.mimetype == "application/json"
    assert response.json["error"] == "rate_limited" and response.json["error_description"]
    assert 0 < int(response.headers["Retry-After"]) <= window
    assert response.headers["Cache-Control"] == "no-store"
    assert "client_id" not in response.json


def test_open_registration_is_limited_per_address(make_app):
    app = make_app(REGISTRATION_PER_IP=3)
    client = _from(app, ATTACKER)
    for _ in range(3):
        assert _register(client).status_code == 201
    _assert_rate_limited(_register(client), app.config["REGISTRATION_WINDOW"])
    assert _register(_from(app, CITIZEN)).status_code == 201  # another address


def test_with_an_initial_access_token_the_limit_applies_too(make_app):
    """Closed registration: guesses of the token count, and once limited even the right
    token registers nothing."""
    app = make_app(REGISTRATION_OPEN=False, REGISTRATION_INITIAL_ACCESS_TOKEN=TOKEN,
                   REGISTRATION_PER_IP=3)
    client = _from(app, ATTACKER)
    assert _register(client, TOKEN).status_code == 201
    for guess in ("guess-1", "guess-2"):
        assert _register(client, guess).status_code == 401
    _assert_rate_limited(_register(client, TOKEN), app.config["REGISTRATION_WINDOW"])
    assert _register(_from(app, CITIZEN), TOKEN).status_code == 201


def test_refused_metadata_counts_and_the_window_ends(make_app):
    app = make_app(REGISTRATION_PER_IP=2)
    client = _from(app, ATTACKER)
    assert _register(client, redirect_uris=["not a uri"]).status_code == 400
    assert _register(client).status_code == 201
    _assert_rate_limited(_register(client), app.config["REGISTRATION_WINDOW"])
    _expire(app, f"register-ip:{ATTACKER}", app.config["REGISTRATION_WINDOW"])
    assert _register(client).status_code == 201


def test_managing_a_registration_is_not_limited(make_app):
    """RFC 7592 reads and updates use the client's own registration access token: only new
    registrations are limited."""
    app = make_app(REGISTRATION_PER_IP=1)
    client = _from(app, ATTACKER)
    created = _register(client).json
    _assert_rate_limited(_register(client), app.config["REGISTRATION_WINDOW"])
    auth = {"Authorization": f"Bearer {created['registration_access_token']}"}
    for _ in range(3):
        assert client.get(f"/register/{created['client_id']}", headers=auth).status_code == 200


@pytest.mark.parametrize("name", ["REGISTRATION_PER_IP", "REGISTRATION_WINDOW"])
def test_registration_limits_must_be_positive(name):
    from idp.settings import ConfigError, load_settings, validate
    from tests.conftest import base_config

    with pytest.raises(ConfigError, match=name):
        validate(load_settings(base_config(**{name: 0}), environ={}))
