"""HTTP API of the register stub: citizen verification, portraits, health, keys, admin.

Citizen routes (`/v1/citizens/...`) run, in order: fault injection -> client assertion
(register.auth) -> request validation -> lookup -> one access-log row (caller, purpose, keyed
hash of the ID number, outcome). Refused assertions are logged too, without caller or purpose.
The raw ID number never reaches the application log. The admin routes need
`Authorization: Bearer <REGISTER_ADMIN_TOKEN>` and do not exist (404) when it is unset.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import text

from register import auth, faults, keys, notify, openapi
from register.errors import ApiError, BadRequest, Unauthorized, Unavailable
from register.matching import compare, parse_fields
from register.models import AccessLog, CitizenRecord, db

bp = Blueprint("register", __name__)

NATIONAL_ID = re.compile(r"[0-9]{12}")
VERIFY_KEYS = {"national_id", "fields", "purpose"}
MAX_PURPOSE = 200


def national_id_hash(national_id: str) -> str:
    """HMAC-SHA256 of the number under REGISTER_LOG_HASH_KEY: joinable, not reversible."""
    key = current_app.config["REGISTER_LOG_HASH_KEY"].encode()
    return hmac.new(key, national_id.encode(), hashlib.sha256).hexdigest()


def _log(endpoint: str, outcome: str, national_id: str | None) -> None:
    caller = g.get("caller")
    db.session.rollback()  # never commit half of a failed request with the log row
    db.session.add(AccessLog(
        caller=caller.client_id if caller else None,
        purpose=caller.purpose if caller else None,
        endpoint=endpoint,
        national_id_hash=national_id_hash(national_id) if national_id else None,
        outcome=outcome,
        jti=caller.jti[:200] if caller else None,
    ))
    db.session.commit()


def citizen_api(endpoint: str):
    """Faults, then authentication, then the view; one access-log row whatever happens.

    The view returns (response, outcome) and sets `g.national_id` once it has a valid one."""

    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            faults.apply()
            try:
                g.caller = auth.authenticate()
                response, outcome = view(*args, **kwargs)
            except Unauthorized as exc:
                _log(endpoint, "denied", None)
                current_app.logger.info("register %s denied: %s", endpoint, exc.description)
                raise
            except Unavailable:
                raise
            except ApiError as exc:
                _log(endpoint, exc.code, g.get("national_id"))
                raise
            _log(endpoint, outcome, g.national_id)
            return response

        return inner

    return wrap


def _valid_id(value) -> bool:
    return isinstance(value, str) and NATIONAL_ID.fullmatch(value) is not None


def _check_purpose(value) -> None:
    """A purpose in the request, when given, must be the one the assertion was signed for."""
    if not isinstance(value, str) or len(value) > MAX_PURPOSE:
        raise BadRequest("purpose must be a string")
    if not hmac.compare_digest(value.strip().encode(), g.caller.purpose.encode()):
        raise BadRequest("purpose differs from the client assertion's purpose",
                         "purpose_mismatch")


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@bp.post("/v1/citizens/verify")
@citizen_api("verify")
def verify():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    extra = sorted(set(body) - VERIFY_KEYS)
    if extra:
        raise BadRequest(f"unknown member(s): {', '.join(extra)[:200]}")
    national_id = body.get("national_id")
    if not _valid_id(national_id):
        raise BadRequest("national_id must be 12 digits")
    g.national_id = national_id
    if "purpose" in body:
        _check_purpose(body["purpose"])
    presented = parse_fields(body.get("fields", {}))
    row = db.session.execute(
        db.select(CitizenRecord, CitizenRecord.portrait.is_not(None))
        .where(CitizenRecord.national_id == national_id)).first()
    if row is None:
        answer = {"found": False, "status": None, "fields": {}, "has_portrait": False,
                  "checked_at": _now_iso()}
        return jsonify(answer), "not_found"
    record, has_portrait = row
    answer = {"found": True, "status": record.status, "fields": compare(record, presented),
              "has_portrait": bool(has_portrait), "checked_at": _now_iso()}
    return jsonify(answer), "found"


@bp.get("/v1/citizens/<national_id>/portrait")
@citizen_api("portrait")
def portrait(national_id: str):
    if not _valid_id(national_id):
        raise BadRequest("national_id must be 12 digits")
    g.national_id = national_id
    if "purpose" in request.args:
        _check_purpose(request.args["purpose"])
    data = db.session.scalar(db.select(CitizenRecord.portrait)
                             .where(CitizenRecord.national_id == national_id))
    if data is None:
        exists = db.session.get(CitizenRecord, national_id) is not None
        raise ApiError(404, "not_found", "this citizen has no portrait" if exists
                       else "no citizen has this number")
    response = Response(data, mimetype="image/jpeg")
    response.headers["Cache-Control"] = "no-store"
    return response, "portrait"


@bp.get("/healthz")
def healthz():
    faults.apply()
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any database failure means "not healthy"
        raise Unavailable("the register database is unavailable", 5) from exc
    return jsonify(status="ok")


@bp.get("/jwks.json")
def jwks():
    response = jsonify(keys.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/openapi.json")
def openapi_document():
    return jsonify(openapi.document(current_app.config["REGISTER_BASE_URL"]))


# --- admin --------------------------------------------------------------------------------
def _admin() -> None:
    token = current_app.config["REGISTER_ADMIN_TOKEN"]
    if not token:
        raise ApiError(404, "not_found", "the admin API is disabled")
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(),
                                                             token.encode()):
        raise Unauthorized("the admin token is missing or wrong", "invalid_token")


def _parse_faults(body) -> dict:
    if not isinstance(body, dict) or not body:
        raise BadRequest("the body must be a non-empty JSON object")
    allowed = {"latency_ms", "error_rate", "outage", "reset"}
    extra = sorted(set(body) - allowed)
    if extra:
        raise BadRequest(f"unknown member(s): {', '.join(extra)[:200]}")
    if "reset" in body:
        if body["reset"] is not True or len(body) != 1:
            raise BadRequest("reset must be true and alone")
        return {"reset": True}
    out = {}
    if "latency_ms" in body:
        value = body["latency_ms"]
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON Schema: 5.0 is an integer
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 60_000:
            raise BadRequest("latency_ms must be an integer from 0 to 60000")
        out["latency_ms"] = value
    if "error_rate" in body:
        value = body["error_rate"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not 0 <= value <= 1:
            raise BadRequest("error_rate must be a number from 0 to 1")
        out["error_rate"] = float(value)
    if "outage" in body:
        if not isinstance(body["outage"], bool):
            raise BadRequest("outage must be a boolean")
        out["outage"] = body["outage"]
    return out


@bp.get("/v1/admin/faults")
def get_faults():
    _admin()
    return jsonify(faults.current().to_dict())


@bp.post("/v1/admin/faults")
def set_faults():
    _admin()
    return jsonify(faults.update(_parse_faults(request.get_json(silent=True))).to_dict())


@bp.post("/v1/admin/citizens/<national_id>/status")
def set_status(national_id: str):
    _admin()
    if not _valid_id(national_id):
        raise BadRequest("national_id must be 12 digits")
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or set(body) != {"status"} or \
            body["status"] not in notify.STATUSES:
        raise BadRequest(f"the body must be {{\"status\": one of {', '.join(notify.STATUSES)}}}")
    result = notify.change_status(national_id, body["status"])
    if result is None:
        raise ApiError(404, "not_found", "no citizen has this number")
    record, jti = result
    db.session.add(AccessLog(caller="admin", purpose="status change", endpoint="admin_status",
                             national_id_hash=national_id_hash(national_id),
                             outcome=f"status:{record.status}"))
    db.session.commit()
    return jsonify(national_id=national_id, status=record.status, changed=jti is not None,
                   notification_jti=jti)
