"""The onboarding service: the ONLY interface the citizen pages and the JSON API use.

A case is opened with the citizen's recorded consent and gets a bearer case token (shown once,
stored hashed). The citizen adds both sides of the card and live selfie frames answering a
random challenge, then submits; the pipeline decides in the background (`ekyc.tasks`). After
approval the citizen activates the new account with a password and a TOTP second factor.

Errors a citizen can cause raise `CaseError(code, message, status)` or
`uploads.UploadRejected(code, message, status)`; both messages are translated lazily.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets

import pyotp
from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from idp import audit, crypto
from idp.accounts.passwords import hash_password, strong_enough
from idp.accounts.totp_views import _matching_step
from idp.extensions import db
from idp.models import ACCOUNT_ACTIVE, ACCOUNT_LOCKED, ACCOUNT_PENDING_ACTIVATION, Account
from idp.settings import SUPPORTED_LOCALES

from . import cases, media, policy, tasks, uploads
from .models import Case, Challenge, utcnow
from .uploads import UploadRejected

__all__ = ["CHALLENGE_ACTIONS", "CaseError", "UploadRejected", "activate", "activation_allowed",
           "add_document_image", "add_selfie_frames", "new_challenge", "open_case",
           "start_case", "status_view", "submit", "totp_provisioning_uri"]

CHANNELS = ("web", "api", "counter")  # counter: an operator onboards a citizen in person
MAX_CHALLENGES = 20  # per case: a citizen retries a few times, a script would not stop
SIDES = ("front", "back")
# What each challenge action asks the citizen to do (the pages show these).
CHALLENGE_ACTIONS = {
    "turn_left": _l("Turn your head to the left"),
    "turn_right": _l("Turn your head to the right"),
    "blink": _l("Blink your eyes"),
    "look_up": _l("Look up"),
}
MESSAGES = {  # code -> message factory (parameters, when a message has any)
    "bad_channel": lambda **p: _l("Unknown channel."),
    "consent_required": lambda **p: _l("Please read and accept the consent to continue."),
    "case_closed": lambda **p: _l("This application can no longer be changed."),
    "case_expired": lambda **p: _l("This application has expired. Please start again."),
    "bad_side": lambda **p: _l("Choose the front or the back of the card."),
    "challenge_unknown": lambda **p: _l("This selfie challenge is not valid. Start the selfie "
                                        "step again."),
    "challenge_used": lambda **p: _l("This selfie challenge was already used. Start the selfie "
                                     "step again."),
    "challenge_expired": lambda **p: _l("The time for this selfie challenge ran out. Start the "
                                        "selfie step again."),
    "frame_count": lambda **p: _l("Send between %(min)s and %(max)s selfie frames.", **p),
    "frame_timing": lambda **p: _l("The selfie frames are not in order or took too long. Start "
                                   "the selfie step again."),
    "too_many_challenges": lambda **p: _l("Too many selfie attempts for this application. "
                                          "Please start a new application."),
    "incomplete": lambda **p: _l("Add both sides of your card and your selfie before you "
                                 "submit."),
    "not_activatable": lambda **p: _l("This account cannot be activated from this "
                                      "application."),
    "weak_password": lambda **p: _l("Choose a password of at least 10 characters with letters "
                                    "and digits."),
    "bad_totp": lambda **p: _l("That code is not correct. Enter the 6 digits your app shows "
                               "now."),
}


class CaseError(Exception):
    """A request the case cannot accept now: `code`, translated `message`, HTTP `status`."""

    def __init__(self, code: str, message=None, status: int = 400, **params):
        super().__init__(code)
        self.code = code
        self.status = status
        self.message = message if message is not None else \
            MESSAGES[code](**params) if code in MESSAGES else code

    def __str__(self) -> str:
        return str(self.message)


# -- opening -------------------------------------------------------------------------------------

def _token_hash(token: str) -> str:
    return crypto.sha256_b64(token)


def start_case(*, channel: str, locale: str, consent_version: str) -> tuple[Case, str]:
    """Open a case with the citizen's consent to the current text; returns (case, token).

    The token is the citizen's only key to the case: shown once, stored as a hash.
    """
    if channel not in CHANNELS:
        raise CaseError("bad_channel")
    if consent_version != policy.CONSENT_VERSION:
        raise CaseError("consent_required")
    locale = locale if locale in SUPPORTED_LOCALES else "vi"
    token = crypto.random_token(32)
    text = policy.consent_text(locale)
    case = Case(state=cases.CREATED, channel=channel, locale=locale,
                token_hash=_token_hash(token), consent_version=policy.CONSENT_VERSION,
                consent_text_hash=policy.consent_hash(text), consented_at=utcnow())
    db.session.add(case)
    db.session.flush()
    audit.record("ekyc.case_started", commit=False, case_id=case.id, channel=channel,
                 consent_version=policy.CONSENT_VERSION)
    db.session.commit()
    return case, token


def open_case(case_id: str, token: str) -> Case | None:
    """The case if `token` is its bearer token (constant-time comparison), else None."""
    if not isinstance(case_id, str) or not isinstance(token, str) or len(case_id) > 36 or \
            len(token) > 200:
        return None
    case = db.session.get(Case, case_id)
    expected = case.token_hash if case is not None else _token_hash("no such case: decoy")
    if not crypto.equal(_token_hash(token), expected) or case is None:
        return None
    return case


def capture_started(case: Case) -> dt.datetime:
    """When the citizen's current capture began: the case's creation, or the last time an
    operator sent it back for new photos (the time to finish counts from then)."""
    if case.state == cases.CAPTURING and "recapture_requested" in (case.reason_codes or []):
        back = [e.at for e in case.events
                if e.from_state == cases.NEEDS_REVIEW and e.to_state == cases.CAPTURING]
        if back:
            return max(back)
    return case.created_at


def _editable(case: Case) -> None:
    if case.state not in cases.EDITABLE:
        raise CaseError("case_closed", status=409)
    ttl = dt.timedelta(seconds=current_app.config["EKYC_CASE_TTL"])
    if capture_started(case) + ttl < utcnow():
        raise CaseError("case_expired", status=410)


def _capturing(case: Case) -> None:
    if case.state == cases.CREATED:
        cases.transition(case, cases.CAPTURING, actor="citizen")


# -- capture -------------------------------------------------------------------------------------

def add_document_image(case: Case, side: str, data: bytes, content_type: str | None) -> None:
    """Check, clean (EXIF applied and stripped) and store one side of the card, encrypted.

    Raises `UploadRejected` (400/413/415) for what is not a plain photo, `CaseError` when the
    case no longer accepts images. A new image of a side replaces the previous one.
    """
    if side not in SIDES:
        raise CaseError("bad_side")
    _editable(case)
    clean = uploads.sanitize(data, content_type)
    media.save(case, side, clean.data, clean.content_type)
    _capturing(case)
    db.session.commit()


def new_challenge(case: Case) -> dict:
    """A random liveness challenge: 2-3 distinct actions, a one-time nonce and a deadline.

    Returns {nonce, actions, issued_at, expires_at, ttl_seconds}; times are ISO 8601 UTC.
    """
    _editable(case)
    issued = db.session.scalar(db.select(db.func.count(Challenge.id))
                               .where(Challenge.case_id == case.id))
    if issued >= MAX_CHALLENGES:
        raise CaseError("too_many_challenges", status=429)
    actions = list(CHALLENGE_ACTIONS)
    secrets.SystemRandom().shuffle(actions)
    actions = actions[:2 + secrets.randbelow(2)]
    nonce = crypto.random_token(24)
    ttl = current_app.config["CHALLENGE_TTL"]
    now = utcnow().replace(microsecond=0)
    challenge = Challenge(case_id=case.id, nonce_hash=_token_hash(nonce), actions=actions,
                          issued_at=now, expires_at=now + dt.timedelta(seconds=ttl))
    db.session.add(challenge)
    _capturing(case)
    db.session.commit()
    return {"nonce": nonce, "actions": actions, "issued_at": now.isoformat() + "Z",
            "expires_at": challenge.expires_at.isoformat() + "Z", "ttl_seconds": ttl}


def _check_timing(timestamps_ms: list[int], count: int) -> None:
    if not timestamps_ms:
        return  # photos from file inputs carry no timing: recorded as such, liveness decides
    ttl_ms = current_app.config["CHALLENGE_TTL"] * 1000
    if len(timestamps_ms) != count or not all(
            isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in timestamps_ms):
        raise CaseError("frame_timing")
    if any(b <= a for a, b in itertools.pairwise(timestamps_ms)):
        raise CaseError("frame_timing")
    if timestamps_ms[-1] - timestamps_ms[0] > ttl_ms:
        raise CaseError("frame_timing")


def add_selfie_frames(case: Case, nonce: str, frames: list[bytes],
                      timestamps_ms: list[int]) -> None:
    """Store the selfie frames answering the challenge `nonce` (single use, before its deadline).

    Frames must be in capture order (strictly increasing timestamps, relative or absolute ms,
    one per frame, spanning at most CHALLENGE_TTL) and between SELFIE_MIN_FRAMES and
    SELFIE_MAX_FRAMES; each is checked like an upload. An empty `timestamps_ms` means the
    capture timing is unknown (photos picked from files): accepted and recorded as such, so the
    liveness check (issue 4) can send the case to an officer. The frames replace any earlier
    selfie frames of the case.
    """
    conf = current_app.config
    _editable(case)
    challenge = db.session.scalar(db.select(Challenge).filter_by(
        nonce_hash=_token_hash(nonce if isinstance(nonce, str) else ""), case_id=case.id))
    if challenge is None:
        raise CaseError("challenge_unknown")
    if challenge.used:
        raise CaseError("challenge_used", status=409)
    if utcnow() > challenge.expires_at:
        raise CaseError("challenge_expired", status=410)
    low, high = conf["SELFIE_MIN_FRAMES"], conf["SELFIE_MAX_FRAMES"]
    if not low <= len(frames) <= high:
        raise CaseError("frame_count", min=low, max=high)
    _check_timing(list(timestamps_ms), len(frames))
    cleaned = [uploads.sanitize(frame, None, quality=90, min_side=120) for frame in frames]
    # Single use, atomically: of two concurrent submissions only one marks the nonce used.
    taken = db.session.execute(
        db.update(Challenge).where(Challenge.id == challenge.id, Challenge.used_at.is_(None))
        .values(used_at=utcnow(), frame_count=len(frames), timestamps_ms=list(timestamps_ms))
        .execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        db.session.rollback()
        raise CaseError("challenge_used", status=409)
    for old in case.live_media("selfie"):
        media.discard(old)
    for index, clean in enumerate(cleaned):
        media.save(case, f"selfie_{index}", clean.data, clean.content_type)
    from . import biometrics

    biometrics.record_frame_prints(case.id, challenge.id, [clean.data for clean in cleaned])
    _capturing(case)
    db.session.commit()


def submit(case: Case, actor: str = "citizen") -> None:
    """Hand the case to the pipeline (idempotent: a submitted case is not queued twice).
    `actor` goes into the case history: the citizen, or the operator at a counter."""
    if case.state in cases.IN_FLIGHT or case.state in cases.DECIDED or \
            case.state == cases.NEEDS_REVIEW:
        return
    _editable(case)
    missing = [side for side in SIDES if not case.live_media(side)]
    if len(case.live_media("selfie")) < current_app.config["SELFIE_MIN_FRAMES"]:
        missing.append("selfie")
    if missing:
        raise CaseError("incomplete")
    won = cases.claim_transition(case, cases.SUBMITTED, actor=actor)
    db.session.commit()
    db.session.refresh(case)
    if won:  # a concurrent submit of the same case (double click) neither queues nor rewinds
        tasks.enqueue(case.id)


# -- status --------------------------------------------------------------------------------------

STEP_NAMES = ("consent", "document_front", "document_back", "selfie", "submitted", "checks",
              "decision")


def _next(case: Case, account: Account | None) -> str:
    if case.state in cases.EDITABLE:
        return "capture"
    if case.state in cases.IN_FLIGHT or case.state == cases.NEEDS_REVIEW:
        return "wait"
    if case.state == cases.APPROVED:
        if account is None or account.status == ACCOUNT_LOCKED:
            return "contact"
        return "activate" if account.status == ACCOUNT_PENDING_ACTIVATION else "done"
    nexts = {policy.reason_next(code) for code in case.reason_codes or []}
    return "contact" if "contact" in nexts or not nexts else "retry"


def status_view(case: Case, locale: str) -> dict:
    """What the result page and the API show: state, progress steps, reasons, what is next.

    {state, steps: [{name, done}], reasons: [{code, message}], hints: [message], next} with
    next one of capture | wait | activate | done | retry | contact; messages in `locale`.
    `hints` say what to change in the selfie when it failed the quality gates.
    """
    db.session.refresh(case)
    account = db.session.get(Account, case.account_id) if case.account_id else None
    decided = case.state in cases.DECIDED or case.state == cases.NEEDS_REVIEW
    done = {
        "consent": True,
        "document_front": bool(case.live_media("front")) or case.media_purged_at is not None,
        "document_back": bool(case.live_media("back")) or case.media_purged_at is not None,
        "selfie": bool(case.live_media("selfie")) or case.media_purged_at is not None,
        "submitted": case.submitted_at is not None,
        "checks": decided,
        "decision": case.state in cases.DECIDED,
    }
    locale = locale if locale in SUPPORTED_LOCALES else case.locale
    with force_locale(locale):
        reasons = [{"code": code, "message": str(policy.reason_message(code))}
                   for code in case.reason_codes or []
                   if code not in ("face_check_skipped", "liveness_skipped",
                                   "duplicate_search_skipped")]
        hints = [str(message) for message in _selfie_hints(case)]
    return {"state": case.state, "steps": [{"name": n, "done": done[n]} for n in STEP_NAMES],
            "reasons": reasons, "hints": hints, "next": _next(case, account)}


def _selfie_hints(case: Case) -> list:
    """The quality gates' advice for a selfie sent back as unusable (face too small, dark...)."""
    if "selfie_quality" not in (case.reason_codes or []):
        return []
    from .face.quality import QUALITY_MESSAGES

    check = next((c for c in reversed(case.checks) if c.name == "face_match" and c.final), None)
    problems = (check.detail or {}).get("problems", []) if check else []
    return [QUALITY_MESSAGES[p] for p in problems if p in QUALITY_MESSAGES]


