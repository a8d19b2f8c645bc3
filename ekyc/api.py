"""The onboarding JSON API for mobile apps: the same steps as the citizen pages.

    GET  /consent                          the consent text to show, with its version
    POST /cases                            consent given -> {case_id, case_token, ...}  (201)
    POST /cases/<case_id>/documents/<side> one side of the card (raw image body or multipart)
    POST /cases/<case_id>/challenge        a random liveness challenge                  (201)
    POST /cases/<case_id>/selfie           the frames answering it (multipart + timestamps)
    POST /cases/<case_id>/submit           hand the case to the pipeline                (202)
    GET  /cases/<case_id>                  state, steps, reasons, what is next
    GET  /openapi.json                     OpenAPI 3.1 description of all of the above

Authentication is the case token returned once by POST /cases, sent as a Bearer token
(RFC 6750). Errors are `{"error", "error_description"}` with the HTTP status of the problem, in
the language of `ui_locales` (query) or Accept-Language, Vietnamese by default. Case creation is
limited per client IP (429 with Retry-After). The blueprint is CSRF-exempt (`ekyc.init_app`):
nothing here rides on cookies.
"""

from __future__ import annotations

import functools

from flask import Blueprint, current_app, jsonify, request, url_for
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import RequestEntityTooLarge

from idp import store
from idp.settings import SUPPORTED_LOCALES

from . import policy, service, uploads
from .service import CaseError, UploadRejected

bp = Blueprint("onboarding_api", __name__, url_prefix="/api/onboarding/v1")

SIDES = ("front", "back")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
# Per-IP limit on new cases (fixed window); defaults until idp/settings.py declares them.
# Request bodies: twice the image cap, so an oversized photo still reaches the upload check and
# gets its precise message; a selfie burst carries several frames.
DOCUMENT_BODY_FACTOR, SELFIE_BODY_FACTOR = 2, 4

API_ERRORS = {
    "invalid_request": 400, "invalid_token": 401, "not_found": 404, "consent_outdated": 409,
    "request_too_large": 413, "unsupported_media_type": 415, "rate_limited": 429,
    "temporarily_unavailable": 503,  # Redis or the database unreachable (idp/errors.py)
}
# Every `error` this API answers (the fuzz registry and the OpenAPI enum use it).
ERROR_CODES = tuple(sorted(set(API_ERRORS) | set(service.MESSAGES) | set(uploads.MESSAGES)))

MESSAGES = {
    "invalid_request": _l("The request is not valid."),
    "invalid_token": _l("Send the case token of this case as a Bearer token."),
    "not_found": _l("There is nothing at this address."),
    "consent_outdated": _l("The consent text has changed. Show the current text and ask again."),
    "request_too_large": _l("What you sent is too large."),
    "unsupported_media_type": _l("Send a JPEG, PNG or WebP image."),
    "rate_limited": _l("Too many new applications from your network. Try again later."),
}


class ApiError(Exception):
    """An error answered as JSON: `code` (one of API_ERRORS), message, extra headers."""

    def __init__(self, code: str, message=None, headers: dict | None = None):
        super().__init__(code)
        self.code = code
        self.status = API_ERRORS[code]
        self.message = message if message is not None else MESSAGES[code]
        self.headers = headers or {}


# -- shared with the citizen pages (ekyc.views) --------------------------------------------------

def creation_allowed() -> int:
    """0 when this client IP may open another case now, else the seconds until it may."""
    conf = current_app.config
    return store.fixed_window(f"ekyc-cases-ip:{request.remote_addr}",
                              conf["EKYC_CASES_PER_IP"], conf["EKYC_CASES_WINDOW"])


def body_limit(kind: str) -> int:
    """Largest request body accepted for a document ("document") or a selfie burst."""
    factor = SELFIE_BODY_FACTOR if kind == "selfie" else DOCUMENT_BODY_FACTOR
    return factor * current_app.config["UPLOAD_MAX_BYTES"] + 64 * 1024  # + multipart framing


