"""The two Python portals: one app, two profiles (name, services, what sign-in asks for)."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from .. import PORTALS, Portal
from .acr import LOA1_MFA, LOA2_MFA


@dataclass(frozen=True)
class Service:
    endpoint: str      # view name in this app
    title: object      # lazy translated strings
    summary: object
    needs: object      # what it needs, shown on the list


@dataclass(frozen=True)
class Profile:
    portal: Portal
    title: object
    agency: object
    services: tuple[Service, ...]
    # acr_values sent with every sign-in (OIDC Core 3.1.2.1), lowest acceptable first.
    login_acr: tuple[str, ...] = ()


PROFILES = {
    "public_services": Profile(
        portal=PORTALS["public_services"],
        title=_l("Public Services Portal"),
        agency=_l("Demo portal of the Government Office"),
        services=(
            Service("services.apply", _l("Apply for a residence confirmation"),
                    _l("Fill in a short form and receive a reference number."),
                    _l("Identification level 1")),
            Service("services.land", _l("Land use certificate extract"),
                    _l("See the land parcels registered in your name."),
                    _l("Identification level 2 (asked when you open it)")),
        ),
    ),
    "social_insurance": Profile(
        portal=PORTALS["social_insurance"],
        title=_l("Social Insurance Portal"),
        agency=_l("Demo portal of Vietnam Social Security"),
        services=(
            Service("services.contributions", _l("Contribution history"),
                    _l("Months and amounts paid into your social insurance."),
                    _l("Second factor at sign-in")),
        ),
        login_acr=(LOA1_MFA, LOA2_MFA),
    ),
}
