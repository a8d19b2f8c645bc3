"""Fault injection for resilience tests: latency, error rate, outage.

Start values come from REGISTER_LATENCY_MS, REGISTER_ERROR_RATE and REGISTER_OUTAGE; the admin
API (`POST /v1/admin/faults`) overrides them at runtime by writing one database row, so every
worker process sees the change on its next call. Faults apply to the citizen API and `/healthz`
(what the IdP uses), never to `/jwks.json`, `/openapi.json` or the admin API (so a test can
always switch an outage off again). Latency is a lower bound added before anything else.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass

from flask import current_app

from register.errors import Unavailable
from register.models import FaultState, db, utcnow

_rng = random.SystemRandom()


@dataclass(frozen=True)
class Faults:
    latency_ms: int
    error_rate: float
    outage: bool

    def to_dict(self) -> dict:
        return asdict(self)


def current() -> Faults:
    """The faults in force: the admin row when there is one, otherwise the settings."""
    row = db.session.get(FaultState, 1)
    if row is not None:
        return Faults(row.latency_ms, row.error_rate, row.outage)
    conf = current_app.config
    return Faults(conf["REGISTER_LATENCY_MS"], conf["REGISTER_ERROR_RATE"],
                  conf["REGISTER_OUTAGE"])


def update(changes: dict) -> Faults:
    """Apply a validated partial change (`latency_ms`, `error_rate`, `outage`), or a reset
    to the settings' values when `changes` is {"reset": True}."""
    if changes.get("reset"):
        row = db.session.get(FaultState, 1)
        if row is not None:
            db.session.delete(row)
            db.session.commit()
        return current()
    now = current()
    merged = {**now.to_dict(), **changes}
    row = db.session.get(FaultState, 1) or FaultState(id=1)
    row.latency_ms = merged["latency_ms"]
    row.error_rate = merged["error_rate"]
    row.outage = merged["outage"]
    row.updated_at = utcnow()
    db.session.add(row)
    db.session.commit()
    current_app.logger.warning("faults changed: %s", merged)
    return current()


def apply() -> None:
    """Sleep for the latency, then refuse the call on outage or by the error rate (503)."""
    faults = current()
    db.session.rollback()  # end the read transaction before sleeping (no lock held meanwhile)
    if faults.latency_ms > 0:
        time.sleep(faults.latency_ms / 1000)
    if faults.outage:
        raise Unavailable("the register is down (simulated outage)", 5)
    if faults.error_rate > 0 and _rng.random() < faults.error_rate:
        raise Unavailable("the register failed (simulated error)", 1)