def parse_timestamps(values: list[str]) -> list[int]:
    """Client capture times in ms, from repeated fields and/or comma-separated lists."""
    stamps = []
    for value in values:
        for item in value.replace(" ", "").split(","):
            if not item:
                continue
            if not item.isdigit() or len(item) > 16:
                raise CaseError("frame_timing")
            stamps.append(int(item))
    return stamps


def uploaded_frames(field: str = "frames") -> list[bytes]:
    """The non-empty files of a multipart field, in the order they were sent."""
    frames = []
    for storage in request.files.getlist(field):
        data = storage.read()
        if data or storage.filename:
            frames.append(data)
    return frames


def challenge_actions(actions: list[str]) -> list[dict]:
    """Each action code with what to tell the citizen, in the current language."""
    return [{"action": code, "text": str(service.CHALLENGE_ACTIONS.get(code, code))}
            for code in actions]


def request_locale() -> str:
    """ui_locales (query or form) first, then Accept-Language; Vietnamese by default."""
    for tag in (request.args.get("ui_locales") or "").split():
        if tag.split("-")[0].lower() in SUPPORTED_LOCALES:
            return tag.split("-")[0].lower()
    return request.accept_languages.best_match(SUPPORTED_LOCALES) or "vi"


# -- plumbing ------------------------------------------------------------------------------------

@bp.url_value_preprocessor
def _raise_body_limit(endpoint, _values):
    """Uploads may exceed the app-wide MAX_CONTENT_LENGTH (url_value_preprocessors run before
    any before_request hook reads the body)."""
    if endpoint == "onboarding_api.document":
        request.max_content_length = body_limit("document")
    elif endpoint == "onboarding_api.selfie":
        request.max_content_length = body_limit("selfie")


def _error(code: str, message, status: int, headers: dict | None = None):
    description = " ".join(str(message).split())  # no CR, LF or TAB (RFC 6749 5.2 style)
    response = jsonify(error=code, error_description=description)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    if status == 401:
        response.headers["WWW-Authenticate"] = \
            'Bearer realm="onboarding"' + (', error="invalid_token"'
                                           if request.headers.get("Authorization") else "")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def endpoint(view):
    """Run `view` in the caller's language and turn every expected error into JSON."""

    @functools.wraps(view)
    def wrapper(**kwargs):
        with force_locale(request_locale()):
            try:
                response = view(**kwargs)
            except ApiError as exc:
                return _error(exc.code, exc.message, exc.status, exc.headers)
            except (UploadRejected, CaseError) as exc:
                return _error(exc.code, exc.message, exc.status)
            except RequestEntityTooLarge:
                return _error("request_too_large", MESSAGES["request_too_large"], 413)
        response.headers["Cache-Control"] = "no-store"
        return response

    return wrapper


def _json(payload: dict, status: int = 200, **headers):
    response = jsonify(payload)
    response.status_code = status
    response.headers.update(headers)
    return response


def _bearer() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError("invalid_token")
    return token


def _case(case_id: str):
    case = service.open_case(case_id, _bearer())
    if case is None:
        raise ApiError("invalid_token", _l("This token does not open this case."))
    return case


def _json_body() -> dict:
    if not request.is_json:
        raise ApiError("unsupported_media_type", _l("Send a JSON body (application/json)."))
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError("invalid_request", _l("The body must be a JSON object."))
    return body


# -- routes --------------------------------------------------------------------------------------

@bp.get("/consent")
@endpoint
def consent():
    locale = request_locale()
    return _json({"consent_version": policy.CONSENT_VERSION, "locale": locale,
                  "text": policy.consent_text(locale)})


@bp.post("/cases")
@endpoint
def create_case():
    body = _json_body()
    version = body.get("consent_version")
    if body.get("consent") is not True:
        raise CaseError("consent_required")
    if not isinstance(version, str) or version != policy.CONSENT_VERSION:
        raise ApiError("consent_outdated")
    wait = creation_allowed()
    if wait:
        raise ApiError("rate_limited", headers={"Retry-After": str(wait)})
    case, token = service.start_case(channel="api", locale=request_locale(),
                                     consent_version=version)
    location = url_for(".case_status", case_id=case.id)
    return _json({"case_id": case.id, "case_token": token, "consent_version": version,
                  "state": case.state}, 201, Location=location)


