"""Start-up validation (idp/settings.py): production refuses every development convenience."""

import logging

import pytest

from idp import create_app
from idp.settings import ConfigError, load_settings, validate
from tests.conftest import base_config

PRODUCTION = {
    "IDP_ENV": "production", "ISSUER": "https://id.example.gov.vn",
    "SECRET_KEY": "s" * 40, "DATA_ENCRYPTION_KEY": "3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "PAIRWISE_SECRET": "p" * 40, "DATABASE_URL": "postgresql+psycopg://idp@db/idp",
    "REDIS_URL": "redis://redis:6379/0", "REGISTRATION_INITIAL_ACCESS_TOKEN": "t" * 40,
}


def production(**changes):
    conf = load_settings({**PRODUCTION, **changes}, environ={})
    validate(conf)
    return conf


def test_a_complete_production_configuration_starts_with_safe_defaults():
    conf = production()
    assert conf["REGISTRATION_OPEN"] is False
    assert conf["ALLOW_LOOPBACK_FETCH"] is False
    assert conf["SEED_DEMO"] is False
    assert conf["SECURE_COOKIES"] is True


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATA_ENCRYPTION_KEY", "PAIRWISE_SECRET"])
def test_production_refuses_generated_secrets(name):
    with pytest.raises(ConfigError, match=name):
        load_settings({**PRODUCTION, name: None}, environ={})


@pytest.mark.parametrize("name", ["REGISTRATION_OPEN", "SEED_DEMO", "ALLOW_LOOPBACK_FETCH",
                                  "ALLOW_HTTP_REDIRECT_URIS"])
def test_production_refuses_development_conveniences(name):
    with pytest.raises(ConfigError, match=name):
        production(**{name: True})


@pytest.mark.parametrize("changes, message", [
    ({"ISSUER": "http://id.example.gov.vn"}, "https"),
    ({"DATABASE_URL": "sqlite:///x.db"}, "PostgreSQL"),
    ({"REDIS_URL": ""}, "Redis"),
    ({"REGISTRATION_INITIAL_ACCESS_TOKEN": ""}, "INITIAL_ACCESS_TOKEN"),
    ({"SECURE_COOKIES": False}, "SECURE_COOKIES"),
])
def test_production_refuses_unsafe_infrastructure(changes, message):
    with pytest.raises(ConfigError, match=message):
        production(**changes)


def test_settings_come_from_the_environment():
    conf = load_settings({}, environ={"IDP_ENV": "testing", "ACCESS_TOKEN_TTL": "120",
                                     "REGISTRATION_OPEN": "false",
                                     "INSTANCE_PATH": "/tmp/idp-settings-test"})
    assert conf["ACCESS_TOKEN_TTL"] == 120
    assert conf["REGISTRATION_OPEN"] is False


@pytest.mark.parametrize("changes", [{"IDP_ENV": "staging"}, {"AUTH_CODE_TTL": 3600},
                                     {"ACCESS_TOKEN_TTL": 0}, {"BABEL_DEFAULT_LOCALE": "fr"}])
def test_inconsistent_settings_stop_the_start(changes):
    with pytest.raises(ConfigError):
        create_app(base_config(**changes))


def test_development_conveniences_are_announced_loudly(caplog):
    with caplog.at_level(logging.WARNING, logger="idp.settings"):
        validate(load_settings({"IDP_ENV": "development",
                                "INSTANCE_PATH": "/tmp/idp-settings-test"}, environ={}))
    text = caplog.text
    for name in ("REGISTRATION_OPEN", "SEED_DEMO", "ALLOW_LOOPBACK_FETCH"):
        assert f"UNSAFE development setting {name}" in text


def test_the_demo_seed_is_refused_in_production(app):
    from click import ClickException

    from idp.cli import seed_demo

    app.config.update(IDP_ENV="production", SEED_DEMO=False)
    with app.app_context(), pytest.raises(ClickException, match="refused in production"):
        seed_demo()