# -- activation ----------------------------------------------------------------------------------

def activation_allowed(case: Case) -> Account | None:
    """The account this approved case created, while it still waits for activation."""
    if case.state != cases.APPROVED or not case.account_id:
        return None
    account = db.session.get(Account, case.account_id)
    if account is None or account.status != ACCOUNT_PENDING_ACTIVATION or \
            account.onboarded_case_id != case.id:
        return None
    return account


def new_totp_secret() -> str:
    """A fresh TOTP secret (RFC 6238) for the activation page to show as a QR code."""
    return pyotp.random_base32()


def totp_provisioning_uri(case: Case, secret: str) -> str:
    """otpauth:// URI of `secret` for the case's account (label: the account holder's name)."""
    from idp.accounts.authn import TOTP_ISSUER

    account = activation_allowed(case)
    name = account.full_name if account else "DinhDanh"
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=TOTP_ISSUER)


def activate(case: Case, password: str, totp_secret: str, totp_code: str) -> Account:
    """Set the first password (argon2id) and TOTP factor; the account becomes active.

    Raises CaseError: not_activatable (409), weak_password, bad_totp.
    """
    account = activation_allowed(case)
    if account is None:
        raise CaseError("not_activatable", status=409)
    if not strong_enough(password or ""):
        raise CaseError("weak_password")
    secret = (totp_secret or "").strip().replace(" ", "").upper()
    code = "".join(c for c in (totp_code or "") if c.isdigit())
    try:
        step = _matching_step(secret, code) if len(secret) >= 16 else None
    except (ValueError, TypeError):  # not base32
        step = None
    if step is None:
        raise CaseError("bad_totp")
    result = db.session.execute(
        db.update(Account).where(Account.id == account.id,
                                 Account.status == ACCOUNT_PENDING_ACTIVATION)
        .values(status=ACCOUNT_ACTIVE, password_hash=hash_password(password),
                totp_secret_encrypted=crypto.encrypt(secret), totp_last_step=step,
                updated_at=utcnow())
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:  # activated twice at once: the first one wins
        db.session.rollback()
        raise CaseError("not_activatable", status=409)
    audit.record("account.activated", account_id=account.id, commit=False, case_id=case.id)
    db.session.commit()
    db.session.refresh(account)
    return account
