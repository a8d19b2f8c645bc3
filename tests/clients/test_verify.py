"""The portal refuses every ID token and logout token it must not trust (OIDC Core 3.1.3.7,
Back-Channel Logout 1.0 2.6), and accepts the ones the IdP really issues."""

from __future__ import annotations

import base64
import hmac
import time

import pytest
from joserfc import jwt

from clients.portal.acr import LOA1, LOA1_MFA, LOA2, LOA2_MFA, satisfies
from clients.portal.verify import TokenError, verify_id_token, verify_logout_token

from .tokens import (
    CONF,
    FORGED_KEY,
    IDP_KEY,
    FakeProvider,
    b64,
    id_claims,
    logout_claims,
    sign,
    unsigned,
)


def check_id(token: str, *, nonce="n-0S6_WzA2Mj", acr_values=(), max_age=None,
             access_token="AT") -> dict:
    return verify_id_token(token, provider=FakeProvider(), conf=CONF, nonce=nonce,
                           acr_values=list(acr_values), max_age=max_age,
                           access_token=access_token)


class Once:
    def __init__(self):
        self.seen = set()

    def __call__(self, name: str, ttl: int) -> bool:
        fresh = name not in self.seen
        self.seen.add(name)
        return fresh


def check_logout(token: str, once=None) -> dict:
    return verify_logout_token(token, provider=FakeProvider(), conf=CONF, once=once or Once())


def test_a_genuine_id_token_is_accepted():
    claims = check_id(sign(id_claims()), acr_values=[LOA1], max_age=60)
    assert claims["sub"] == "pairwise-sub" and claims["sid"] == "sid-1"


def hs256_with_public_key() -> str:
    """Algorithm confusion: the IdP's public key used as an HMAC secret."""
    signing_input = f"{b64({'alg': 'HS256', 'kid': 'idp-es256'})}.{b64(id_claims())}"
    mac = hmac.new(IDP_KEY.as_pem(private=False), signing_input.encode(), "sha256").digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


@pytest.mark.parametrize("token, reason", [
    (lambda: sign(id_claims(), key=FORGED_KEY), "bad signature"),
    (lambda: unsigned(id_claims()), "unexpected alg 'none'"),
    (lambda: hs256_with_public_key(), "unexpected alg 'HS256'"),
    (lambda: sign(id_claims(), header={"kid": "unknown"}), "does not publish"),
    (lambda: sign(id_claims(aud="another-portal")), "wrong aud"),
    (lambda: sign(id_claims(aud=["portal-test", "another"])), "azp missing"),
    (lambda: sign(id_claims(azp="another")), "wrong azp"),
    (lambda: sign(id_claims(iss="https://evil.example")), "wrong iss"),
    (lambda: sign(id_claims(nonce="another-browser")), "wrong nonce"),
    (lambda: sign(id_claims(nonce=None)), "wrong nonce"),
    (lambda: sign(id_claims(exp=int(time.time()) - 120)), "expired"),
    (lambda: sign(id_claims(iat=int(time.time()) + 600)), "bad iat"),
    (lambda: sign(id_claims(at_hash="AAAAAAAAAAAAAAAAAAAAAA")), "wrong at_hash"),
    (lambda: sign(id_claims(sid=None)), "no sid"),
    (lambda: sign(id_claims(sub="")), "no sub"),
    (lambda: sign(logout_claims(nonce="n-0S6_WzA2Mj", at_hash=id_claims()["at_hash"], exp=
                        int(time.time()) + 60), header={"typ": "logout+jwt"}), "typ"),
    (lambda: "not-a-jwt", "not a compact JWS"),
    (lambda: f"{b64({'alg': 'ES256'})}.{b64(id_claims())}.sig", "no kid"),
])
def test_id_token_refused(token, reason):
    # tokens are made when the test runs (made at import they expire in a long suite)
    with pytest.raises(TokenError, match=reason):
        check_id(token())


def test_acr_must_satisfy_what_was_asked():
    with pytest.raises(TokenError, match="acr"):
        check_id(sign(id_claims(acr=LOA1)), acr_values=[LOA1_MFA, LOA2_MFA])
    assert check_id(sign(id_claims(acr=LOA1_MFA)), acr_values=[LOA1_MFA, LOA2_MFA])


