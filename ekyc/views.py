"""Citizen onboarding pages (eKYC): consent, both sides of the card, live selfie frames after a
random challenge, submission, status and result, then account activation.

Every step is a plain HTML form that works without JavaScript (file inputs; the status page
refreshes itself through a <noscript> meta refresh); `static/ekyc/capture.js` adds the camera
(getUserMedia) and puts what it captures into the same form fields, so one server path handles
both. The case token lives only in the Flask session (a signed, HttpOnly cookie): never in a
URL, a page or a log. Cases are reached only through `ekyc.service`.

Selfie without JavaScript: the page asks for one photo per challenge action (plus one looking
straight), each from a `capture="user"` file input, so a phone opens its front camera for each.
Such photos carry no trustworthy capture timing, so none is sent (an empty timestamp list, never
invented values); the liveness check cannot judge movement from them and sends the case to an
officer, and the page says so. A still-photo path is kept, rather than refusing citizens without
JavaScript, because the service must work on cheap phones and with assistive technology.
"""

from __future__ import annotations

import base64
import io
import math
import time

import qrcode
from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp import crypto
from idp.accounts.passwords import MIN_LENGTH, strong_enough

from . import api, policy, service
from .service import CaseError, UploadRejected

bp = Blueprint("onboarding", __name__, url_prefix="/onboarding", static_folder="static")

SESSION_KEY = "ekyc"  # {"case": id, "token": case token}
ACTIVATION_KEY = "ekyc_activation"  # {"case", "password" (encrypted), "secret", "at"}
ACTIVATION_TTL = 900  # seconds between choosing the password and confirming the app
REVIEW_WORKING_DAYS = 3  # what the page promises for an operator's review
STEPS = (_l("Consent"), _l("Front of the card"), _l("Back of the card"), _l("Selfie"),
         _l("Check and send"))
ACTIVATION_STEPS = (_l("Password"), _l("Authenticator app"))
CARD_TEXT = {
    "front": {"heading": _l("Photo of the front of your card"),
              "hint": _l("The front is the side with your photo and the QR code."),
              "label": _l("Photo of the front of your card"),
              "received": _l("The front of your card has been received. Continue, or send a "
                             "new photo if it is not sharp.")},
    "back": {"heading": _l("Photo of the back of your card"),
             "hint": _l("The back is the side with the chip and the three lines of letters "
                        "and numbers at the bottom."),
             "label": _l("Photo of the back of your card"),
             "received": _l("The back of your card has been received. Continue, or send a new "
                            "photo if it is not sharp.")},
}
# The step of the flow ("capture" ones) each status_view step name stands for.
CAPTURE_STEPS = {"document_front": "front", "document_back": "back", "selfie": "selfie"}


def _locale() -> str:
    return str(get_locale())


def _render(template: str, status: int = 200, **context):
    return render_template(f"ekyc/{template}", **context), status


@bp.url_value_preprocessor
def _raise_body_limit(endpoint, _values):
    """Photos may exceed the app-wide MAX_CONTENT_LENGTH; this runs before the CSRF check
    (a before_request hook) reads the multipart body."""
    if endpoint == "onboarding.card":
        request.max_content_length = api.body_limit("document")
    elif endpoint == "onboarding.selfie":
        request.max_content_length = api.body_limit("selfie")


@bp.after_request
def _no_store(response):
    response.headers["Cache-Control"] = "no-store"  # pages about a person's application
    return response


@bp.errorhandler(CaseError)
def _case_error(exc: CaseError):
    """A case error no form handles: an expired case starts over, the rest is an error page."""
    if exc.code == "case_expired":
        session.pop(SESSION_KEY, None)
        return _start_page(str(exc.message), exc.status)
    from idp.errors import error_page

    return error_page(str(exc.message), exc.status, exc.code)


# -- the case of this browser --------------------------------------------------------------------

def _current_case():
    """The case whose token this browser holds, or None (a stale one is forgotten)."""
    held = session.get(SESSION_KEY)
    if not isinstance(held, dict):
        return None
    case = service.open_case(str(held.get("case", "")), str(held.get("token", "")))
    if case is None:
        session.pop(SESSION_KEY, None)
    return case


