"""What a portal learns about a citizen: subjects (OIDC Core 8) and claims (OIDC Core 5)."""

from __future__ import annotations

import calendar

from . import crypto
from .models import Account, Client
from .oauth2.scopes import SCOPE_CLAIMS


def subject_for(client: Client, account: Account) -> str:
    """Pairwise by sector unless an operator marked the client public (OIDC Core 8.1)."""
    if client.public_subject:
        return account.id
    return crypto.keyed_hash("sub", client.meta("sector", client.client_id), account.id)


def national_id(account: Account) -> str:
    return crypto.decrypt(account.pid_encrypted)


def _claim_values(account: Account) -> dict:
    address = account.address or None
    return {
        "name": account.full_name,
        "family_name": account.family_name or None,
        "given_name": account.given_name or None,
        "birthdate": account.birthdate.isoformat() if account.birthdate else None,
        "gender": account.gender or None,
        "locale": account.locale or None,
        "updated_at": calendar.timegm(account.updated_at.timetuple()) if account.updated_at
        else None,
        "email": account.email,
        "email_verified": bool(account.email_verified) if account.email else None,
        "phone_number": account.phone_number,
        "phone_number_verified": bool(account.phone_number_verified)
        if account.phone_number else None,
        "address": address,
    }


def claims_for(account: Account, scope: str, requested: dict | None = None) -> dict:
    """Claims the scopes imply plus individually requested ones (the `claims` parameter).

    `requested` is one member of the claims parameter (`userinfo` or `id_token`). A claim not
    implied by the granted scopes is released only if its scope's family was consented, which
    the consent step already ensured by adding it to the consented claims list.
    """
    scopes = scope.split()
    names = [c for s in scopes for c in SCOPE_CLAIMS.get(s, []) if c != "sub"]
    names += [c for c in (requested or {}) if c not in names]
    values = _claim_values(account)
    out = {}
    for name in names:
        if name == "national_id":
            if "national_id" in scopes:
                out["national_id"] = national_id(account)
            continue
        value = values.get(name)
        if value is not None:
            out[name] = value
    return out
