"""Assisted onboarding at a counter (`/ops/counter`): an operator onboards a citizen who stands
in front of them; the result is an assurance level 2 account.

    1. consent:   the counter screen shows the citizen the consent text in their language and
                  the CITIZEN presses "I agree"; only then is the case opened (channel
                  "counter", target level 2, counter_operator_id).
    2. documents: both sides of the card from the document scanner (file inputs), checked and
                  stored like the citizen's uploads (`ekyc.service.add_document_image`).
    3. selfie:    frames from the counter camera (file input, several files) and the operator's
                  attestation that the citizen is present and matches the card. The frames
                  answer an "in person" challenge instead of a random one; the liveness check
                  records the attestation as a pass (`ekyc.biometrics.in_person`).
    4. submit:    the real pipeline: document, register, face match and duplicate checks.
    5. status:    the decision and, once approved, the activation link and its QR code, shown
                  once: the citizen activates on their own phone (`ops.counter_activate`).

Only the operator who started a counter case continues it; if the pipeline sends it to review,
another operator decides it (`ekyc.review.decisions`). The citizen's activation link carries a
fresh case token inside a signed, time-limited value; opening it rotates the token again, so a
link works once, and showing a new link revokes the previous one.
"""

from __future__ import annotations

import base64
import datetime as dt
import io

import qrcode
from flask import abort, current_app, redirect, render_template, request, session, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeTimedSerializer

from idp import audit, crypto
from idp.extensions import db
from idp.models import ACCOUNT_PENDING_ACTIVATION, Account
from idp.settings import SUPPORTED_LOCALES

from .. import api, biometrics, cases, policy, service
from ..models import Case, Challenge, utcnow
from ..service import CaseError, UploadRejected
from . import bp
from .auth import ACTING_ROLES, actor, current_operator, require

COUNTER = "counter"
COUNTER_LEVEL = 2
# How long an activation link shown at the counter stays valid (the citizen usually opens it
# on the spot; a day leaves room for a phone without data at the counter).
LINK_TTL = 24 * 3600
LINK_SALT = "ekyc.counter.activation-link"
CITIZEN_SESSION_KEY = "ekyc"  # ekyc.views.SESSION_KEY: the case this browser holds
COUNTER_ROLES = ACTING_ROLES
STEPS = (_l("Consent"), _l("Card"), _l("Face and attestation"), _l("Check and send"),
         _l("Result"))
LANGUAGE_NAMES = {"vi": "Tiếng Việt", "en": "English"}
STATE_TEXT = {
    cases.CREATED: _l("Started"), cases.CAPTURING: _l("Capturing"),
    cases.SUBMITTED: _l("Sent for checking"), cases.PROCESSING: _l("Being checked"),
    cases.WAITING_REGISTER: _l("Waiting for the population register"),
    cases.NEEDS_REVIEW: _l("In review by another operator"), cases.APPROVED: _l("Approved"),
    cases.REJECTED: _l("Rejected"),
}


def _render(template: str, status: int = 200, **context):
    return render_template(f"ops/{template}", **context), status


@bp.url_value_preprocessor
def _counter_body_limit(endpoint, _values):
    """Scanner and camera photos exceed the app-wide body limit (set before the CSRF check)."""
    conf = current_app.config
    if endpoint == "ops.counter_documents":
        request.max_content_length = 2 * api.body_limit("document")
    elif endpoint == "ops.counter_selfie":
        request.max_content_length = conf["SELFIE_MAX_FRAMES"] * conf["UPLOAD_MAX_BYTES"] + \
            64 * 1024


# -- helpers -------------------------------------------------------------------------------------

def _own_case(case_id: str) -> Case:
    """The counter case `case_id` started by the signed-in operator, else 404."""
    op = current_operator()
    case = db.session.get(Case, case_id) if len(case_id) <= 36 else None
    if case is None or case.channel != COUNTER or op is None or \
            case.counter_operator_id != op.id:
        abort(404)
    return case


