"""The cheapest possible WSGI endpoint: a constant JSON answer, no framework at all."""

import json

BODY = json.dumps({"access_token": "x" * 43, "token_type": "Bearer", "expires_in": 600}).encode()
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", HEADERS)
    return [BODY]