def _require_case():
    case = _current_case()
    if case is None:
        abort(redirect(url_for(".start")))
    return case


def _captured(case) -> dict[str, bool]:
    """{front, back, selfie} -> whether that capture is stored, from the service's steps."""
    steps = service.status_view(case, _locale())["steps"]
    return {CAPTURE_STEPS[s["name"]]: s["done"] for s in steps if s["name"] in CAPTURE_STEPS}


def _require_editable():
    case = _require_case()
    if service.status_view(case, _locale())["next"] != "capture":
        abort(redirect(url_for(".status")))  # submitted: the pipeline owns it now
    return case


def _progress(step: int) -> dict:
    return {"step": step, "steps": [str(s) for s in STEPS]}


# -- 1. consent ----------------------------------------------------------------------------------

def _start_page(error: str | None = None, status: int = 200):
    case = _current_case()
    resume = None
    if case is not None:
        nxt = service.status_view(case, _locale())["next"]
        resume = url_for(".review") if nxt == "capture" else url_for(".status")
    text = policy.consent_text(_locale())
    return _render("start.html", status, error=error, resume=resume,
                   consent_version=policy.CONSENT_VERSION, consent_lang=_locale(),
                   consent_paragraphs=[p.strip() for p in text.split("\n\n") if p.strip()],
                   **_progress(1))


@bp.route("/", methods=["GET", "POST"])
def start():
    if request.method == "GET":
        return _start_page()
    if request.form.get("consent") != "yes":
        return _start_page(_("To continue, tick the box to show that you agree."), 400)
    if request.form.get("consent_version") != policy.CONSENT_VERSION:
        return _start_page(_("The consent text has changed. Read it again, then agree."), 409)
    wait = api.creation_allowed()
    if wait:
        return _start_page(_("Too many new applications from your network. Try again in "
                             "%(minutes)s minutes.", minutes=math.ceil(wait / 60)), 429)
    case, token = service.start_case(channel="web", locale=_locale(),
                                     consent_version=policy.CONSENT_VERSION)
    session.pop(ACTIVATION_KEY, None)
    session[SESSION_KEY] = {"case": case.id, "token": token}
    return redirect(url_for(".card", side="front"))


@bp.post("/restart")
def restart():
    """Forget this browser's case (a rejected one, say) and go back to the start."""
    session.pop(SESSION_KEY, None)
    session.pop(ACTIVATION_KEY, None)
    return redirect(url_for(".start"))


# -- 2, 3. the card ------------------------------------------------------------------------------

@bp.route("/card/<side>", methods=["GET", "POST"])
def card(side):
    if side not in CARD_TEXT:
        abort(404)
    case = _require_editable()
    error, status = None, 200
    if request.method == "POST":
        upload = request.files.get("photo")
        data = upload.read() if upload is not None else b""
        if not data:
            error, status = _("Choose a photo of your card first."), 400
        else:
            try:
                service.add_document_image(case, side, data, upload.mimetype)
            except (UploadRejected, CaseError) as exc:
                if exc.code == "case_expired":
                    raise
                error, status = str(exc.message), exc.status
            else:
                # Seen in a preview already (the camera, or a file with JavaScript): move on.
                if request.form.get("advance") == "1":
                    return redirect(_after(side))
                return redirect(url_for(".card", side=side))
    done = _captured(case)[side]
    texts = CARD_TEXT[side]
    return _render("card.html", status, side=side, error=error, done=done,
                   heading=str(texts["heading"]), hint=str(texts["hint"]),
                   label=str(texts["label"]), received=str(texts["received"]),
                   max_mb=current_app.config["UPLOAD_MAX_BYTES"] // (1024 * 1024),
                   max_bytes=current_app.config["UPLOAD_MAX_BYTES"],
                   next_url=_after(side), back_url=_before(side),
                   **_progress(2 if side == "front" else 3))


def _after(side: str) -> str:
    return url_for(".card", side="back") if side == "front" else url_for(".selfie")


def _before(side: str) -> str:
    return url_for(".start") if side == "front" else url_for(".card", side="front")


# -- 4. selfie -----------------------------------------------------------------------------------

