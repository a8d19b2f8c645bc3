"""Plain-language descriptions of claims for the consent and account pages."""

from flask_babel import lazy_gettext as _l

CLAIM_TEXT = {
    "name": _l("Your full name"),
    "family_name": _l("Your family name"),
    "given_name": _l("Your given name"),
    "birthdate": _l("Your date of birth"),
    "gender": _l("Your sex"),
    "locale": _l("Your preferred language"),
    "updated_at": _l("When your information last changed"),
    "email": _l("Your email address"),
    "email_verified": _l("Whether your email address was verified"),
    "phone_number": _l("Your phone number"),
    "phone_number_verified": _l("Whether your phone number was verified"),
    "address": _l("Your permanent address"),
    "national_id": _l("Your personal identification number (12 digits)"),
}


def describe_claims(names) -> list[str]:
    seen = []
    for name in names:
        text = CLAIM_TEXT.get(name)
        if text is not None and str(text) not in seen:
            seen.append(str(text))
    return seen


EVENT_TEXT = {
    "login.success": _l("Signed in"),
    "login.failure": _l("Wrong password entered"),
    "login.locked": _l("Sign-in refused: account temporarily locked"),
    "login.inactive": _l("Sign-in refused: account not active"),
    "login.otp_failure": _l("Wrong one-time code entered"),
    "login.passkey_failure": _l("Passkey sign-in failed"),
    "login.step_up": _l("Sign-in confirmed with a second factor for a service"),
    "authorize.step_up_cancelled": _l("You cancelled a sign-in that asked for a second factor"),
    "authorize.level_unmet": _l("A service asked for identity level 2"),
    "logout": _l("Signed out"),
    "session.ended_by_user": _l("You ended a session"),
    "consent.granted": _l("You allowed a service to see your information"),
    "consent.denied": _l("You refused to share your information with a service"),
    "consent.revoked": _l("You withdrew a service's access"),
    "totp.enrolled": _l("Authenticator app turned on"),
    "totp.removed": _l("Authenticator app turned off"),
    "passkey.registered": _l("Passkey added"),
    "grant.revoked": _l("A service's access was cancelled"),
}


def describe_event(code: str) -> str:
    text = EVENT_TEXT.get(code)
    return str(text) if text is not None else code