def _progress(step: int) -> dict:
    return {"step": step, "steps": [str(s) for s in STEPS]}


def _captured(case: Case) -> dict[str, bool]:
    return {"front": bool(case.live_media("front")), "back": bool(case.live_media("back")),
            "selfie": bool(case.live_media("selfie")) and _attested(case)}


def _attested(case: Case) -> bool:
    challenge = db.session.scalar(db.select(Challenge).where(
        Challenge.case_id == case.id, Challenge.used_at.is_not(None))
        .order_by(Challenge.used_at.desc(), Challenge.id.desc()).limit(1))
    return challenge is not None and biometrics.in_person(case, challenge)


def _qr_data_url(text: str) -> str:
    image = qrcode.make(text, box_size=6, border=2)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=LINK_SALT)


def _rotate_token(case: Case) -> str:
    """A new bearer token for `case` (the previous one stops working); caller commits."""
    token = crypto.random_token(32)
    case.token_hash = crypto.sha256_b64(token)  # what ekyc.service.open_case compares
    return token


def case_account(case: Case) -> Account | None:
    """The account a decided counter case issued or raised to level 2."""
    if case.account_id:
        return db.session.get(Account, case.account_id)
    if case.state == cases.APPROVED and case.pid_hash:
        account = db.session.scalar(db.select(Account).filter_by(pid_hash=case.pid_hash))
        if account is not None and account.level >= case.target_level:
            return account
    return None


def activation_link(account: Account) -> dict | None:
    """A one-time activation link (and its QR code) for an account waiting for activation.

    The link goes through the case that created the account (`Account.onboarded_case_id`),
    whose token is rotated: the previous link stops working. None when the account cannot be
    activated that way (not pending activation, or no approved onboarding case). Caller
    commits and shows the result once.
    """
    if account is None or account.status != ACCOUNT_PENDING_ACTIVATION or \
            not account.onboarded_case_id:
        return None
    case = db.session.get(Case, account.onboarded_case_id)
    if case is None or service.activation_allowed(case) is None:
        return None
    token = _rotate_token(case)
    value = _serializer().dumps({"c": case.id, "t": token})
    # Built on the issuer, not on the request's Host header (which a proxy may rewrite).
    url = current_app.config["ISSUER"].rstrip("/") + url_for("ops.counter_activate",
                                                             value=value)
    return {"url": url, "qr": _qr_data_url(url), "case_id": case.id}


# -- 1. consent ----------------------------------------------------------------------------------

def _citizen_lang() -> str:
    lang = request.values.get("citizen_lang", "vi")
    return lang if lang in SUPPORTED_LOCALES else "vi"


def _consent_page(error: str | None = None, status: int = 200):
    lang = _citizen_lang()
    with force_locale(lang):  # the citizen reads this part, in the language they chose
        text = policy.consent_text(lang)
        citizen = {
            "heading": _("Your consent"),
            "intro": _("Please read this text. If you agree, press the button yourself."),
            "paragraphs": [p.strip() for p in text.split("\n\n") if p.strip()],
            "agree": _("I agree"),
            "version": _("Consent text version: %(version)s",
                         version=policy.CONSENT_VERSION),
        }
    op = current_operator()
    recent = db.session.scalars(
        db.select(Case).where(Case.channel == COUNTER, Case.counter_operator_id == op.id)
        .order_by(Case.created_at.desc()).limit(10)).all()
    return _render("counter.html", status, error=error, citizen=citizen, citizen_lang=lang,
                   languages=LANGUAGE_NAMES, consent_version=policy.CONSENT_VERSION,
                   recent=recent, states=STATE_TEXT, **_progress(1))


