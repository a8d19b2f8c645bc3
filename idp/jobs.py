"""Background jobs of the IdP web process (back-channel logout deliveries).

They run on a small thread pool inside the web process: a job lost in a crash is a logout
notification not delivered, which the portal's own session timeout bounds. Jobs must be
idempotent; `run_with_retries` retries with exponential back-off. `JOBS_SYNC` (tests) runs
them at once, without waiting between attempts.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from flask import current_app

log = logging.getLogger(__name__)
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="idp-job")


def run_with_retries(func, args: tuple, attempts: int, base_delay: float = 0.5) -> bool:
    for attempt in range(1, attempts + 1):
        try:
            if func(*args):
                return True
        except Exception:  # a job must never kill its worker; the failure is logged
            log.exception("job %s failed (attempt %d)", func.__name__, attempt)
        if attempt < attempts:
            time.sleep(base_delay * 2 ** (attempt - 1))
    return False


def enqueue(func, *args) -> None:
    """Run `func(*args)` (which returns True on success) in the background with retries."""
    app = current_app._get_current_object()
    attempts = app.config["BACKCHANNEL_LOGOUT_RETRIES"]
    if app.config.get("JOBS_SYNC"):  # tests: run now, deterministically
        run_with_retries(func, args, attempts, base_delay=0)
        return

    def _run():
        with app.app_context():
            run_with_retries(func, args, attempts)

    _POOL.submit(_run)
