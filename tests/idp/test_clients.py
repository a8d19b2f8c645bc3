"""Client metadata validation (idp/clients.py): RFC 7591 2 and 3.2.2, OIDC Registration 2,
OIDC Core 8.1 (sectors for pairwise subjects), RFC 8252 (native redirect URIs)."""

from __future__ import annotations

import pytest
from joserfc.jwk import RSAKey

from idp import create_app
from idp.clients import ClientMetadataError, client_view, create_client, validate_metadata
from idp.fetch import FetchError
from tests.conftest import base_config

CB = "https://portal-a.example.vn/callback"


@pytest.fixture(scope="module")
def conf_app(_migrated):
    """An app for validation alone (no database rows needed): cheap to share."""
    return create_app(base_config())



def _public_jwks():
    key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
    return key, {"keys": [key.as_dict(private=False)]}


def _error(raw, allow_http=False) -> ClientMetadataError:
    with pytest.raises(ClientMetadataError) as info:
        validate_metadata(raw, allow_http=allow_http)
    return info.value


def test_minimal_web_client_gets_safe_defaults(conf_app):
    with conf_app.app_context():
        meta = validate_metadata({"redirect_uris": [CB]}, allow_http=False)
    assert meta["token_endpoint_auth_method"] == "client_secret_basic"
    assert meta["response_types"] == ["code"] and meta["grant_types"] == ["authorization_code"]
    assert meta["subject_type"] == "pairwise" and meta["sector"] == "portal-a.example.vn"
    assert meta["id_token_signed_response_alg"] == "RS256"


@pytest.mark.parametrize("uri", [CB + "#frag", CB + "#", "https://portal-a.example.vn/cb\n",
                                 "https://portal-a.example.vn/a b"])
def test_malformed_redirect_uris_are_invalid_redirect_uri(conf_app, uri):
    """oidcc-redirect-uri-regfrag: a fragment is refused with invalid_redirect_uri."""
    with conf_app.app_context():
        assert _error({"redirect_uris": [uri]}).error == "invalid_redirect_uri"


def test_http_redirect_uri_needs_the_development_setting(conf_app):
    with conf_app.app_context():
        assert _error({"redirect_uris": ["http://portal-a.example.vn/cb"]}).error == \
            "invalid_redirect_uri"
        assert validate_metadata({"redirect_uris": ["http://portal-a.example.vn/cb"]},
                                 allow_http=True)["redirect_uris"]


@pytest.mark.parametrize("uri", ["http://127.0.0.1/cb", "http://[::1]:8765/cb",
                                 "vn.gov.dichvucong:/oauth2redirect"])
def test_native_loopback_and_private_use_redirects_are_allowed(conf_app, uri):
    """RFC 8252 7.1 and 7.3, even where http:// redirect URIs are otherwise refused."""
    with conf_app.app_context():
        meta = validate_metadata({"application_type": "native", "redirect_uris": [uri],
                                  "token_endpoint_auth_method": "none"}, allow_http=False)
    assert meta["redirect_uris"] == [uri] and meta["sector"]


def test_private_use_scheme_is_refused_for_web_clients(conf_app):
    with conf_app.app_context():
        assert _error({"redirect_uris": ["vn.gov.dichvucong:/cb"]}).error == \
            "invalid_redirect_uri"


