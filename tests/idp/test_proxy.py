"""TRUSTED_PROXY_HOPS: the client address behind our reverse proxy (werkzeug ProxyFix).

The per-IP login throttle (idp/accounts/throttle.py) stands for every per-IP limit here: it
reads `request.remote_addr` like the onboarding and registration limits and the audit log.
"""

from __future__ import annotations

import pytest

from idp.settings import ConfigError, load_settings, validate
from tests.conftest import base_config
from tests.helpers import login

WRONG = "not-the-Password-1"
PROXY = "10.0.0.2"  # the address of our reverse proxy as the IdP sees it


def _client(app, forwarded: str | None):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = PROXY
    if forwarded:
        client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded
    return client


def _spray(client, count: int) -> None:
    """Wrong passwords for ID numbers that do not exist: only the per-IP counter grows."""
    for n in range(count):
        assert login(client, pid=f"0011990001{n:02d}", password=WRONG).status_code == 401


def test_without_trusted_proxies_a_forged_forwarded_for_does_not_escape_the_ip_throttle(
        make_app):
    app = make_app(LOGIN_IP_MAX_FAILURES=3)
    assert app.config["TRUSTED_PROXY_HOPS"] == 0
    _spray(_client(app, "198.51.100.1"), 3)
    # A new forged address per attempt changes nothing: the throttle still sees the socket peer.
    assert login(_client(app, "198.51.100.2")).status_code == 429
    assert login(_client(app, None)).status_code == 429


def test_with_one_trusted_proxy_forwarded_addresses_are_throttled_separately(make_app):
    app = make_app(LOGIN_IP_MAX_FAILURES=3, TRUSTED_PROXY_HOPS=1)
    attacker = _client(app, "198.51.100.1")
    _spray(attacker, 3)
    assert login(attacker).status_code == 429
    # Another citizen behind the same proxy signs in; the attacker stays blocked.
    assert login(_client(app, "203.0.113.5")).status_code == 302
    assert login(_client(app, "198.51.100.1")).status_code == 429


def test_with_one_trusted_proxy_only_the_address_it_appended_counts(make_app):
    """A client-written X-Forwarded-For entry left of the proxy's own is not believed."""
    app = make_app(LOGIN_IP_MAX_FAILURES=3, TRUSTED_PROXY_HOPS=1)
    _spray(_client(app, "192.0.2.1, 198.51.100.1"), 3)
    assert login(_client(app, "192.0.2.99, 198.51.100.1")).status_code == 429


def test_the_client_address_reaches_the_audit_log(make_app):
    app = make_app(TRUSTED_PROXY_HOPS=1)
    assert login(_client(app, "203.0.113.77")).status_code == 302
    with app.app_context():
        from idp.extensions import db
        from idp.models import AuditEvent

        ips = set(db.session.scalars(db.select(AuditEvent.ip)))
    assert "203.0.113.77" in ips and PROXY not in ips


def test_a_negative_number_of_proxies_is_refused():
    conf = load_settings(base_config(TRUSTED_PROXY_HOPS=-1), environ={})
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_HOPS"):
        validate(conf)


def test_the_number_of_proxies_comes_from_the_environment():
    conf = load_settings(base_config(), environ={"TRUSTED_PROXY_HOPS": "2"})
    assert conf["TRUSTED_PROXY_HOPS"] == 2
