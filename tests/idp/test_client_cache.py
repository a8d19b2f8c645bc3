"""Client metadata cached on token paths: changes through the IdP apply at once; the
authorization endpoint always reads the database (a removed redirect URI stops working)."""

from idp.extensions import db
from idp.models import Client
from tests.helpers import authorize_params, register_client


def _client_credentials(client, rp):
    return client.post("/token", data={"grant_type": "client_credentials"}, auth=rp.auth)


def test_deleting_a_registration_stops_its_secret_at_once(app, client):
    response = client.post("/register", json={
        "redirect_uris": ["https://portal-c.example.vn/cb"],
        "grant_types": ["authorization_code", "client_credentials"]})
    body = response.json
    rp_auth = (body["client_id"], body["client_secret"])
    assert client.post("/token", data={"grant_type": "client_credentials"},
                       auth=rp_auth).status_code == 200  # now cached
    deleted = client.delete(f"/register/{body['client_id']}", headers={
        "Authorization": f"Bearer {body['registration_access_token']}"})
    assert deleted.status_code == 204
    again = client.post("/token", data={"grant_type": "client_credentials"}, auth=rp_auth)
    assert again.status_code == 401 and again.json["error"] == "invalid_client"


def test_authorization_endpoint_sees_a_removed_redirect_uri_at_once(app, client):
    rp = register_client(app, grant_types=["authorization_code", "client_credentials"])
    assert _client_credentials(client, rp).status_code == 200  # cached for the token path
    with app.app_context():
        row = db.session.get(Client, rp.client_id)
        row.client_metadata = {**row.client_metadata,
                               "redirect_uris": ["https://elsewhere.example.vn/cb"]}
        db.session.commit()
    response = client.get("/authorize", query_string=authorize_params(rp))
    assert response.status_code == 400 and "Location" not in response.headers


def test_cache_can_be_switched_off(make_app):
    app = make_app(CLIENT_CACHE_SECONDS=0)
    client = app.test_client()
    rp = register_client(app, grant_types=["authorization_code", "client_credentials"])
    assert _client_credentials(client, rp).status_code == 200
    with app.app_context():
        db.session.delete(db.session.get(Client, rp.client_id))
        db.session.commit()
    assert _client_credentials(client, rp).status_code == 401