def _selfie_page(case, error: str | None = None, status: int = 200):
    challenge = service.new_challenge(case)
    actions = [{"code": a["action"], "text": a["text"]}
               for a in api.challenge_actions(challenge["actions"])]
    conf = current_app.config
    return _render("selfie.html", status, error=error, done=_captured(case)["selfie"],
                   nonce=challenge["nonce"], actions=actions,
                   minutes=max(1, conf["CHALLENGE_TTL"] // 60),
                   max_frames=conf["SELFIE_MAX_FRAMES"], next_url=url_for(".review"),
                   back_url=url_for(".card", side="back"), **_progress(4))


@bp.route("/selfie", methods=["GET", "POST"])
def selfie():
    case = _require_editable()
    if request.method == "GET":
        return _selfie_page(case)
    frames = api.uploaded_frames("frames")
    try:
        if request.form.get("source") == "camera":
            stamps = api.parse_timestamps(request.form.getlist("timestamps_ms"))
        else:
            # Photos from file inputs carry no capture timing; none is invented (the liveness
            # check then sends the case to an officer).
            stamps = []
        service.add_selfie_frames(case, request.form.get("nonce", ""), frames, stamps)
    except (UploadRejected, CaseError) as exc:
        if exc.code == "case_expired":
            raise
        return _selfie_page(case, str(exc.message), exc.status)
    return redirect(url_for(".review"))


# -- 5. check and send ---------------------------------------------------------------------------

@bp.get("/review")
def review():
    case = _require_editable()
    return _review_page(case)


def _review_page(case, error: str | None = None, status: int = 200):
    captured = _captured(case)
    items = [{"label": str(STEPS[1]), "done": captured["front"],
              "url": url_for(".card", side="front")},
             {"label": str(STEPS[2]), "done": captured["back"],
              "url": url_for(".card", side="back")},
             {"label": str(STEPS[3]), "done": captured["selfie"], "url": url_for(".selfie")}]
    return _render("review.html", status, items=items, error=error,
                   ready=all(captured.values()), **_progress(5))


@bp.post("/submit")
def submit():
    case = _require_case()
    try:
        service.submit(case)
    except CaseError as exc:
        if exc.code == "case_expired":
            raise
        if service.status_view(case, _locale())["next"] != "capture":
            return redirect(url_for(".status"))
        return _review_page(case, str(exc.message), exc.status)
    return redirect(url_for(".status"))


# -- status and result ---------------------------------------------------------------------------

POLL_SECONDS = {"submitted": 3, "processing": 3, "waiting_register": 30}


def _status_texts(view: dict) -> tuple[str, str, list[str]]:
    """(title, one-line summary, what happens next) for a status view."""
    state, nxt = view["state"], view["next"]
    if nxt == "capture" and any(r["code"] == "recapture_requested" for r in view["reasons"]):
        return (_("Please take new photos"),
                _("An officer checked your application and needs new photos."),
                [_("Take new photos of both sides of your card and a new selfie, then send "
                   "your application again. Use good light and keep the whole card in the "
                   "frame.")])
    if nxt == "capture":
        return (_("Your application is not sent yet"),
                _("Some photos are still missing, or you have not sent your application."),
                [_("Finish the missing steps, then send your application.")])
    if state in ("submitted", "processing"):
        return (_("We are checking your application"),
                _("We are checking your card and your photos. This usually takes less than a "
                  "minute."), [_("Keep this page open: it will show the result.")])
    if state == "waiting_register":
        return (_("Waiting for the population register"),
                _("The population register is not answering right now. We will try again "
                  "automatically."),
                [_("You do not need to do anything. Your application is kept and will be "
                   "checked as soon as the register answers."),
                 _("You can close this page and come back to it later in this browser.")])
    if state == "needs_review":
        return (_("An officer will check your application"),
                _("Your application needs a check by an officer."),
                [_("An officer will review it within %(days)s working days.",
                   days=REVIEW_WORKING_DAYS),
                 _("Come back to this page in this browser to see the decision. If you close "
                   "the browser, you can ask at your commune police station with your "
                   "application reference below.")])
    if state == "approved":
        if nxt == "activate":
            return (_("Your identity is confirmed"),
                    _("Your electronic identity has been created."),
                    [_("Now choose a password and add an authenticator app. You cannot sign in "
                       "before this is done.")])
        if nxt == "done":
            return (_("Your account is ready"), _("Your electronic identity is active."),
                    [_("Sign in with your personal ID number, your password and the code from "
                       "your authenticator app.")])
        return (_("Your identity is confirmed"), _("But your account cannot be used now."),
                [_("Please ask at your commune police station.")])
    if nxt == "retry":
        return (_("We could not confirm your identity"), _("Your application was not accepted."),
                [_("You can start a new application. Take the photos again in good light, with "
                   "the whole card in the frame.")])
    return (_("We could not confirm your identity"), _("Your application was not accepted."),
            [_("Please go to your commune police station with your ID card: they can help you "
               "register in person.")])


@bp.get("/status")
def status():
    case = _require_case()
    view = service.status_view(case, _locale())
    title, summary, lines = _status_texts(view)
    refresh = POLL_SECONDS.get(view["state"])
    return _render("status.html", view=view, title=title, summary=summary, next_lines=lines,
                   polling=refresh is not None, refresh=refresh or 0,
                   reference=case.id.replace("-", "")[:8].upper())


@bp.get("/status.json")
def status_json():
    """What capture.js polls: the state only (it reloads the page when it changes)."""
    case = _require_case()
    view = service.status_view(case, _locale())
    return {"state": view["state"], "next": view["next"]}


# -- activation: password, then the authenticator app --------------------------------------------

def _activation_account(case):
    account = service.activation_allowed(case)
    if account is None:
        abort(redirect(url_for(".status")))
    return account


def _username(account) -> str:
    """The sign-in name password managers should store with the new password."""
    try:
        return crypto.decrypt(account.pid_encrypted) if account.pid_encrypted else ""
    except RuntimeError:
        return ""


@bp.route("/activate", methods=["GET", "POST"])
def activate():
    case = _require_case()
    account = _activation_account(case)
    error, status = None, 200
    if request.method == "POST":
        password = request.form.get("password", "")
        if password != request.form.get("password2", ""):
            error, status = _("The two passwords are not the same."), 400
        elif not strong_enough(password) or len(password) > 200:
            error, status = _("This password is too weak. Use at least %(n)s characters with at "
                              "least two of: lower-case letters, upper-case letters, digits.",
                              n=MIN_LENGTH), 400
        else:
            # Kept encrypted (the session cookie is only signed) until the app is confirmed.
            session[ACTIVATION_KEY] = {"case": case.id, "password": crypto.encrypt(password),
                                       "secret": service.new_totp_secret(),
                                       "at": int(time.time())}
            return redirect(url_for(".activate_app"))
    return _render("activate_password.html", status, error=error, min_length=MIN_LENGTH,
                   username=_username(account), step=1,
                   steps=[str(s) for s in ACTIVATION_STEPS])


def _qr_data_url(text: str) -> str:
    image = qrcode.make(text, box_size=6, border=2)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


@bp.route("/activate/app", methods=["GET", "POST"])
def activate_app():
    case = _require_case()
    _activation_account(case)
    pending = session.get(ACTIVATION_KEY)
    if not isinstance(pending, dict) or pending.get("case") != case.id or \
            time.time() - pending.get("at", 0) > ACTIVATION_TTL:
        session.pop(ACTIVATION_KEY, None)
        return redirect(url_for(".activate"))
    secret = pending["secret"]
    error, status = None, 200
    if request.method == "POST":
        try:
            service.activate(case, crypto.decrypt(pending["password"]), secret,
                             request.form.get("code", ""))
        except CaseError as exc:
            if exc.code == "weak_password":
                return redirect(url_for(".activate"))
            error, status = str(exc.message), exc.status
        else:
            session.pop(ACTIVATION_KEY, None)
            session.pop(SESSION_KEY, None)  # the case is finished: its token is not needed
            return redirect(url_for(".activated"))
    return _render("activate_totp.html", status, error=error,
                   qr=_qr_data_url(service.totp_provisioning_uri(case, secret)),
                   secret_groups=" ".join(secret[i:i + 4] for i in range(0, len(secret), 4)),
                   step=2, steps=[str(s) for s in ACTIVATION_STEPS])


@bp.get("/done")
def activated():
    return _render("activated.html")
