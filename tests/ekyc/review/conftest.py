"""Fixtures of the operator console tests: staff accounts with their roles, a console session
without the OIDC round trip (the sign-in itself is tested in test_auth.py), and cases that the
real pipeline sent to review or rejected.

The console session is the Flask session key `ops` (see `ekyc.review.auth`):
{"operator_id", "account_id", "role", "username", "auth_time", "last_seen", "sid"}.
"""

from __future__ import annotations

import time

import pytest

from ekyc import service
from ekyc.models import Case
from idp.extensions import db
from idp.models import Account, AuditEvent, Operator
from tests.ekyc.conftest import FakeReader, captured_case, reading_for

STAFF = {"op1": "operator", "op2": "operator", "sup1": "supervisor", "sup2": "supervisor",
         "aud1": "auditor"}


@pytest.fixture
def staff():
    """Factory: create the STAFF accounts and roles in `app`; returns {username: operator id}."""

    def factory(app) -> dict[str, str]:
        out = {}
        with app.app_context():
            for username, role in STAFF.items():
                account = Account(kind="staff", username=username, full_name=username,
                                  level=2, status="active")
                db.session.add(account)
                db.session.flush()
                op = Operator(username=username, role=role, account_id=account.id)
                db.session.add(op)
                db.session.flush()
                out[username] = op.id
            db.session.commit()
        return out

    return factory


def sign_in(client, app, username: str) -> None:
    """Put a console session for `username` in `client`'s cookie jar."""
    with app.app_context():
        op = db.session.scalar(db.select(Operator).filter_by(username=username))
        data = {"operator_id": op.id, "account_id": op.account_id, "role": op.role,
                "username": op.username, "auth_time": int(time.time()),
                "last_seen": int(time.time()), "sid": None}
    with client.session_transaction() as sess:
        sess["ops"] = data


@pytest.fixture
def world(ekyc_app, register_stub, staff, citizens):
    """(app with the register stub running, {username: operator id}, citizens)."""
    app = ekyc_app()
    register_stub(app)
    ids = staff(app)
    return app, ids, citizens


def console_client(app, username: str):
    """A test client signed in to the console as `username`, its pages in English."""
    client = app.test_client()
    sign_in(client, app, username)
    with client.session_transaction() as sess:
        sess["lang"] = "en"
    return client


def pipeline_case(app, citizen, findings=(("printed_name_mismatch", "review"),)) -> str:
    """A case decided by the real pipeline (the register stub must be running for `app`):
    with the default finding it goes to review (`document_needs_review`); with
    (("qr_mrz_id_mismatch", "reject"),) it is rejected. Returns the case id."""
    case_id, token = captured_case(app)
    app.extensions["ekyc.reader"] = FakeReader(reading_for(citizen, findings=findings))
    with app.app_context():
        service.submit(service.open_case(case_id, token))
        db.session.remove()
    return case_id


def audit_events(app, name: str) -> list[AuditEvent]:
    """The audit entries of one event, oldest first (detached)."""
    with app.app_context():
        rows = db.session.scalars(db.select(AuditEvent).filter_by(event=name)
                                  .order_by(AuditEvent.id)).all()
        db.session.expunge_all()
        return rows


def case_state(app, case_id: str) -> str:
    with app.app_context():
        state = db.session.get(Case, case_id).state
        db.session.remove()
    return state
