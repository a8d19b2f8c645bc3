"""TOTP second factor (RFC 6238): enrolment from the account page, the second login step,
replay refusal (RFC 6238 5.2), throttling of code guessing (NIST SP 800-63B 5.2.2), and the
`amr` values portals receive (RFC 8176: pwd; pwd + otp + mfa; OIDC Core 2).
"""

from __future__ import annotations

import re
import time

import pyotp
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.helpers import authorize_params, csrf_token, full_login, login, query_of, register_client

WRONG_CODE = "000000"


def _enrol(client) -> pyotp.TOTP:
    """Turn on TOTP from the account page like a citizen with an authenticator app."""
    page = client.get("/account/totp")
    assert page.status_code == 200
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page.text).group(1)
    assert f"secret={secret}" in page.text  # the otpauth:// link carries the same key
    totp = pyotp.TOTP(secret)
    response = client.post("/account/totp", data={"csrf_token": csrf_token(page.text),
                                                  "code": totp.now()})
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    return totp


def _otp(client, code: str):
    page = client.get("/login/otp")
    assert page.status_code == 200, page.status_code
    return client.post("/login/otp", data={"csrf_token": csrf_token(page.text), "code": code})


def _next_code(totp: pyotp.TOTP) -> str:
    """The code of the next 30-second step: within the one-step drift the server allows."""
    return totp.at(time.time() + 30)


def _claims(client, id_token: str) -> dict:
    return jwt.decode(id_token, KeySet.import_key_set(client.get("/jwks").json)).claims


def _sign_out(client):
    page = client.get("/logout")
    client.post("/logout/confirm", data={"csrf_token": csrf_token(page.text),
                                         "token": re.search(r'name="token" value="([^"]+)"',
                                                            page.text).group(1)})
    assert client.get("/account").status_code == 302


def test_enrolment_needs_a_signed_in_citizen(client):
    response = client.get("/account/totp")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_enrolment_refuses_a_wrong_code_and_keeps_the_factor_off(app, client):
    login(client)
    page = client.get("/account/totp")
    response = client.post("/account/totp", data={"csrf_token": csrf_token(page.text),
                                                  "code": WRONG_CODE})
    assert response.status_code == 400 and 'role="alert"' in response.text
    with app.app_context():
        from idp.accounts.authn import find_account

        assert find_account("001199000001").totp_secret_encrypted is None


def test_secret_is_stored_encrypted(app, client):
    """The shared secret never sits in the database in the clear."""
    login(client)
    totp = _enrol(client)
    with app.app_context():
        from idp.accounts.authn import find_account

        stored = find_account("001199000001").totp_secret_encrypted
        assert stored and totp.secret not in stored


def test_login_after_enrolment_requires_the_second_step(app, client):
    """Password alone no longer signs in: the citizen is sent to the code page and holds no
    session until the code is right."""
    login(client)
    totp = _enrol(client)
    _sign_out(client)
    response = login(client)
    assert response.status_code == 302 and response.headers["Location"] == "/login/otp"
    assert "idp_session=" not in "".join(response.headers.getlist("Set-Cookie")) or \
        client.get("/account").status_code == 302
    assert client.get("/account").status_code == 302
    wrong = _otp(client, WRONG_CODE)
    assert wrong.status_code == 401 and client.get("/account").status_code == 302
    right = _otp(client, _next_code(totp))
    assert right.status_code == 302 and right.headers["Location"] == "/account"
    assert client.get("/account").status_code == 200


def test_code_page_without_a_password_step_goes_back_to_login(client):
    response = client.get("/login/otp")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    posted = client.post("/login/otp", data={"code": "123456"})
    assert posted.status_code in (302, 400)  # back to login, or refused for lack of CSRF token
    assert client.get("/account").status_code == 302


def test_password_step_expires(app, client):
    """The pending password step lives a few minutes (PENDING_TTL), then starts over."""
    login(client)
    totp = _enrol(client)
    _sign_out(client)
    login(client)
    with client.session_transaction() as flow:
        flow["pending"] = {**flow["pending"], "at": flow["pending"]["at"] - 3600}
    assert client.get("/login/otp").status_code == 302
    assert client.post("/login/otp", data={"code": totp.now()}).status_code in (302, 400)
    assert client.get("/account").status_code == 302


def test_replayed_code_is_refused(app, client):
    """RFC 6238 5.2: a code accepted once (here at enrolment and at the first login) is never
    accepted again, even within its 30-second step."""
    login(client)
    totp = _enrol(client)
    enrolment_code = totp.now()
    _sign_out(client)
    login(client)
    next_code = _next_code(totp)
    if next_code != enrolment_code:
        replay = _otp(client, enrolment_code)
        assert replay.status_code == 401, "the enrolment code was accepted again"
    assert _otp(client, next_code).status_code == 302
    _sign_out(client)
    login(client)
    again = _otp(client, next_code)
    assert again.status_code == 401
    assert client.get("/account").status_code == 302


def test_code_guessing_locks_the_account(make_app):
    """NIST SP 800-63B 5.2.2: wrong codes count like wrong passwords; once locked, not even the
    right code gets through, and the password step is refused too."""
    app = make_app(LOGIN_MAX_FAILURES=3)
    client = app.test_client()
    login(client)
    totp = _enrol(client)
    _sign_out(client)
    login(client)
    for _ in range(3):
        assert _otp(client, WRONG_CODE).status_code == 401
    blocked = _otp(client, _next_code(totp))
    assert blocked.status_code == 429
    assert client.get("/account").status_code == 302
    assert login(app.test_client()).status_code == 429


def test_amr_is_pwd_for_a_password_login(app, client):
    """RFC 8176: amr ["pwd"] after a password-only login."""
    rp = register_client(app)
    claims = _claims(client, full_login(client, rp)["id_token"])
    assert claims["amr"] == ["pwd"]


def test_amr_is_pwd_otp_mfa_after_the_second_step(app, client):
    """RFC 8176: amr lists every method used, and `mfa` when there were several."""
    login(client)
    totp = _enrol(client)
    _sign_out(client)
    rp = register_client(app, first_party=True)
    from tests.helpers import exchange, pkce_pair

    verifier, challenge = pkce_pair()
    response = client.get("/authorize", query_string=authorize_params(
        rp, code_challenge=challenge, code_challenge_method="S256"))
    interaction = query_of(response.headers["Location"])["interaction"]
    step_one = login(client, interaction=interaction)
    assert step_one.headers["Location"] == "/login/otp"
    step_two = _otp(client, _next_code(totp))
    assert step_two.headers["Location"].startswith("/authorize/resume")
    callback = query_of(client.get(step_two.headers["Location"]).headers["Location"])
    tokens = exchange(client, rp, callback["code"], verifier).json
    assert set(_claims(client, tokens["id_token"])["amr"]) == {"pwd", "otp", "mfa"}


def test_removing_the_factor_restores_password_only_login(app, client):
    login(client)
    _enrol(client)
    page = client.get("/account")
    removed = client.post("/account/totp/remove", data={"csrf_token": csrf_token(page.text)})
    assert removed.status_code == 302
    _sign_out(client)
    response = login(client)
    assert response.headers["Location"] == "/account"