@bp.post("/cases/<case_id>/documents/<side>")
@endpoint
def document(case_id, side):
    case = _case(case_id)
    if side not in SIDES:
        raise ApiError("not_found", _l("The side must be front or back."))
    if request.mimetype == "multipart/form-data":
        storage = request.files.get("image")
        if storage is None:
            raise ApiError("invalid_request", _l("Send the image in the multipart field "
                                                 "\"image\"."))
        data, content_type = storage.read(), storage.mimetype
    elif request.mimetype in IMAGE_TYPES or request.mimetype == "application/octet-stream":
        data, content_type = request.get_data(cache=False), request.mimetype
    else:
        raise ApiError("unsupported_media_type")
    service.add_document_image(case, side, data, content_type)
    return _json({"case_id": case.id, "side": side, "state": case.state})


@bp.post("/cases/<case_id>/challenge")
@endpoint
def challenge(case_id):
    case = _case(case_id)
    issued = service.new_challenge(case)
    conf = current_app.config
    return _json({**issued, "instructions": challenge_actions(issued["actions"]),
                  "min_frames": conf["SELFIE_MIN_FRAMES"], "max_frames": conf["SELFIE_MAX_FRAMES"]},
                 201)


@bp.post("/cases/<case_id>/selfie")
@endpoint
def selfie(case_id):
    case = _case(case_id)
    if request.mimetype != "multipart/form-data":
        raise ApiError("unsupported_media_type", _l("Send the frames as multipart/form-data."))
    nonce = request.form.get("nonce", "")
    stamps = parse_timestamps(request.form.getlist("timestamps_ms"))
    if not stamps:  # apps capture live frames: their timing is part of the evidence
        raise CaseError("frame_timing")
    frames = uploaded_frames("frames")
    service.add_selfie_frames(case, nonce, frames, stamps)
    return _json({"case_id": case.id, "frames": len(frames), "state": case.state})


@bp.post("/cases/<case_id>/submit")
@endpoint
def submit(case_id):
    case = _case(case_id)
    service.submit(case)
    return _json({"case_id": case.id, **service.status_view(case, request_locale())}, 202)


@bp.get("/cases/<case_id>")
@endpoint
def case_status(case_id):
    case = _case(case_id)
    return _json({"case_id": case.id, **service.status_view(case, request_locale())})


@bp.get("/openapi.json")
@endpoint
def openapi():
    return _json(openapi_document())


# -- OpenAPI 3.1 ---------------------------------------------------------------------------------

def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(description: str, schema: str, **headers) -> dict:
    out = {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}
    if headers:
        out["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                          for name, text in headers.items()}
    return out


_ERROR_TEXT = {
    400: "Invalid input (see `error`)", 401: "No case token, or it does not open this case",
    404: "Unknown side", 409: "The case or challenge does not accept this now (state conflict, "
    "consent text changed, challenge used)", 410: "The case or the challenge expired",
    413: "Body or image too large, or too many pixels", 415: "Not a JPEG, PNG or WebP image, or "
    "the wrong request content type", 429: "Too many new cases from this IP address",
    503: "Redis or the database is unavailable for a moment; retry after Retry-After seconds",
}


def _operation(op_id: str, summary: str, ok: dict, errors: tuple[int, ...], *,
               auth: bool = True, body: dict | None = None, params: tuple = ()) -> dict:
    responses = {code: out for code, out in ok.items()}
    for status in errors:
        response = {"description": _ERROR_TEXT[status],
                    "content": {"application/json": {"schema": _ref("Error")}}}
        if status == 401:
            response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"},
                                                        "description": "Bearer challenge"}}
        if status in (429, 503):
            response["headers"] = {"Retry-After": {"schema": {"type": "string"},
                                                   "description": "seconds to wait"}}
        responses[str(status)] = response
    responses["503"] = {"description": _ERROR_TEXT[503],  # any operation, in an outage
                        "content": {"application/json": {"schema": _ref("Error")}},
                        "headers": {"Retry-After": {"schema": {"type": "string"},
                                                    "description": "seconds to wait"}}}
    operation = {"operationId": op_id, "summary": summary,
                 "parameters": [{"$ref": "#/components/parameters/" + p}
                                for p in (*params, "ui_locales", "AcceptLanguage")],
                 "responses": responses}
    operation["security"] = [{"caseToken": []}] if auth else []
    if body:
        operation["requestBody"] = body
    return operation