@bp.route("/counter", methods=["GET", "POST"], endpoint="counter")
@require(*COUNTER_ROLES)
def counter():
    if request.method == "GET":
        return _consent_page()
    if request.form.get("consent") != "yes":
        return _consent_page(_("The citizen has not agreed: the onboarding cannot start."), 400)
    if request.form.get("consent_version") != policy.CONSENT_VERSION:
        return _consent_page(_("The consent text has changed. Let the citizen read it again."),
                             409)
    op = current_operator()
    lang = _citizen_lang()
    case, _token = service.start_case(channel=COUNTER, locale=lang,
                                      consent_version=policy.CONSENT_VERSION)
    # The token is not kept: the activation link gets a fresh one once the case is approved.
    case.target_level = COUNTER_LEVEL
    case.counter_operator_id = op.id
    audit.record("ops.counter_started", actor=actor(), commit=False, case_id=case.id,
                 operator_id=op.id)
    audit.record("ops.counter_consent", actor=actor(), commit=False, case_id=case.id,
                 consent_version=policy.CONSENT_VERSION, locale=lang)
    db.session.commit()
    return redirect(url_for("ops.counter_documents", case_id=case.id))


# -- 2. documents --------------------------------------------------------------------------------

def _editable_or_status(case: Case):
    if case.state not in cases.EDITABLE:
        abort(redirect(url_for("ops.counter_case", case_id=case.id)))


@bp.route("/counter/<case_id>/documents", methods=["GET", "POST"])
@require(*COUNTER_ROLES)
def counter_documents(case_id):
    case = _own_case(case_id)
    _editable_or_status(case)
    error, status = None, 200
    if request.method == "POST":
        uploads = {side: request.files.get(side) for side in service.SIDES}
        datas = {side: (f.read() if f is not None else b"") for side, f in uploads.items()}
        try:
            for side in service.SIDES:
                if datas[side]:
                    service.add_document_image(case, side, datas[side],
                                               uploads[side].mimetype)
        except (UploadRejected, CaseError) as exc:
            error, status = str(exc.message), exc.status
        else:
            if all(_captured(case)[side] for side in service.SIDES):
                return redirect(url_for("ops.counter_selfie", case_id=case.id))
            error, status = _("Scan both sides of the card."), 400
    return _render("counter_documents.html", status, case=case, error=error,
                   captured=_captured(case), **_progress(2))


# -- 3. selfie and attestation -------------------------------------------------------------------

def _store_in_person_frames(case: Case, frames: list[bytes]) -> None:
    """Store the counter camera's frames as answering an "in person" challenge (no actions, no
    capture timing) through the same checks as a citizen's selfie."""
    nonce = crypto.random_token(24)
    now = utcnow().replace(microsecond=0)
    db.session.add(Challenge(case_id=case.id, nonce_hash=crypto.sha256_b64(nonce),
                             actions=[biometrics.IN_PERSON], issued_at=now,
                             expires_at=now + dt.timedelta(
                                 seconds=current_app.config["CHALLENGE_TTL"])))
    db.session.flush()
    service.add_selfie_frames(case, nonce, frames, [])


@bp.route("/counter/<case_id>/selfie", methods=["GET", "POST"])
@require(*COUNTER_ROLES)
def counter_selfie(case_id):
    case = _own_case(case_id)
    _editable_or_status(case)
    if not (case.live_media("front") and case.live_media("back")):
        return redirect(url_for("ops.counter_documents", case_id=case.id))
    conf = current_app.config
    error, status = None, 200
    if request.method == "POST":
        frames = [f.read() for f in request.files.getlist("frames")]
        frames = [data for data in frames if data]
        if request.form.get("attest") != "yes":
            error, status = _("Confirm that the citizen is present in person and that you "
                              "compared them with the card."), 400
        elif len(frames) < conf["SELFIE_MIN_FRAMES"]:
            error, status = _("Add at least %(n)s photos from the counter camera.",
                              n=conf["SELFIE_MIN_FRAMES"]), 400
        else:
            try:
                _store_in_person_frames(case, frames)
            except (UploadRejected, CaseError) as exc:
                db.session.rollback()
                error, status = str(exc.message), exc.status
            else:
                audit.record("ops.counter_attested", actor=actor(), case_id=case.id,
                             operator_id=case.counter_operator_id, frames=len(frames))
                return redirect(url_for("ops.counter_case", case_id=case.id))
    return _render("counter_selfie.html", status, case=case, error=error,
                   min_frames=conf["SELFIE_MIN_FRAMES"], max_frames=conf["SELFIE_MAX_FRAMES"],
                   captured=_captured(case), **_progress(3))


