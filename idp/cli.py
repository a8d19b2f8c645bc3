"""Operator commands: `flask seed`, `flask keys ensure|rotate|prune|list`, `flask clients create`,
`flask ops create-staff`."""

from __future__ import annotations

import datetime as dt
import json

import click
from flask import current_app

from . import crypto, keys, staff
from .accounts.passwords import hash_password
from .clients import ClientMetadataError, create_client, validate_metadata
from .extensions import db
from .models import OPERATOR_ROLES, Account

DEMO_CITIZEN = {
    "pid": "001199000001",  # Hà Nội, female, born 1999 (DOMAIN.md 1)
    "password": "Citizen-Demo-1",
    "full_name": "Nguyễn Thị Minh Anh", "family_name": "Nguyễn", "given_name": "Thị Minh Anh",
    "birthdate": dt.date(1999, 3, 15), "gender": "female",
    "address": {"formatted": "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội", "street_address":
                "Số 1 Tràng Tiền", "locality": "Hoàn Kiếm", "region": "Hà Nội",
                "country": "VN"},
    "email": "minhanh.demo@example.vn", "phone_number": "+84900000001",
}
# Demo console staff: username -> (password, role, TOTP secret). The secrets are FIXED and
# published (docs/operators.md) so a person can add them to an authenticator app and tests can
# compute codes; development only, like every demo credential here.
DEMO_STAFF = {
    "ops-demo": ("Operator-Demo-1", "operator", "XKXEU6QDYYMCJXWKES753A25I62WNK64"),
    "ops-supervisor": ("Supervisor-Demo-1", "supervisor", "UXKYYKCCICAK777IZWCKRGQLI7GUGE67"),
    "ops-auditor": ("Auditor-Demo-1", "auditor", "P5ZO64YE4MV3H3QCVKL3YSO5ZZDPQX73"),
}


def create_citizen(pid: str, password: str | None, **fields) -> Account:
    account = Account(pid_hash=crypto.keyed_hash("pid", pid), pid_encrypted=crypto.encrypt(pid),
                      password_hash=hash_password(password) if password else None, **fields)
    db.session.add(account)
    db.session.commit()
    return account


def seed_demo() -> list[str]:
    if current_app.config["IDP_ENV"] == "production" or not current_app.config["SEED_DEMO"]:
        raise click.ClickException("the demo seed is refused in production")
    done = []
    keys.ensure_keys()
    demo = dict(DEMO_CITIZEN)
    pid, password = demo.pop("pid"), demo.pop("password")
    if db.session.scalar(db.select(Account).filter_by(pid_hash=crypto.keyed_hash("pid", pid))) \
            is None:
        create_citizen(pid, password, email_verified=True, phone_number_verified=True, level=1,
                       **demo)
        done.append(f"citizen {pid}")
    for username, (password, role, secret) in DEMO_STAFF.items():
        if staff.find_staff(username) is None:  # an old operators row alone is upgraded
            staff.create_staff(username, password, role, totp_secret=secret)
            done.append(f"{role} {username}")
    return done