def test_auth_time_must_be_recent_when_max_age_was_sent():
    old = sign(id_claims(auth_time=int(time.time()) - 3600))
    with pytest.raises(TokenError, match="auth_time"):
        check_id(old, max_age=300)
    assert check_id(old)  # without max_age an old login is fine


def test_access_token_must_match_at_hash():
    with pytest.raises(TokenError, match="at_hash"):
        check_id(sign(id_claims()), access_token="another access token")


@pytest.mark.parametrize("have, wanted, ok", [
    (LOA1, LOA1, True), (LOA1, LOA1_MFA, False), (LOA1_MFA, LOA1, True),
    (LOA2, LOA1_MFA, False), (LOA2_MFA, LOA1_MFA, True), (LOA1_MFA, LOA2, False),
    (LOA2, LOA2, True), ("urn:other", LOA1, False), (None, LOA1, False),
])
def test_acr_ordering(have, wanted, ok):
    assert satisfies(have, wanted) is ok


# -- logout tokens ------------------------------------------------------------------------

def logout_token(**changes) -> str:
    return sign(logout_claims(**changes), header={"typ": "logout+jwt"})


def test_a_genuine_logout_token_is_accepted_once():
    once = Once()
    token = logout_token()
    assert check_logout(token, once)["sid"] == "sid-1"
    with pytest.raises(TokenError, match="jti replayed"):
        check_logout(token, once)


def test_a_refused_logout_token_does_not_spend_its_jti():
    once = Once()
    with pytest.raises(TokenError, match="nonce"):
        check_logout(logout_token(jti="j-1", nonce="x"), once)
    assert check_logout(logout_token(jti="j-1"), once)


@pytest.mark.parametrize("token, reason", [
    (lambda: sign(logout_claims(), key=FORGED_KEY, header={"typ": "logout+jwt"}), "bad signature"),
    (lambda: unsigned(logout_claims()), "unexpected alg 'none'"),
    (lambda: logout_token(aud="another-portal"), "wrong aud"),
    (lambda: logout_token(iss="https://evil.example"), "wrong iss"),
    (lambda: logout_token(iat=None), "bad iat"),
    (lambda: logout_token(iat=int(time.time()) - 3600, exp=None), "bad iat"),
    (lambda: logout_token(events=None), "no logout event"),
    (lambda: logout_token(events={"http://schemas.openid.net/event/other": {}}), "no logout event"),
    (lambda: logout_token(nonce="n"), "nonce present"),
    (lambda: logout_token(sid=None, sub=None), "no sid or sub"),
    (lambda: logout_token(jti=None), "no jti"),
    (lambda: sign(id_claims()), "typ is not logout"),  # an ID token is not a logout token
    (lambda: sign(logout_claims(), header={"typ": "JWT"}), "typ"),
])
def test_logout_token_refused(token, reason):
    with pytest.raises(TokenError, match=reason):
        check_logout(token())


def test_a_rotated_key_is_fetched_and_made_up_kids_are_not(monkeypatch):
    from joserfc.jwk import ECKey

    from clients.portal import oidc
    from clients.portal.oidc import Provider

    new_key = ECKey.generate_key("P-256", parameters={"kid": "idp-new", "alg": "ES256"})
    published = [[IDP_KEY.as_dict(private=False)]]
    fetches = []

    def fake_get_json(url, timeout):
        fetches.append(url)
        return {"keys": published[0]}

    monkeypatch.setattr(oidc, "_get_json", fake_get_json)
    provider = Provider(CONF)
    provider._meta = {"issuer": CONF["ISSUER"], "jwks_uri": "https://idp.example.vn/jwks"}
    check = {"nonce": "n-0S6_WzA2Mj", "acr_values": [], "max_age": None,
             "access_token": "AT", "provider": provider, "conf": CONF}
    assert verify_id_token(sign(id_claims()), **check)
    published[0] = published[0] + [new_key.as_dict(private=False)]  # the IdP rotates
    rotated = jwt.encode({"alg": "ES256", "kid": "idp-new"}, id_claims(), new_key)
    assert verify_id_token(rotated, **check)
    assert len(fetches) == 2
    with pytest.raises(TokenError, match="does not publish"):
        verify_id_token(sign(id_claims(), header={"kid": "made-up"}), **check)
    assert len(fetches) == 2
