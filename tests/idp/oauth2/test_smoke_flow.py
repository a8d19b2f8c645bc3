"""The happy path a portal and a citizen notice first: sign in, tokens, userinfo, SSO."""

from tests.helpers import full_login, get_code, register_client


def test_code_flow_with_login_consent_tokens_and_userinfo(app, client):
    rp = register_client(app)
    tokens = full_login(client, rp)
    assert tokens["token_type"] == "Bearer" and tokens["id_token"]
    info = client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200
    assert info.json["name"] == "Nguyễn Thị Minh Anh"


def test_second_portal_gets_code_without_login_form(app, client):
    rp_a = register_client(app, first_party=True)
    rp_b = register_client(app, first_party=True,
                           redirect_uris=["https://portal-b.example.vn/cb"])
    full_login(client, rp_a)
    response = client.get("/authorize", query_string={
        "client_id": rp_b.client_id, "redirect_uri": rp_b.redirect_uri, "response_type": "code",
        "scope": "openid", "state": "xyz"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith(rp_b.redirect_uri + "?code=")
    callback, _ = get_code(client, rp_b, login_first=False)
    assert "code" in callback