def register(app) -> None:
    from . import audit

    audit.register_cli(app)

    @app.cli.command("seed")
    def seed_command():
        """Create signing keys and the development demo accounts (refused in production)."""
        keys.ensure_keys()
        done = seed_demo()
        click.echo("seeded: " + (", ".join(done) or "nothing new"))

    @app.cli.group("ops")
    def ops_group():
        """The operator console: staff accounts."""

    @ops_group.command("create-staff")
    @click.argument("username")
    @click.option("--role", required=True, type=click.Choice(OPERATOR_ROLES))
    @click.option("--province", default=None, help="3-digit province code of their counter")
    @click.password_option(help="prompted twice when not given")
    def create_staff_command(username, role, province, password):
        """Create a console staff account; prints its TOTP set-up URI once."""
        import pyotp

        secret = pyotp.random_base32(32)
        try:
            operator = staff.create_staff(username, password, role, totp_secret=secret,
                                          province=province)
        except staff.StaffError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"created {operator.role} {operator.username}")
        click.echo("second factor (add to an authenticator app now; shown only once):")
        click.echo(staff.provisioning_uri(operator.username, secret))

    @app.cli.group("keys")
    def keys_group():
        """Signing keys."""

    @keys_group.command("ensure")
    def ensure_command():
        """Create the first signing keys if there are none; otherwise change nothing."""
        from .models import SigningKey

        def active() -> set[str]:
            return set(db.session.scalars(db.select(SigningKey.kid).filter_by(retired_at=None)))

        before = active()
        keys.ensure_keys()
        created = sorted(active() - before)
        for kid in created:
            click.echo(f"new key {kid}")
        if not created:
            click.echo(f"signing keys present ({len(before)} active): nothing to do")

    @keys_group.command("rotate")
    def rotate_command():
        """Add new signing keys; old ones stay published until their grace period ends."""
        for kid in keys.rotate():
            click.echo(f"new key {kid}")

    @keys_group.command("prune")
    def prune_command():
        """Remove retired keys whose grace period is over."""
        click.echo(f"removed {keys.prune()} retired keys")

    @keys_group.command("list")
    def list_command():
        """Show the published keys."""
        for jwk in keys.jwks()["keys"]:
            click.echo(f"{jwk['kid']} {jwk['alg']}")

    @app.cli.group("jobs")
    def jobs_group():
        """Background jobs."""

    @jobs_group.command("worker")
    @click.option("--burst", is_flag=True, help="stop when the queue is empty")
    def worker_command(burst):
        """Run an RQ worker for the IdP's jobs (needs REDIS_URL)."""
        from . import jobs

        jobs.work(current_app._get_current_object(), burst=burst)

    @app.cli.group("clients")
    def clients_group():
        """Relying-party clients."""

    @clients_group.command("create")
    @click.option("--name", required=True, help="name shown to citizens")
    @click.option("--redirect-uri", "redirect_uris", multiple=True)
    @click.option("--post-logout-redirect-uri", "post_logout", multiple=True)
    @click.option("--grant-type", "grant_types", multiple=True,
                  default=["authorization_code", "refresh_token"])
    @click.option("--auth-method", default="client_secret_basic")
    @click.option("--scope", default="openid profile email phone address offline_access")
    @click.option("--backchannel-logout-uri", default=None)
    @click.option("--frontchannel-logout-uri", default=None)
    @click.option("--first-party", is_flag=True, help="skip the consent screen")
    @click.option("--public-subject", is_flag=True, help="public instead of pairwise sub")
    @click.option("--metadata", "extra", default="{}", help="more RFC 7591 metadata as JSON")
    @click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
    def create_command(name, redirect_uris, post_logout, grant_types, auth_method, scope,
                       backchannel_logout_uri, frontchannel_logout_uri, first_party,
                       public_subject, extra, as_json):
        """Register a client as an operator (prints the secret once)."""
        raw = {"client_name": name, "redirect_uris": list(redirect_uris),
               "grant_types": list(grant_types), "token_endpoint_auth_method": auth_method,
               "scope": scope, **json.loads(extra)}
        if post_logout:
            raw["post_logout_redirect_uris"] = list(post_logout)
        if backchannel_logout_uri:
            raw["backchannel_logout_uri"] = backchannel_logout_uri
        if frontchannel_logout_uri:
            raw["frontchannel_logout_uri"] = frontchannel_logout_uri
        try:
            meta = validate_metadata(raw, allow_http=current_app.config["ALLOW_HTTP_REDIRECT_URIS"])
        except ClientMetadataError as exc:
            raise click.ClickException(f"{exc.error}: {exc.description}") from exc
        client, secrets = create_client(meta, first_party=first_party,
                                        public_subject=public_subject)
        out = {"client_id": client.client_id, **secrets}
        click.echo(json.dumps(out) if as_json else
                   "\n".join(f"{k}: {v}" for k, v in out.items()))
