"""`python -m register seed` and the settings it runs with (register.seeding, settings)."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from register import seed as synthetic
from register import settings
from register.__main__ import main
from register.app import create_app
from register.models import CitizenRecord, db

from .conftest import dispose


@pytest.fixture
def own_database(tmp_path, monkeypatch):
    """A private SQLite register for the CLI (never the shared test database)."""
    monkeypatch.setenv("REGISTER_ENV", "testing")
    monkeypatch.setenv("REGISTER_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("REGISTER_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("REGISTER_LOG_HASH_KEY", "cli-test-key")
    return tmp_path


def _run(capsys, *argv) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_seed_is_idempotent_and_keeps_status_changes(own_database, capsys):
    first = _run(capsys, "seed", "--count", "40")
    assert first["inserted"] == 40 and first["total"] == 40
    assert _run(capsys, "set-status", "001199000001", "deceased")["changed"] is True
    again = _run(capsys, "seed", "--count", "40")
    assert again["inserted"] == 0 and again["total"] == 40
    more = _run(capsys, "seed", "--count", "55")
    assert more["inserted"] == 15 and more["total"] == 55
    app = create_app({"REGISTER_OUTBOX_THREAD": False})
    with app.app_context():
        demo = db.session.get(CitizenRecord, "001199000001")
        assert demo.status == "deceased" and demo.full_name == "Nguyễn Thị Minh Anh"
        rows = db.session.scalars(db.select(CitizenRecord)).all()
        expected = {c.national_id: c for c in synthetic.synthetic_citizens(55)}
        assert {r.national_id for r in rows} == set(expected)
        for row in rows:
            person = expected[row.national_id]
            assert (row.date_of_birth, row.sex, row.residence, row.card_expiry_date) == \
                (person.date_of_birth, person.sex, person.residence, person.card_expiry_date)
    dispose(app)


def test_seed_stores_resized_portraits(own_database, capsys):
    if synthetic.faces_dir() is None:
        pytest.skip("faces-dev data absent (set EKYC_TEST_DATA)")
    stats = _run(capsys, "seed", "--count", "5")
    assert stats["with_portrait"] == 5
    app = create_app({"REGISTER_OUTBOX_THREAD": False})
    with app.app_context():
        row = db.session.get(CitizenRecord, "001199000001")
        with Image.open(io.BytesIO(row.portrait)) as img:
            assert (img.format, img.size) == ("JPEG", (240, 320))
        assert row.portrait_source == synthetic.synthetic_citizens(1)[0].portrait_file
    dispose(app)


def test_seed_without_face_data_has_no_portraits(own_database, capsys, monkeypatch):
    monkeypatch.setenv("EKYC_TEST_DATA", str(own_database / "nothing"))
    stats = _run(capsys, "seed", "--count", "5")
    assert stats == {**stats, "inserted": 5, "with_portrait": 0}


@pytest.mark.parametrize("overrides,needle", [
    ({"REGISTER_ERROR_RATE": 1.5}, "ERROR_RATE"),
    ({"REGISTER_LATENCY_MS": -5}, "LATENCY"),
    ({"REGISTER_ADMIN_TOKEN": "short"}, "ADMIN_TOKEN"),
    ({"REGISTER_IDP_JWKS": "[1, 2]"}, "IDP_JWKS"),
    ({"REGISTER_ENV": "production", "REGISTER_DATABASE_URL": "sqlite:///x.db"}, "https"),
])
def test_unsafe_settings_refuse_to_start(tmp_path, overrides, needle):
    conf = settings.load_settings({"REGISTER_INSTANCE_PATH": str(tmp_path),
                                   "REGISTER_LOG_HASH_KEY": "k", **overrides}, environ={})
    with pytest.raises(settings.ConfigError, match=needle):
        settings.validate(conf)


def test_production_needs_an_explicit_log_hash_key(tmp_path):
    with pytest.raises(settings.ConfigError, match="LOG_HASH_KEY"):
        settings.load_settings({"REGISTER_ENV": "production",
                                "REGISTER_INSTANCE_PATH": str(tmp_path)}, environ={})


def test_defaults_follow_the_contract(tmp_path):
    conf = settings.load_settings({"REGISTER_INSTANCE_PATH": str(tmp_path)}, environ={})
    assert conf["REGISTER_DATABASE_URL"] == f"sqlite:///{tmp_path / 'register.db'}"
    assert conf["REGISTER_BASE_URL"] == "http://127.0.0.1:8100"
    assert conf["REGISTER_TRUSTED_ISSUER"] == "http://127.0.0.1:8000"
    assert conf["REGISTER_IDP_JWKS_URL"] == "http://127.0.0.1:8000/jwks"
    assert conf["REGISTER_CLIENT_ID"] == "dinhdanh-idp"
    assert conf["REGISTER_NOTIFY_URL"] == "http://127.0.0.1:8000/ekyc/register-events"
    assert conf["REGISTER_NOTIFY_AUDIENCE"] == "http://127.0.0.1:8000"
    assert conf["REGISTER_OUTBOX_THREAD"] is True
    default = settings.load_settings({"REGISTER_LOG_HASH_KEY": "k",
                                      "REGISTER_DATABASE_URL": "sqlite://"}, environ={})
    assert default["REGISTER_INSTANCE_PATH"].endswith("instance/register")
