"""Step-up at the IdP: acr_values and an essential acr claim as a requirement.

What a portal and a citizen notice: the ID token's acr is the first value asked for that the
session satisfies; a missing second factor is asked for inside the same SSO session (TOTP code,
passkey, or an authenticator app set up on the spot), after which the ID token carries the
`:mfa` acr and amr otp/hwk + mfa; a level-1 account asked for level 2 gets an explanation page
whose button returns `unmet_authentication_requirements` (OIDC Unmet Authentication Requirements
1.0); prompt=none gets `interaction_required`.
"""

from __future__ import annotations

import json
import re
import time

import pyotp
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import crypto
from idp.accounts.authn import find_account
from idp.extensions import db
from idp.models import Account, WebAuthnCredential
from tests.conftest import ISSUER
from tests.helpers import (
    CITIZEN_PID,
    authorize_params,
    csrf_token,
    exchange,
    follow_to_client,
    login,
    pkce_pair,
    query_of,
    register_client,
)
from tests.idp.accounts.test_passkeys import SoftAuthenticator, _stored_credential, b64
from tests.idp.oauth2.test_conformance_basic import age_sso_session

LOA1, LOA1_MFA = "urn:dinhdanh:loa:1", "urn:dinhdanh:loa:1:mfa"
LOA2, LOA2_MFA = "urn:dinhdanh:loa:2", "urn:dinhdanh:loa:2:mfa"
WRONG_CODE_TEXT = "That code is not correct"


# -- a portal and a citizen ---------------------------------------------------------------------

def _sign_in(client) -> None:
    """The citizen signs in with the password only (no portal involved)."""
    assert login(client).status_code == 302


def _give_totp(app) -> pyotp.TOTP:
    """The demo citizen turns on an authenticator app (after the session was created)."""
    secret = pyotp.random_base32()
    with app.app_context():
        account = find_account(CITIZEN_PID)
        account.totp_secret_encrypted = crypto.encrypt(secret)
        db.session.commit()
        db.session.remove()
    return pyotp.TOTP(secret)


def _set_level(app, level: int) -> None:
    with app.app_context():
        find_account(CITIZEN_PID).level = level
        db.session.commit()
        db.session.remove()


def _authorize(client, rp, **params):
    """Start an authorization and follow the IdP's redirects (consent allowed) until the
    portal's redirect or a page the citizen must act on."""
    verifier, challenge = pkce_pair()
    sent = authorize_params(rp, code_challenge=challenge, code_challenge_method="S256", **params)
    response = follow_to_client(client, client.get("/authorize", query_string=sent), rp)
    return response, sent, verifier


def _interaction(page) -> str:
    return re.search(r'name="interaction" value="([^"]+)"', page.text).group(1)


def _submit(client, path: str, page, **fields):
    data = {"csrf_token": csrf_token(page.text), "interaction": _interaction(page), **fields}
    return client.post(path, data=data)


def _callback(response, rp) -> dict:
    assert response.status_code in (302, 303), response.text[:300]
    assert response.headers["Location"].startswith(rp.redirect_uri)
    return query_of(response.headers["Location"])


def _claims(client, id_token: str) -> dict:
    return jwt.decode(id_token, KeySet.import_key_set(client.get("/jwks").json)).claims


def _tokens(client, rp, response, verifier) -> dict:
    callback = _callback(response, rp)
    assert "code" in callback, callback
    tokens = exchange(client, rp, callback["code"], verifier)
    assert tokens.status_code == 200, tokens.json
    return tokens.json


def _is_step_up_page(page) -> bool:
    return page.status_code == 200 and 'action="/login/step-up"' in page.text


def _is_level_page(page) -> bool:
    return page.status_code == 200 and 'action="/login/step-up/level"' in page.text


# -- satisfied requests -------------------------------------------------------------------------

def test_discovery_lists_the_four_acr_values_in_order(client):
    meta = client.get("/.well-known/openid-configuration").json
    assert meta["acr_values_supported"] == [LOA1, LOA1_MFA, LOA2, LOA2_MFA]


def test_satisfied_acr_value_is_the_id_token_acr(app, client):
    rp = register_client(app)
    _sign_in(client)
    response, _sent, verifier = _authorize(client, rp, acr_values=LOA1)
    assert _claims(client, _tokens(client, rp, response, verifier)["id_token"])["acr"] == LOA1
    # The first value the session satisfies wins, even when a higher one is asked first.
    response, _sent, verifier = _authorize(client, rp, acr_values=f"{LOA2} {LOA1}")
    assert _claims(client, _tokens(client, rp, response, verifier)["id_token"])["acr"] == LOA1


