"""The cheapest possible Flask endpoint: no database, no Redis, no extensions, no hooks."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.post("/token")
def token():
    return jsonify(access_token="x" * 43, token_type="Bearer", expires_in=600)
