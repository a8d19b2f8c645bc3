"""An id_token_hint must be an ID token we issued: not another JWT we also sign."""

import time

from idp import keys
from tests.helpers import authorize_params, full_login, query_of, register_client


def _other_jwts(app, rp) -> dict:
    with app.app_context():
        now = int(time.time())
        base = {"iss": app.config["ISSUER"], "aud": rp.client_id, "iat": now, "sub": "x"}
        return {
            "logout token": keys.sign({**base, "exp": now + 60, "jti": "j",
                                       "events": {"http://schemas.openid.net/event/"
                                                  "backchannel-logout": {}}},
                                      typ="logout+jwt"),
            "signed userinfo": keys.sign({**base, "name": "x"}),
        }


def test_other_signed_jwts_are_not_accepted_as_id_token_hints(app, client):
    rp = register_client(app, first_party=True)
    tokens = full_login(client, rp)
    good = client.get("/authorize", query_string=authorize_params(
        rp, prompt="none", id_token_hint=tokens["id_token"]))
    assert "code" in query_of(good.headers["Location"])
    for name, jwt in _other_jwts(app, rp).items():
        response = client.get("/authorize", query_string=authorize_params(
            rp, prompt="none", id_token_hint=jwt))
        assert query_of(response.headers["Location"]).get("error") == "invalid_request", name
        page = client.get("/logout", query_string={"id_token_hint": jwt,
                                                   "post_logout_redirect_uri": rp.redirect_uri})
        assert page.status_code == 200, name  # a confirmation page, not a logout redirect