def test_voluntary_acr_claim_never_asks_for_more(app, client):
    rp = register_client(app)
    _sign_in(client)
    claims = json.dumps({"id_token": {"acr": {"values": [LOA1_MFA]}}})
    response, _sent, verifier = _authorize(client, rp, claims=claims)
    assert _claims(client, _tokens(client, rp, response, verifier)["id_token"])["acr"] == LOA1


# -- second factor ------------------------------------------------------------------------------

def test_totp_step_up_gives_mfa_acr_in_the_same_session(app, client):
    rp = register_client(app)
    _sign_in(client)
    first = _authorize(client, rp, scope="openid offline_access")
    sid = _claims(client, _tokens(client, rp, first[0], first[2])["id_token"])["sid"]
    totp = _give_totp(app)
    cookie = client.get_cookie("idp_session").value
    page, sent, verifier = _authorize(client, rp, acr_values=LOA1_MFA,
                                      scope="openid offline_access")
    assert _is_step_up_page(page)
    assert "6-digit code" in page.text or 'autocomplete="one-time-code"' in page.text
    response = _submit(client, "/login/step-up", page, code=totp.now(), action="code")
    response = follow_to_client(client, response, rp)
    assert _callback(response, rp)["state"] == sent["state"]
    tokens = _tokens(client, rp, response, verifier)
    claims = _claims(client, tokens["id_token"])
    assert claims["acr"] == LOA1_MFA
    assert {"pwd", "otp", "mfa"} <= set(claims["amr"])
    assert claims["sid"] == sid  # same session for back-channel logout...
    assert client.get_cookie("idp_session").value != cookie  # ...under a fresh cookie,
    stale = app.test_client()  # and the cookie from before the step-up no longer works
    stale.set_cookie("idp_session", cookie)
    assert stale.get("/account").status_code == 302
    # The refreshed ID token says the same.
    refreshed = client.post("/token", auth=rp.auth, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.json
    again = _claims(client, refreshed.json["id_token"])
    assert again["acr"] == LOA1_MFA and "mfa" in again["amr"]
    # The next portal asking for a second factor gets it without another code.
    response, _sent, verifier = _authorize(client, rp, acr_values=LOA1_MFA, prompt="none",
                                           scope="openid offline_access")
    assert _claims(client, _tokens(client, rp, response, verifier)["id_token"])["acr"] == LOA1_MFA


def test_wrong_code_shows_an_error_and_issues_nothing(app, client):
    rp = register_client(app)
    _sign_in(client)
    totp = _give_totp(app)
    client.get("/lang/en")
    page, _sent, _verifier = _authorize(client, rp, acr_values=LOA1_MFA)
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    response = _submit(client, "/login/step-up", page, code=wrong, action="code")
    assert response.status_code == 401
    assert WRONG_CODE_TEXT in response.text and 'role="alert"' in response.text
    assert "Location" not in response.headers
    # The session did not gain a second factor.
    response, _sent, _verifier = _authorize(client, rp, acr_values=LOA1_MFA, prompt="none")
    assert _callback(response, rp)["error"] == "interaction_required"


def throttled_step_up(make_app):
    """Two wrong step-up codes with LOGIN_MAX_FAILURES=2, then the right one is refused (429);
    returns (app, client, step-up page, totp) for tests that go on from there."""
    app = make_app(LOGIN_MAX_FAILURES=2)
    client = app.test_client()
    rp = register_client(app)
    _sign_in(client)
    totp = _give_totp(app)
    page, _sent, _verifier = _authorize(client, rp, acr_values=LOA1_MFA)
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    for _ in range(2):
        assert _submit(client, "/login/step-up", page, code=wrong).status_code == 401
    assert _submit(client, "/login/step-up", page, code=totp.now()).status_code == 429
    return app, client, page, totp


def test_code_guessing_is_throttled(make_app):
    throttled_step_up(make_app)


def test_forms_need_the_csrf_token(app, client):
    rp = register_client(app)
    _sign_in(client)
    totp = _give_totp(app)
    page, _sent, _verifier = _authorize(client, rp, acr_values=LOA1_MFA)
    response = client.post("/login/step-up", data={"interaction": _interaction(page),
                                                   "code": totp.now()})
    assert response.status_code == 400 and "Location" not in response.headers


def test_account_without_second_factor_sets_up_totp_in_the_flow(app, client):
    rp = register_client(app)
    client.get("/lang/en")
    page, _sent, verifier = _authorize(client, rp, acr_values=LOA1_MFA)
    assert page.status_code == 200  # the login page: the citizen signs in inside the flow
    response = follow_to_client(client, login(client, interaction=_interaction(page)), rp)
    assert _is_step_up_page(response)
    assert "Add an authenticator app" in response.text
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', response.text).group(1)
    done = _submit(client, "/login/step-up", response, code=pyotp.TOTP(secret).now(),
                   action="setup")
    claims = _claims(client, _tokens(client, rp, follow_to_client(client, done, rp),
                                     verifier)["id_token"])
    assert claims["acr"] == LOA1_MFA and {"otp", "mfa"} <= set(claims["amr"])
    with app.app_context():
        assert find_account(CITIZEN_PID).totp_secret_encrypted  # kept for the next sign-ins


def test_setting_up_a_second_factor_needs_a_recent_login(app, client):
    rp = register_client(app)
    _sign_in(client)
    client.get("/lang/en")
    age_sso_session(app, client, 3600)  # the login was a while ago
    page, _sent, _verifier = _authorize(client, rp, acr_values=LOA1_MFA)
    assert _is_step_up_page(page)
    assert "sign in again" in page.text and 'class="secret"' not in page.text
    # A code posted anyway does not turn anything on.
    refused = _submit(client, "/login/step-up", page, code="123456", action="setup")
    assert refused.status_code == 302 and "/login/step-up" in refused.headers["Location"]
    relogin = re.search(r'href="(/login\?[^"]+)"', page.text).group(1).replace("&amp;", "&")
    assert client.get(relogin).status_code == 200
    page = follow_to_client(client, login(client, interaction=_interaction(page)), rp)
    assert _is_step_up_page(page) and 'class="secret"' in page.text


def test_passkey_is_offered_and_counts_as_the_second_factor(app, client):
    rp = register_client(app)
    authenticator = SoftAuthenticator()
    user_handle = _stored_credential(app, authenticator)
    _sign_in(client)
    page, _sent, verifier = _authorize(client, rp, acr_values=LOA1_MFA)
    assert _is_step_up_page(page) and 'id="passkey-login"' in page.text
    headers = {"X-CSRFToken": csrf_token(page.text)}
    options = client.post("/login/passkey/options", data="{}", content_type="application/json",
                          headers=headers).json
    response = client.post(f"/login/passkey/verify?interaction={_interaction(page)}",
                           data=json.dumps(authenticator.get(options, user_handle)),
                           content_type="application/json", headers=headers)
    assert response.status_code == 200, response.json
    response = follow_to_client(client, client.get(response.json["next"]), rp)
    claims = _claims(client, _tokens(client, rp, response, verifier)["id_token"])
    assert claims["acr"] == LOA1_MFA and {"pwd", "hwk", "mfa"} <= set(claims["amr"])


def test_passkey_of_another_account_is_refused(app, client):
    rp = register_client(app)
    authenticator = SoftAuthenticator()
    with app.app_context():
        other = Account(pid_hash=crypto.keyed_hash("pid", "001199000002"),
                        pid_encrypted=crypto.encrypt("001199000002"), full_name="Trần Văn B")
        db.session.add(other)
        db.session.flush()
        db.session.add(WebAuthnCredential(
            account_id=other.id, credential_id=b64(authenticator.credential_id),
            public_key=b64(authenticator.cose_public_key()), sign_count=0, name="test"))
        db.session.commit()
        user_handle = other.id.encode()
        db.session.remove()
    _sign_in(client)
    page, _sent, _verifier = _authorize(client, rp, acr_values=LOA1_MFA)
    headers = {"X-CSRFToken": csrf_token(page.text)}
    options = client.post("/login/passkey/options", data="{}", content_type="application/json",
                          headers=headers).json
    response = client.post(f"/login/passkey/verify?interaction={_interaction(page)}",
                           data=json.dumps(authenticator.get(options, user_handle)),
                           content_type="application/json", headers=headers)
    assert response.status_code == 403 and response.json["error"] == "passkey_failed"
    response, _sent, _verifier = _authorize(client, rp, acr_values=LOA1_MFA, prompt="none")
    assert _callback(response, rp)["error"] == "interaction_required"  # still the same citizen


def test_cancel_returns_access_denied(app, client):
    rp = register_client(app)
    _sign_in(client)
    page, sent, _verifier = _authorize(client, rp, acr_values=LOA1_MFA)
    callback = _callback(_submit(client, "/login/step-up", page, action="cancel"), rp)
    assert callback["error"] == "access_denied" and callback["state"] == sent["state"]


def test_client_default_acr_values_apply_when_none_are_sent(app, client):
    rp = register_client(app, default_acr_values=[LOA1_MFA])
    _sign_in(client)
    page, _sent, _verifier = _authorize(client, rp)
    assert _is_step_up_page(page)


# -- level 2 ------------------------------------------------------------------------------------

def test_level_two_asked_of_a_level_one_account(app, client):
    rp = register_client(app)
    _sign_in(client)
    client.get("/lang/en")
    page, sent, _verifier = _authorize(client, rp, acr_values=LOA2)
    assert _is_level_page(page)
    assert "commune police station" in page.text and "level 2" in page.text
    callback = _callback(_submit(client, "/login/step-up/level", page), rp)
    assert callback["error"] == "unmet_authentication_requirements"
    assert callback["state"] == sent["state"] and callback["iss"] == ISSUER
    assert "code" not in callback


def test_level_page_is_in_vietnamese_by_default(app, client):
    rp = register_client(app)
    _sign_in(client)
    page, _sent, _verifier = _authorize(client, rp, acr_values=LOA2_MFA)
    assert _is_level_page(page) and 'lang="vi"' in page.text
    assert "Công an xã" in page.text and "mức độ 2" in page.text


def test_unmet_level_in_form_post_mode(app, client):
    rp = register_client(app)
    _sign_in(client)
    page, sent, _verifier = _authorize(client, rp, acr_values=LOA2, response_mode="form_post")
    response = _submit(client, "/login/step-up/level", page)
    assert response.status_code == 200 and f'action="{rp.redirect_uri}"' in response.text
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', response.text))
    assert fields["error"] == "unmet_authentication_requirements"
    assert fields["state"] == sent["state"] and fields["iss"] == ISSUER


def test_level_two_account_with_second_factor_reaches_the_highest_value(app, client):
    rp = register_client(app)
    _set_level(app, 2)
    _sign_in(client)
    totp = _give_totp(app)
    page, _sent, verifier = _authorize(client, rp, acr_values=LOA2_MFA)
    assert _is_step_up_page(page)
    response = follow_to_client(client, _submit(client, "/login/step-up", page,
                                                code=totp.now()), rp)
    assert _claims(client, _tokens(client, rp, response, verifier)["id_token"])["acr"] == LOA2_MFA


# -- prompt=none and the essential acr claim ----------------------------------------------------

def test_prompt_none_unsatisfied_is_interaction_required(app, client):
    rp = register_client(app)
    _sign_in(client)
    for asked in (LOA1_MFA, LOA2):
        response, sent, _verifier = _authorize(client, rp, acr_values=asked, prompt="none")
        callback = _callback(response, rp)
        assert callback["error"] == "interaction_required"
        assert callback["state"] == sent["state"] and callback["iss"] == ISSUER


def test_essential_acr_claim_is_a_requirement_too(app, client):
    rp = register_client(app)
    _sign_in(client)

    def essential(*values):
        return json.dumps({"id_token": {"acr": {"essential": True, "values": list(values)}}})

    page, _sent, _verifier = _authorize(client, rp, claims=essential(LOA2))
    assert _is_level_page(page)
    callback = _callback(_submit(client, "/login/step-up/level", page), rp)
    assert callback["error"] == "unmet_authentication_requirements"
    # It outranks acr_values: loa:1 in acr_values does not satisfy an essential loa:1:mfa.
    page, _sent, verifier = _authorize(client, rp, claims=essential(LOA1_MFA), acr_values=LOA1)
    assert _is_step_up_page(page)
    response, _sent, _verifier = _authorize(client, rp, claims=essential(LOA1_MFA),
                                            prompt="none")
    assert _callback(response, rp)["error"] == "interaction_required"
    totp = _give_totp(app)
    page, _sent, verifier = _authorize(client, rp, claims=essential(LOA1_MFA))
    response = follow_to_client(client, _submit(client, "/login/step-up", page,
                                                code=totp.at(time.time())), rp)
    assert _claims(client, _tokens(client, rp, response, verifier)["id_token"])["acr"] == LOA1_MFA