def _image(media_type: str) -> dict:
    return {"type": "string", "contentMediaType": media_type}


def openapi_document() -> dict:
    """The OpenAPI 3.1 description of every route of this blueprint, limits from settings."""
    from .cases import STATES

    conf = current_app.config
    max_bytes, low, high = conf["UPLOAD_MAX_BYTES"], conf["SELFIE_MIN_FRAMES"], \
        conf["SELFIE_MAX_FRAMES"]
    raw_images = {t: {"schema": _image(t)} for t in (*IMAGE_TYPES, "application/octet-stream")}
    document_body = {"required": True, "description": f"The photo: at most {max_bytes} bytes "
                     f"and {conf['UPLOAD_MAX_PIXELS']} pixels, sides at least "
                     f"{conf['UPLOAD_MIN_SIDE']} px; EXIF is applied and stripped.",
                     "content": {**raw_images, "multipart/form-data": {
                         "schema": {"type": "object", "required": ["image"],
                                    "properties": {"image": _image("image/jpeg")}},
                         "encoding": {"image": {"contentType": ", ".join(IMAGE_TYPES)}}}}}
    selfie_body = {"required": True, "content": {"multipart/form-data": {
        "schema": {"type": "object", "required": ["nonce", "frames", "timestamps_ms"],
                   "properties": {
                       "nonce": {"type": "string", "description": "from POST .../challenge"},
                       "frames": {"type": "array", "minItems": low, "maxItems": high,
                                  "items": _image("image/jpeg"),
                                  "description": "live frames in capture order"},
                       "timestamps_ms": {"type": "array", "minItems": low, "maxItems": high,
                                         "items": {"type": "integer", "minimum": 0},
                                         "description": "client capture time of each frame, "
                                         "ms, strictly increasing; repeated fields or one "
                                         "comma-separated list"}}},
        "encoding": {"frames": {"contentType": ", ".join(IMAGE_TYPES)}}}}}
    consent_body = {"required": True, "content": {"application/json": {
        "schema": _ref("CaseRequest")}}}
    case_params = ("case_id",)
    paths = {
        "/consent": {"get": _operation(
            "getConsent", "The consent text to show before opening a case",
            {"200": _ok("Consent text and version", "Consent")}, (), auth=False)},
        "/cases": {"post": _operation(
            "createCase", "Open a case with the citizen's explicit consent",
            {"201": _ok("The case and its token (shown once)", "CaseCreated",
                        Location="URL of the case status")},
            (400, 409, 415, 429), auth=False, body=consent_body)},
        "/cases/{case_id}": {"get": _operation(
            "getCase", "State, progress and what happens next",
            {"200": _ok("Case status", "Status")}, (401,), params=case_params)},
        "/cases/{case_id}/documents/{side}": {"post": _operation(
            "addDocument", "One side of the ID card (replaces an earlier one)",
            {"200": _ok("Stored", "DocumentStored")}, (400, 401, 404, 409, 410, 413, 415),
            body=document_body, params=(*case_params, "side"))},
        "/cases/{case_id}/challenge": {"post": _operation(
            "newChallenge", "A random liveness challenge to show before the selfie",
            {"201": _ok("The challenge", "Challenge")}, (401, 409, 410), params=case_params)},
        "/cases/{case_id}/selfie": {"post": _operation(
            "addSelfie", "Live selfie frames answering the challenge (replace earlier ones)",
            {"200": _ok("Stored", "SelfieStored")}, (400, 401, 409, 410, 413, 415),
            body=selfie_body, params=case_params)},
        "/cases/{case_id}/submit": {"post": _operation(
            "submitCase", "Hand the case to the checks (idempotent)",
            {"202": _ok("Accepted; poll GET /cases/{case_id}", "Status")},
            (400, 401, 409, 410), params=case_params)},
        "/openapi.json": {"get": _operation(
            "openapi", "This document", {"200": {"description": "OpenAPI 3.1 document",
                                                "content": {"application/json": {
                                                    "schema": {"type": "object"}}}}},
            (), auth=False)},
    }
    string, boolean = {"type": "string"}, {"type": "boolean"}
    schemas = {
        "Error": {"type": "object", "required": ["error", "error_description"],
                  "properties": {"error": {"type": "string", "enum": list(ERROR_CODES)},
                                 "error_description": string}},
        "Consent": {"type": "object", "required": ["consent_version", "locale", "text"],
                    "properties": {"consent_version": string,
                                   "locale": {"type": "string", "enum": list(SUPPORTED_LOCALES)},
                                   "text": string}},
        "CaseRequest": {"type": "object", "required": ["consent", "consent_version"],
                        "properties": {"consent": {"type": "boolean", "description":
                                                   "true: the citizen explicitly agreed"},
                                       "consent_version": {"type": "string", "description":
                                                           "version of the text shown"}}},
        "CaseCreated": {"type": "object",
                        "required": ["case_id", "case_token", "consent_version", "state"],
                        "properties": {"case_id": string, "case_token": {
                            "type": "string", "description": "Bearer token of this case; "
                            "shown once, keep it secret"}, "consent_version": string,
                            "state": {"type": "string", "enum": list(STATES)}}},
        "DocumentStored": {"type": "object", "required": ["case_id", "side", "state"],
                           "properties": {"case_id": string,
                                          "side": {"type": "string", "enum": list(SIDES)},
                                          "state": {"type": "string", "enum": list(STATES)}}},
        "Challenge": {"type": "object", "required": [
            "nonce", "actions", "instructions", "issued_at", "expires_at", "ttl_seconds",
            "min_frames", "max_frames"], "properties": {
            "nonce": string,
            "actions": {"type": "array", "items": {
                "type": "string", "enum": list(service.CHALLENGE_ACTIONS)}},
            "instructions": {"type": "array", "items": {
                "type": "object", "required": ["action", "text"],
                "properties": {"action": string, "text": string}}},
            "issued_at": {"type": "string", "format": "date-time"},
            "expires_at": {"type": "string", "format": "date-time"},
            "ttl_seconds": {"type": "integer"}, "min_frames": {"type": "integer"},
            "max_frames": {"type": "integer"}}},
        "SelfieStored": {"type": "object", "required": ["case_id", "frames", "state"],
                         "properties": {"case_id": string, "frames": {"type": "integer"},
                                        "state": {"type": "string", "enum": list(STATES)}}},
        "Status": {"type": "object", "required": ["case_id", "state", "steps", "reasons",
                                                  "next"], "properties": {
            "case_id": string, "state": {"type": "string", "enum": list(STATES)},
            "steps": {"type": "array", "items": {"type": "object", "required": ["name", "done"],
                                                 "properties": {"name": string,
                                                                "done": boolean}}},
            "reasons": {"type": "array", "items": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": string, "message": string}}},
            "hints": {"type": "array", "items": string,
                      "description": "what to change in the selfie when it was unusable"},
            "next": {"type": "string", "enum": ["capture", "wait", "activate", "done", "retry",
                                                "contact"]}}},
    }
    parameters = {
        "case_id": {"name": "case_id", "in": "path", "required": True, "schema": string},
        "side": {"name": "side", "in": "path", "required": True,
                 "schema": {"type": "string", "enum": list(SIDES)}},
        "ui_locales": {"name": "ui_locales", "in": "query", "required": False,
                       "description": "language of messages: vi (default) or en",
                       "schema": string},
        "AcceptLanguage": {"name": "Accept-Language", "in": "header", "required": False,
                           "schema": string},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "DinhDanh onboarding API", "version": "1.0.0",
                 "description": (__doc__ or "").strip()},
        "servers": [{"url": current_app.config["ISSUER"] + bp.url_prefix}],
        "paths": paths,
        "components": {"schemas": schemas, "parameters": parameters, "securitySchemes": {
            "caseToken": {"type": "http", "scheme": "bearer",
                          "description": "the case_token returned by POST /cases"}}},
    }
