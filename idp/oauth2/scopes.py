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

# acr values: eID assurance levels (DESIGN.md identity model), lowest first. The level is the
# account's (1: remote eKYC, 2: in person or chip verified); ":mfa" adds that this sign-in used two
# factors (session amr has "mfa"). Portals ask with acr_values or an essential acr claim.
ACR_LEVEL1 = "urn:dinhdanh:loa:1"
ACR_LEVEL1_MFA = "urn:dinhdanh:loa:1:mfa"
ACR_LEVEL2 = "urn:dinhdanh:loa:2"
ACR_LEVEL2_MFA = "urn:dinhdanh:loa:2:mfa"
ACR_VALUES = (ACR_LEVEL1, ACR_LEVEL1_MFA, ACR_LEVEL2, ACR_LEVEL2_MFA)
_ACR_NEEDS = {ACR_LEVEL1: (1, False), ACR_LEVEL1_MFA: (1, True), ACR_LEVEL2: (2, False),
              ACR_LEVEL2_MFA: (2, True)}  # value -> (account level, second factor)


def acr_for_level(level: int) -> str:
    """The plain value of an account's level: what the ID token says when nothing was asked."""
    return ACR_LEVEL2 if level >= 2 else ACR_LEVEL1


def level_for_acr(acr: str) -> int | None:
    needs = _ACR_NEEDS.get(acr)
    return needs[0] if needs else None


def satisfies(acr: str, level: int, amr: list[str]) -> bool:
    """Whether an account of `level` signed in with methods `amr` reaches `acr`."""
    needs = _ACR_NEEDS.get(acr)
    return needs is not None and level >= needs[0] and (not needs[1] or "mfa" in amr)


def acr_for(level: int, amr: list[str]) -> str:
    """The highest value an account of `level` signed in with `amr` reaches."""
    reached = [a for a in ACR_VALUES if satisfies(a, level, amr)]
    return reached[-1] if reached else ACR_LEVEL1
