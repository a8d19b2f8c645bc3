"""Scopes and the claims they release (OIDC Core 5.4), plus our national-ID scope."""

SCOPE_CLAIMS = {
    "openid": ["sub"],
    "profile": ["name", "family_name", "given_name", "birthdate", "gender", "locale",
                "updated_at"],
    "email": ["email", "email_verified"],
    "phone": ["phone_number", "phone_number_verified"],
    "address": ["address"],
    # The personal ID number: only for portals an operator allows to ask (DESIGN.md).
    "national_id": ["national_id"],
    "offline_access": [],
}
SUPPORTED_SCOPES = tuple(SCOPE_CLAIMS)
CLAIMS_SUPPORTED = sorted({c for claims in SCOPE_CLAIMS.values() for c in claims} |
                          {"iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr",
                           "sid", "at_hash"})  # no azp: an ID token has a single audience

# acr values: eID assurance levels (DESIGN.md identity model), lowest first.
ACR_LEVEL1 = "urn:dinhdanh:loa:1"
ACR_LEVEL2 = "urn:dinhdanh:loa:2"
ACR_VALUES = (ACR_LEVEL1, ACR_LEVEL2)


def acr_for_level(level: int) -> str:
    return ACR_LEVEL2 if level >= 2 else ACR_LEVEL1


def level_for_acr(acr: str) -> int | None:
    return {ACR_LEVEL1: 1, ACR_LEVEL2: 2}.get(acr)
