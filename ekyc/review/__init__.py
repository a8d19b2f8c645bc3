"""The operator console (/ops): review queue, case page and decisions, assisted onboarding at a
counter, account lifecycle, dashboard and the audit log.

Operators, supervisors and auditors sign in through the IdP itself: the console is an OIDC
client of its own (`ekyc.review.auth`, client id `ops-console`, audience "staff") that asks for a
second factor with `acr_values`. Every module adds its routes to `bp`; `init_app` registers it.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("ops", __name__, url_prefix="/ops")

MODULES = ("auth", "queue", "case_page", "counter", "accounts", "dashboard", "audit_log")


def init_app(app) -> None:
    import importlib

    for name in MODULES:  # routes register on import
        importlib.import_module(f"{__name__}.{name}")
    app.register_blueprint(bp)
