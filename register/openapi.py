"""The OpenAPI 3.1 description of the register API, served at `/openapi.json`.

Kept next to the routes it describes (register.api) and checked by a test that every Flask
route of the app appears here with its methods, so the document cannot silently drift; it is
precise enough for schemathesis (request schemas reject what the server rejects).
"""

from __future__ import annotations

import copy

from register.matching import MAX_TEXT

_ID = {"type": "string", "pattern": "^[0-9]{12}$", "examples": ["001199000001"]}
_DATE = {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
_TEXT = {"type": "string", "maxLength": MAX_TEXT}
_STATUS = {"type": "string", "enum": ["alive", "deceased", "card_revoked"]}
_JSON_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _error(description: str) -> dict:
    return {"description": description, "content": _JSON_ERROR}


_UNAUTHORIZED = _error("Client assertion missing or invalid (which check failed is in "
                       "error_description); header WWW-Authenticate.")
_UNAVAILABLE = _error("Simulated outage or error (fault injection), or the IdP's keys cannot "
                      "be fetched; retry after Retry-After seconds.")
_BAD_REQUEST = _error("The request is malformed (error invalid_request) or its purpose differs "
                      "from the client assertion's (error purpose_mismatch).")
_TOO_LARGE = _error("Request body larger than MAX_CONTENT_LENGTH.")
_ADMIN_404 = _error("The admin API is disabled (REGISTER_ADMIN_TOKEN unset), or no citizen "
                    "has this number.")
_ADMIN_401 = _error("The admin token is missing or wrong.")

_DOC = {
    "openapi": "3.1.0",
    "info": {
        "title": "DinhDanh population register stub",
        "version": "1.0.0",
        "description": (
            "Synthetic population register used by the DinhDanh IdP for eKYC. Every citizen "
            "call needs `Authorization: Bearer <JWT>`: a client assertion signed by the IdP "
            "(RS256/ES256, `kid` in the header) with `iss` = the IdP issuer, `sub` = the IdP's "
            "client id, `aud` = this register's base URL, `exp - iat <= 300`, a single-use "
            "`jti` and a `purpose` claim, which is written to the access log. Status changes "
            "are pushed to the IdP as Security Event Tokens (RFC 8417) signed with the keys at "
            "`/jwks.json`. Faults (latency, error rate, outage) apply to the citizen routes "
            "and `/healthz`."),
    },
    "paths": {
        "/v1/citizens/verify": {"post": {
            "operationId": "verifyCitizen",
            "summary": "Compare presented identity data with the register, field by field",
            "description": "Answers only match/mismatch for the fields asked, the status and "
                           "whether a portrait exists; never a stored value.",
            "security": [{"clientAssertion": []}],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/VerifyRequest"}}}},
            "responses": {
                "200": {"description": "Lookup done (found or not)", "content": {
                    "application/json": {"schema": {
                        "$ref": "#/components/schemas/VerifyResponse"}}}},
                "400": _BAD_REQUEST, "401": _UNAUTHORIZED, "413": _TOO_LARGE,
                "503": _UNAVAILABLE,
            },
        }},
        "/v1/citizens/{national_id}/portrait": {"get": {
            "operationId": "getPortrait",
            "summary": "The register portrait (JPEG, about 240x320)",
            "security": [{"clientAssertion": []}],
            "parameters": [
                {"name": "national_id", "in": "path", "required": True, "schema": _ID},
                {"name": "purpose", "in": "query", "required": False,
                 "description": "When given, must equal the assertion's purpose claim.",
                 "schema": {"type": "string", "maxLength": 200}},
            ],
            "responses": {
                "200": {"description": "The portrait", "content": {
                    "image/jpeg": {"schema": {"type": "string",
                                              "contentMediaType": "image/jpeg"}}}},
                "400": _BAD_REQUEST, "401": _UNAUTHORIZED,
                "404": _error("No citizen has this number, or the citizen has no portrait."),
                "503": _UNAVAILABLE,
            },
        }},
        "/healthz": {"get": {
            "operationId": "health",
            "summary": "Liveness and database check (subject to fault injection)",
            "security": [],
            "responses": {
                "200": {"description": "Healthy", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["status"],
                    "properties": {"status": {"const": "ok"}}}}}},
                "503": _UNAVAILABLE,
            },
        }},
        "/jwks.json": {"get": {
            "operationId": "jwks",
            "summary": "Public keys that sign the status notifications (RFC 7517)",
            "security": [],
            "responses": {"200": {"description": "JWK Set", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/JWKS"}}}}},
        }},
        "/openapi.json": {"get": {
            "operationId": "openapi",
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1 document", "content": {
                "application/json": {"schema": {"type": "object",
                                                "required": ["openapi", "paths"]}}}}},
        }},
        "/v1/admin/faults": {
            "get": {
                "operationId": "getFaults",
                "summary": "Faults in force",
                "security": [{"adminToken": []}],
                "responses": {
                    "200": {"description": "Faults", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Faults"}}}},
                    "401": _ADMIN_401, "404": _ADMIN_404,
                },
            },
            "post": {
                "operationId": "setFaults",
                "summary": "Change faults at runtime (every worker), or reset to the settings",
                "security": [{"adminToken": []}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/FaultsChange"}}}},
                "responses": {
                    "200": {"description": "Faults now in force", "content": {
                        "application/json": {"schema": {
                            "$ref": "#/components/schemas/Faults"}}}},
                    "400": _BAD_REQUEST, "401": _ADMIN_401, "404": _ADMIN_404,
                    "413": _TOO_LARGE,
                },
            },
        },
        "/v1/admin/citizens/{national_id}/status": {"post": {
            "operationId": "setStatus",
            "summary": "Change a citizen's status and notify the IdP (signed SET via outbox)",
            "security": [{"adminToken": []}],
            "parameters": [{"name": "national_id", "in": "path", "required": True,
                            "schema": _ID}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["status"], "additionalProperties": False,
                "properties": {"status": _STATUS}}}}},
            "responses": {
                "200": {"description": "Status set; notification_jti is null when unchanged",
                        "content": {"application/json": {"schema": {
                            "type": "object",
                            "required": ["national_id", "status", "changed",
                                         "notification_jti"],
                            "properties": {
                                "national_id": _ID, "status": _STATUS,
                                "changed": {"type": "boolean"},
                                "notification_jti": {"type": ["string", "null"]}}}}}},
                "400": _BAD_REQUEST, "401": _ADMIN_401, "404": _ADMIN_404, "413": _TOO_LARGE,
            },
        }},
    },
    "components": {
        "securitySchemes": {
            "clientAssertion": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                "description": "IdP-signed JWT client assertion (RFC 7523)."},
            "adminToken": {"type": "http", "scheme": "bearer",
                           "description": "REGISTER_ADMIN_TOKEN."},
        },
        "schemas": {
            "Error": {"type": "object", "required": ["error", "error_description"],
                      "properties": {"error": {"type": "string"},
                                     "error_description": {"type": "string"}}},
            "VerifyRequest": {
                "type": "object", "required": ["national_id"], "additionalProperties": False,
                "properties": {
                    "national_id": _ID,
                    "purpose": {"type": "string", "maxLength": 200,
                                "description": "When given, must equal the assertion's "
                                               "purpose claim."},
                    "fields": {"type": "object", "additionalProperties": False,
                               "properties": {"full_name": _TEXT, "date_of_birth": _DATE,
                                              "sex": {"type": "string", "enum": ["M", "F"]},
                                              "residence": _TEXT, "card_issue_date": _DATE}},
                },
            },
            "VerifyResponse": {
                "type": "object", "additionalProperties": False,
                "required": ["found", "status", "fields", "has_portrait", "checked_at"],
                "properties": {
                    "found": {"type": "boolean"},
                    "status": {"oneOf": [_STATUS, {"type": "null"}]},
                    "fields": {"type": "object", "additionalProperties": {
                        "type": "string", "enum": ["match", "mismatch"]}},
                    "has_portrait": {"type": "boolean"},
                    "checked_at": {"type": "string", "format": "date-time"},
                },
            },
            "Faults": {
                "type": "object", "required": ["latency_ms", "error_rate", "outage"],
                "properties": {"latency_ms": {"type": "integer", "minimum": 0},
                               "error_rate": {"type": "number", "minimum": 0, "maximum": 1},
                               "outage": {"type": "boolean"}}},
            "FaultsChange": {"oneOf": [
                {"type": "object", "additionalProperties": False, "minProperties": 1,
                 "properties": {
                     "latency_ms": {"type": "integer", "minimum": 0, "maximum": 60000},
                     "error_rate": {"type": "number", "minimum": 0, "maximum": 1},
                     "outage": {"type": "boolean"}}},
                {"type": "object", "additionalProperties": False, "required": ["reset"],
                 "properties": {"reset": {"const": True}}},
            ]},
            "JWKS": {"type": "object", "required": ["keys"], "properties": {
                "keys": {"type": "array", "items": {"type": "object", "required": ["kty"]}}}},
        },
    },
}


def document(base_url: str) -> dict:
    """The OpenAPI document with this deployment's server URL."""
    doc = copy.deepcopy(_DOC)
    doc["servers"] = [{"url": base_url}]
    return doc
