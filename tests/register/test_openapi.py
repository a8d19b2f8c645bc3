"""The OpenAPI document (register.openapi) describes every route truthfully."""

from __future__ import annotations

import re

from .conftest import BASE_URL, assertion, bearer

ADMIN_ROUTES = ("/v1/admin/faults", "/v1/admin/citizens/{national_id}/status")


def _routes(app) -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(
            m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    return routes


def test_every_route_and_method_is_documented(app, client):
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": BASE_URL}]
    documented = {path: {m for m in ops if m in ("get", "post", "put", "patch", "delete")}
                  for path, ops in doc["paths"].items()}
    assert documented == _routes(app)


def test_every_operation_has_id_security_and_responses(client):
    doc = client.get("/openapi.json").get_json()
    ids = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            ids.append(op["operationId"])
            assert "security" in op and op["responses"], (path, method)
            for param in op.get("parameters", []):
                assert param["in"] != "path" or f"{{{param['name']}}}" in path
            if path.startswith("/v1/citizens"):
                assert op["security"] == [{"clientAssertion": []}]
                assert {"401", "503"} <= set(op["responses"])
            if path.startswith("/v1/admin"):
                assert op["security"] == [{"adminToken": []}]
                assert {"401", "404"} <= set(op["responses"])
    assert len(ids) == len(set(ids))


def _resolve(doc, schema):
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_documented_verify_schemas_match_real_answers(client):
    doc = client.get("/openapi.json").get_json()
    op = doc["paths"]["/v1/citizens/verify"]["post"]
    request_schema = _resolve(doc, op["requestBody"]["content"]["application/json"]["schema"])
    assert set(request_schema["properties"]) == {"national_id", "fields", "purpose"}
    assert set(request_schema["properties"]["fields"]["properties"]) == {
        "full_name", "date_of_birth", "sex", "residence", "card_issue_date"}
    response_schema = _resolve(doc, op["responses"]["200"]["content"]["application/json"]
                               ["schema"])
    for body in ({"national_id": "001199000001", "fields": {"sex": "F"}},
                 {"national_id": "001199999999"}):
        answer = client.post("/v1/citizens/verify", json=body, headers=bearer()).get_json()
        assert set(answer) == set(response_schema["required"]) == \
            set(response_schema["properties"])
    error = client.post("/v1/citizens/verify", json={}).get_json()
    assert set(error) == set(doc["components"]["schemas"]["Error"]["required"])


def test_documented_status_codes_cover_what_the_server_answers(client):
    doc = client.get("/openapi.json").get_json()
    verify = doc["paths"]["/v1/citizens/verify"]["post"]["responses"]
    for body, headers in (({"national_id": "1"}, bearer()), ({}, {}),
                          ({"national_id": "001199000001"}, bearer(assertion()))):
        code = client.post("/v1/citizens/verify", json=body, headers=headers).status_code
        assert str(code) in verify
    faults = doc["paths"]["/v1/admin/faults"]["post"]["responses"]
    assert str(client.post("/v1/admin/faults", json={}).status_code) in faults


def test_unknown_routes_and_methods_answer_json(client):
    resp = client.get("/v1/nothing-here")
    assert resp.status_code == 404 and resp.get_json()["error"] == "not_found"
    resp = client.get("/v1/citizens/verify")
    assert resp.status_code == 405 and "POST" in resp.headers["Allow"]
    assert resp.get_json()["error"] == "method_not_allowed"


def test_oversized_body_is_413(client):
    resp = client.post("/v1/citizens/verify", data="x" * (70 * 1024),
                       headers={**bearer(), "Content-Type": "application/json"})
    assert resp.status_code == 413 and resp.get_json()["error"] == "request_too_large"