@pytest.mark.parametrize("raw", [
    [CB],  # not an object
    {"redirect_uris": CB},  # not an array
    {"redirect_uris": [CB], "response_types": ["token"]},
    {"redirect_uris": [CB], "grant_types": ["password"]},
    {"redirect_uris": [CB], "token_endpoint_auth_method": "client_secret_jwt"},
    {"redirect_uris": [CB], "id_token_signed_response_alg": "none"},
    {"redirect_uris": [CB], "id_token_signed_response_alg": "HS256"},
    {"redirect_uris": [CB], "userinfo_signed_response_alg": "none"},
    {"redirect_uris": [CB], "token_endpoint_auth_method": "private_key_jwt"},  # no keys
    {"redirect_uris": [CB], "request_object_signing_alg": "RS256"},  # no keys
    {"redirect_uris": [CB], "logo_uri": "javascript:alert(1)"},
    {"redirect_uris": [CB], "policy_uri": "data:text/html,hi"},
    {"redirect_uris": [CB], "client_name": 7},
    {"redirect_uris": [CB], "default_max_age": -1},
    {"redirect_uris": [CB], "require_pushed_authorization_requests": "yes"},
    {"redirect_uris": [CB], "backchannel_logout_uri": "https://portal-a.example.vn/bc#x"},
    {"redirect_uris": [CB], "post_logout_redirect_uris": ["https://portal-a.example.vn/#x"]},
    {"redirect_uris": [CB],
     "jwks": {"keys": [{"kty": "oct", "k": "bG9uZy1lbm91Z2gtc2hhcmVkLXNlY3JldA"}]}},
    {"redirect_uris": [CB], "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},
    {"redirect_uris": [CB], "jwks": "not a key set"},
    {"redirect_uris": [CB], "jwks_uri": "https://portal-a.example.vn/jwks",
     "jwks": {"keys": []}},
    {"redirect_uris": [CB], "token_endpoint_auth_method": "none",
     "grant_types": ["client_credentials"]},
    {"grant_types": ["authorization_code"]},  # no redirect URI
])
def test_invalid_metadata_is_refused(conf_app, raw):
    """RFC 7591 3.2.2: invalid_client_metadata (or invalid_redirect_uri)."""
    with conf_app.app_context():
        assert _error(raw).error in ("invalid_client_metadata", "invalid_redirect_uri")


def test_private_keys_in_jwks_are_refused(conf_app):
    key, _ = _public_jwks()
    with conf_app.app_context():
        assert _error({"redirect_uris": [CB], "jwks": {"keys": [key.as_dict(private=True)]}
                       }).error == "invalid_client_metadata"


def test_unknown_fields_are_dropped_and_subject_type_is_ours(conf_app):
    with conf_app.app_context():
        meta = validate_metadata({"redirect_uris": [CB], "subject_type": "public",
                                  "is_admin": True}, allow_http=False)
    assert "is_admin" not in meta and meta["subject_type"] == "pairwise"


def test_two_redirect_hosts_without_sector_uri_are_refused(conf_app):
    """OIDC Core 8.1: several hosts need a sector_identifier_uri to share one subject."""
    with conf_app.app_context():
        problem = _error({"redirect_uris": [CB, "https://portal-b.example.vn/cb"]})
    assert problem.error == "invalid_client_metadata"


def test_sector_document_listing_every_redirect_uri_sets_the_sector(conf_app, rp_server):
    uris = [CB, "https://portal-b.example.vn/cb"]
    sector = rp_server.serve("/sector.json", uris)
    with conf_app.app_context():
        meta = validate_metadata({"redirect_uris": uris, "sector_identifier_uri": sector},
                                 allow_http=True)
    assert meta["sector"] == "127.0.0.1"


@pytest.mark.parametrize("document", [[CB], {"redirect_uris": [CB]}, "nonsense", [1, 2]])
def test_sector_document_not_listing_every_redirect_uri_is_refused(conf_app, rp_server, document):
    """oidcc-registration-sector-bad."""
    sector = rp_server.serve("/sector.json", document)
    with conf_app.app_context():
        problem = _error({"redirect_uris": [CB, "https://portal-b.example.vn/cb"],
                          "sector_identifier_uri": sector}, allow_http=True)
    assert problem.error == "invalid_client_metadata"


def test_unreachable_sector_document_is_refused(conf_app, rp_server):
    with conf_app.app_context():
        problem = _error({"redirect_uris": [CB],
                          "sector_identifier_uri": rp_server.url("/missing.json")},
                         allow_http=True)
    assert problem.error == "invalid_client_metadata"


def test_sector_document_on_a_private_host_is_refused_in_production(make_app, rp_server):
    app = make_app(ALLOW_LOOPBACK_FETCH=False)
    sector = rp_server.serve("/sector.json", [CB])
    with app.app_context():
        problem = _error({"redirect_uris": [CB], "sector_identifier_uri": sector},
                         allow_http=True)
    assert problem.error == "invalid_client_metadata"
    assert rp_server.requests == []


def test_secrets_are_issued_only_to_secret_based_clients(app):
    _, jwks = _public_jwks()
    with app.app_context():
        basic, secrets = create_client(validate_metadata({"redirect_uris": [CB]},
                                                         allow_http=False))
        assert secrets["client_secret"] and basic.check_client_secret(secrets["client_secret"])
        assert not basic.check_client_secret("guess")
        assert basic.secret_hash != secrets["client_secret"]  # only a hash is stored
        jwt_client, jwt_secrets = create_client(validate_metadata(
            {"redirect_uris": [CB], "token_endpoint_auth_method": "private_key_jwt",
             "jwks": jwks}, allow_http=False))
        assert "client_secret" not in jwt_secrets
        assert not jwt_client.check_client_secret("")
        view = client_view(jwt_client)
        assert "sector" not in view and "client_secret" not in view
        assert view["client_id"] == jwt_client.client_id


def test_client_keyset_reads_jwks_uri_through_the_guarded_fetcher(make_app, rp_server):
    from idp.clients import client_keyset

    _, jwks = _public_jwks()
    uri = rp_server.serve("/jwks", jwks)
    app = make_app(ALLOW_LOOPBACK_FETCH=False)
    with app.app_context():
        client, _ = create_client(validate_metadata(
            {"redirect_uris": [CB], "token_endpoint_auth_method": "private_key_jwt",
             "jwks_uri": uri}, allow_http=True))
        with pytest.raises(FetchError):
            client_keyset(client)
    assert rp_server.requests == []



def test_a_client_id_with_a_nul_byte_is_an_unknown_client(app):
    """PostgreSQL refuses NUL in text: such an id is turned away before any query."""
    from idp.clients import get_client

    with app.app_context():
        assert get_client("\x00") is None and get_client("bench\x00") is None
