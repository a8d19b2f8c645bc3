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


def _active_kids(app) -> set[str]:
    from idp.models import SigningKey

    with app.app_context():
        kids = set(db.session.scalars(db.select(SigningKey.kid).filter_by(retired_at=None)))
        db.session.remove()
    return kids


def test_keys_ensure_creates_the_first_keys_once_then_changes_nothing(app):
    """compose.yaml's migrate job runs it on every start: keys on the first, no rotation after."""
    from idp import keys
    from idp.models import SigningKey

    with app.app_context():
        db.session.execute(db.delete(SigningKey))
        db.session.commit()
        keys.invalidate()
    runner = app.test_cli_runner()
    first = runner.invoke(args=["keys", "ensure"])
    assert first.exit_code == 0, first.output
    created = _active_kids(app)
    assert {kid.split("-")[0] for kid in created} == {"rs256", "es256"}
    assert sorted(first.output.split()) == sorted(["new", "key"] * 2 + list(created))
    again = runner.invoke(args=["keys", "ensure"])
    assert again.exit_code == 0 and "nothing to do" in again.output
    assert _active_kids(app) == created
    listed = runner.invoke(args=["keys", "list"]).output
    assert all(kid in listed for kid in created)


def test_keys_ensure_keeps_existing_keys(app):
    before = _active_kids(app)
    result = app.test_cli_runner().invoke(args=["keys", "ensure"])
    assert result.exit_code == 0 and "nothing to do" in result.output
    assert "new key" not in result.output and _active_kids(app) == before
