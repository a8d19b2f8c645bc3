"""Operator commands: `flask seed`, `flask clients create`, `flask keys`."""

import json

from idp.extensions import db
from idp.models import Client


def test_clients_create_prints_credentials_once_and_stores_only_a_hash(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["clients", "create", "--name", "Cổng tỉnh Bắc Ninh",
                                 "--redirect-uri", "https://dichvucong.bacninh.gov.vn/cb",
                                 "--first-party", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    with app.app_context():
        client = db.session.get(Client, out["client_id"])
        assert client.first_party is True
        assert client.secret_hash and out["client_secret"] not in client.secret_hash
        assert client.check_client_secret(out["client_secret"])


def test_clients_create_refuses_bad_metadata_with_a_clear_message(app):
    result = app.test_cli_runner().invoke(args=["clients", "create", "--name", "x",
                                                "--redirect-uri", "https://a.example/cb#frag"])
    assert result.exit_code != 0
    assert "invalid_redirect_uri" in result.output


def test_seed_is_idempotent(app):
    runner = app.test_cli_runner()
    assert "nothing new" in runner.invoke(args=["seed"]).output


def test_keys_list_shows_both_algorithms(app):
    output = app.test_cli_runner().invoke(args=["keys", "list"]).output
    assert " RS256" in output and " ES256" in output
