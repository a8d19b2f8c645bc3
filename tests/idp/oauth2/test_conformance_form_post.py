"""OpenID Foundation conformance, Form Post OP plan (oidcc-formpost-basic-certification-test-plan).

The Basic plan with `response_mode=form_post` (OAuth 2.0 Form Post Response Mode): the callback
is an HTML page whose form POSTs to the redirect URI, form-encoded, with the response
parameters as hidden fields, so the code (or error) never appears in a URL. Errors sent back to
the client come the same way. RFC 9207 `iss` is among the fields.
"""

from __future__ import annotations

import json
import secrets
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from tests.conftest import ISSUER
from tests.helpers import (
    RP,
    authorize_params,
    csrf_token,
    exchange,
    follow_to_client,
    login,
    query_of,
    register_client,
)
from tests.idp.oauth2.test_conformance_basic import (
    check_callback,
    check_error_callback,
    check_id_token,
    check_token_response,
    check_userinfo,
    long_state,
)

FORM_ENCODED = "application/x-www-form-urlencoded"


class FormPage(HTMLParser):
    """What a browser would submit from the page: the form, its fields, its buttons."""

    def __init__(self, html: str):
        super().__init__()
        self.forms: list[dict] = []
        self.noscript = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"attrs": attrs, "fields": {}, "buttons": []})
        elif tag == "input" and self.forms:
            if attrs.get("type") == "submit":
                self.forms[-1]["buttons"].append(attrs)
            elif attrs.get("name"):
                assert attrs.get("type") == "hidden", attrs
                self.forms[-1]["fields"][attrs["name"]] = attrs.get("value", "")
        elif tag == "button" and self.forms:
            self.forms[-1]["buttons"].append(attrs)
        elif tag == "noscript":
            self.noscript = True


def read_form_post(response, rp: RP) -> dict:
    """The Form Post checks on the page; returns the fields the browser would post."""
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert "Location" not in response.headers, "form_post must not redirect"
    assert response.mimetype == "text/html"
    assert "no-store" in response.headers.get("Cache-Control", "")
    page = FormPage(response.text)
    assert len(page.forms) == 1
    form = page.forms[0]
    assert form["attrs"].get("method", "").lower() == "post"
    assert form["attrs"].get("action") == rp.redirect_uri
    # No enctype (or the default): the browser posts exactly application/x-www-form-urlencoded.
    assert form["attrs"].get("enctype", FORM_ENCODED).lower() == FORM_ENCODED
    # Without JavaScript the user can still press a button that submits the form.
    assert any(b.get("type", "submit") == "submit" for b in form["buttons"])
    assert page.noscript
    parts = urlsplit(rp.redirect_uri)
    origin = f"{parts.scheme}://{parts.netloc}"
    csp = dict(d.strip().split(" ", 1) for d in
               response.headers["Content-Security-Policy"].split(";") if " " in d.strip())
    assert origin in csp["form-action"].split(), csp.get("form-action")
    return form["fields"]


def drive(client, rp: RP, params: dict, login_first: bool = True, method: str = "get"):
    """Send the authorization request and act as the citizen up to the page that posts back."""
    if method == "post":
        response = client.post("/authorize", data=params)
    else:
        response = client.get("/authorize", query_string=params)
    location = response.headers.get("Location", "")
    if login_first and location.startswith("/login"):
        response = login(client, interaction=query_of(location)["interaction"])
    return follow_to_client(client, response, rp)


def form_post_flow(client, rp: RP, login_first: bool = True, method: str = "get",
                   **params) -> dict:
    """The common flow of the plan, in form_post mode."""
    sent = authorize_params(rp, response_mode="form_post", **params)
    response = drive(client, rp, sent, login_first, method)
    fields = read_form_post(response, rp)
    code = check_callback(fields, sent)
    assert set(fields) == {"code", "state", "iss"} - ({"state"} if "state" not in sent else set())
    assert code not in response.request.url
    tokens = check_token_response(exchange(client, rp, code))
    claims = check_id_token(client, rp, tokens["id_token"], nonce=sent.get("nonce"),
                            access_token=tokens["access_token"])
    check_userinfo(client, tokens["access_token"], claims["sub"])
    return {"sent": sent, "fields": fields, "tokens": tokens, "id_token": claims}


# -- the happy path and the Basic modules in form_post mode -------------------------------------

def test_form_post_happy_path_with_long_state(client, rp):
    """oidcc-server (form_post): code, state and iss posted; the 128-char state byte for byte."""
    state = long_state()
    flow = form_post_flow(client, rp, state=state)
    assert flow["fields"]["state"] == state
    assert flow["fields"]["iss"] == ISSUER


@pytest.mark.parametrize("variant", [
    {"nonce": None},
    {"scope": "openid profile email address phone"},
    {"claims": json.dumps({"userinfo": {"name": {"essential": True}}}), "scope": "openid"},
    {"display": "popup"},
    {"extra_parameter": "ignored"},
    {"acr_values": "urn:dinhdanh:loa:1"},
    {"ui_locales": "en", "claims_locales": "vi"},
    {"max_age": "10000"},
], ids=["no-nonce", "scope-all", "claims-essential", "display-popup", "unknown-parameter",
        "acr-values", "locales", "max-age-10000"])