# -- 4. submit, 5. status ------------------------------------------------------------------------

def _status_page(case: Case, error: str | None = None, status: int = 200, link=None):
    db.session.refresh(case)
    account = case_account(case) if case.state == cases.APPROVED else None
    reasons = [{"code": code, "message": str(policy.reason_message(code))}
               for code in case.reason_codes or []]
    step = 4 if case.state in cases.EDITABLE else 5
    return _render("counter_case.html", status, case=case, error=error, link=link,
                   captured=_captured(case), account=account, reasons=reasons,
                   editable=case.state in cases.EDITABLE,
                   in_flight=case.state in cases.IN_FLIGHT,
                   can_link=account is not None and account.status == ACCOUNT_PENDING_ACTIVATION,
                   reference=case.id.replace("-", "")[:8].upper(),
                   state_text=STATE_TEXT.get(case.state, case.state), **_progress(step))


@bp.get("/counter/<case_id>")
@require(*COUNTER_ROLES)
def counter_case(case_id):
    return _status_page(_own_case(case_id))


@bp.post("/counter/<case_id>/submit")
@require(*COUNTER_ROLES)
def counter_submit(case_id):
    case = _own_case(case_id)
    if case.state in cases.EDITABLE:
        if not all(_captured(case).values()):
            return _status_page(case, _("Scan both sides of the card and add the photos with "
                                        "your attestation first."), 400)
        try:
            service.submit(case, actor=actor())
        except CaseError as exc:
            return _status_page(case, str(exc.message), exc.status)
    return redirect(url_for("ops.counter_case", case_id=case.id))


@bp.post("/counter/<case_id>/link")
@require(*COUNTER_ROLES)
def counter_link(case_id):
    """Show the citizen's activation link once (a new one revokes the previous one)."""
    case = _own_case(case_id)
    account = case_account(case) if case.state == cases.APPROVED else None
    link = activation_link(account)
    if link is None:
        db.session.rollback()
        return _status_page(case, _("This account cannot be activated with a link now."), 409)
    audit.record("ops.activation_link_shown", actor=actor(), account_id=account.id,
                 commit=False, case_id=case.id)
    db.session.commit()
    return _status_page(case, link=link)


# -- the citizen's phone: the activation link ----------------------------------------------------

@bp.route("/counter/activate/<value>", methods=["GET", "POST"])
def counter_activate(value):
    """The link shown at the counter, opened on the citizen's own phone (no console sign-in).

    GET only shows a button: link previews and QR scanner apps fetch links, and must not use
    them up. The POST hands the case to this browser (as the onboarding pages hold it, with a
    fresh token, so the link works once) and goes on to activation."""
    from idp.errors import error_page

    try:
        data = _serializer().loads(value, max_age=LINK_TTL)
        case = service.open_case(str(data["c"]), str(data["t"]))
    except (BadSignature, KeyError, TypeError):
        case = None
    if case is None or service.activation_allowed(case) is None:
        return error_page(_("This activation link is not valid any more. Ask at the counter "
                            "for a new one."), 410, "link_invalid")
    if request.method == "GET":
        return render_template("ops/counter_activate.html",
                               action=url_for("ops.counter_activate", value=value))
    token = _rotate_token(case)
    db.session.commit()
    session[CITIZEN_SESSION_KEY] = {"case": case.id, "token": token}
    return redirect(url_for("onboarding.activate"))
