"""The IdP's acr values (DinhDanh assurance levels, lowest first) and when one satisfies
another: account level at least N, and a second factor if the wanted value ends in ':mfa'."""

from __future__ import annotations

LOA1 = "urn:dinhdanh:loa:1"
LOA1_MFA = "urn:dinhdanh:loa:1:mfa"
LOA2 = "urn:dinhdanh:loa:2"
LOA2_MFA = "urn:dinhdanh:loa:2:mfa"
ACR_VALUES = (LOA1, LOA1_MFA, LOA2, LOA2_MFA)


def _parts(acr: str) -> tuple[int, bool] | None:
    if acr not in ACR_VALUES:
        return None
    return int(acr.split(":")[3]), acr.endswith(":mfa")


def satisfies(acr: object, wanted: str) -> bool:
    """True when a token carrying `acr` meets the requirement `wanted`."""
    have, need = _parts(acr) if isinstance(acr, str) else None, _parts(wanted)
    if have is None or need is None:
        return False
    return have[0] >= need[0] and (have[1] or not need[1])


def satisfies_any(acr: object, wanted: list[str] | tuple[str, ...]) -> bool:
    return any(satisfies(acr, w) for w in wanted)