def test_basic_modules_in_form_post_mode(client, rp, variant):
    """Basic plan modules rerun with response_mode=form_post."""
    flow = form_post_flow(client, rp, **variant)
    if "nonce" in variant:
        assert "nonce" not in flow["id_token"]


def test_form_post_authorization_request_by_post(client, rp):
    """oidcc-ensure-post-request-succeeds (form_post): request and response both by POST."""
    form_post_flow(client, rp, method="post")


def test_form_post_prompt_none_logged_in(client, rp):
    """oidcc-prompt-none-logged-in (form_post): the page comes straight from /authorize."""
    first = form_post_flow(client, rp)
    second = form_post_flow(client, rp, prompt="none", login_first=False)
    assert second["id_token"]["sub"] == first["id_token"]["sub"]
    assert second["id_token"]["auth_time"] == first["id_token"]["auth_time"]


def test_form_post_codereuse(client, rp):
    """oidcc-codereuse (form_post): the posted code is single use."""
    flow = form_post_flow(client, rp)
    again = exchange(client, rp, flow["fields"]["code"])
    assert again.status_code == 400 and again.json["error"] == "invalid_grant"


def test_html_special_characters_in_state_survive_the_form(app, client):
    """State comes back byte for byte even when it holds characters HTML must escape."""
    rp = register_client(app)
    state = "a\"b'c<d>e&f" + secrets.token_urlsafe(4)
    response = drive(client, rp, authorize_params(rp, response_mode="form_post", state=state))
    assert read_form_post(response, rp)["state"] == state
    assert "<d>" not in response.text


def test_registered_query_is_kept_in_the_form_action(app, client):
    """The form posts to the registered redirect URI exactly, its query included."""
    rp = register_client(app, redirect_uris=["https://portal-a.example.vn/cb?tenant=hn"])
    response = drive(client, rp, authorize_params(rp, response_mode="form_post"))
    fields = read_form_post(response, rp)
    assert "code" in fields and "tenant" not in fields


def test_csp_allows_a_loopback_origin_with_its_port(app, client):
    """form-action names the redirect URI's origin, port included (CSP 3)."""
    rp = register_client(app, redirect_uris=["http://127.0.0.1:8765/callback"])
    response = drive(client, rp, authorize_params(rp, response_mode="form_post"))
    read_form_post(response, rp)
    assert "http://127.0.0.1:8765" in response.headers["Content-Security-Policy"]


# -- errors come back as form posts too -------------------------------------------------------

def _error_fields(response, rp: RP, error, state) -> dict:
    fields = read_form_post(response, rp)
    check_error_callback(fields, error, state)
    return fields


def test_form_post_prompt_none_not_logged_in(app, client):
    """oidcc-prompt-none-not-logged-in (form_post): login_required posted with the long state."""
    rp = register_client(app)
    state = long_state()
    response = client.get("/authorize", query_string=authorize_params(
        rp, response_mode="form_post", prompt="none", state=state))
    _error_fields(response, rp, ("login_required", "interaction_required"), state)


def test_form_post_response_type_missing(app, client):
    """oidcc-response-type-missing (form_post): the error is posted, not put in a URL."""
    rp = register_client(app)
    state = secrets.token_urlsafe(8)
    response = client.get("/authorize", query_string=authorize_params(
        rp, response_mode="form_post", response_type=None, state=state))
    _error_fields(response, rp, ("invalid_request", "unsupported_response_type"), state)


def test_form_post_invalid_request_is_posted(app, client):
    """A request error after the redirect URI is known is posted back (RFC 6749 4.1.2.1)."""
    rp = register_client(app)
    state = secrets.token_urlsafe(8)
    response = client.get("/authorize", query_string=authorize_params(
        rp, response_mode="form_post", prompt="bogus", state=state))
    _error_fields(response, rp, "invalid_request", state)


def test_form_post_consent_denied_is_posted(app, client):
    """The citizen says no on the consent page: access_denied comes back as a form post."""
    rp = register_client(app)
    state = secrets.token_urlsafe(8)
    response = client.get("/authorize", query_string=authorize_params(
        rp, response_mode="form_post", state=state))
    response = login(client, interaction=query_of(response.headers["Location"])["interaction"])
    consent_url = client.get(response.headers["Location"]).headers["Location"]
    assert urlsplit(consent_url).path == "/consent"
    page = client.get(consent_url)
    response = client.post("/consent", data={"csrf_token": csrf_token(page.text),
                                             "interaction": query_of(consent_url)["interaction"],
                                             "decision": "deny"})
    _error_fields(response, rp, "access_denied", state)


def test_unregistered_redirect_uri_is_never_posted_to(app, client):
    """oidcc-ensure-registered-redirect-uri (form_post): an error page, no form to that URI."""
    rp = register_client(app)
    response = client.get("/authorize", query_string=authorize_params(
        rp, response_mode="form_post", redirect_uri="https://attacker.example/cb"))
    assert response.status_code == 400 and "Location" not in response.headers
    assert not any("attacker.example" in form["attrs"].get("action", "")
                   for form in FormPage(response.text).forms)
    assert "attacker.example" not in response.headers["Content-Security-Policy"]
