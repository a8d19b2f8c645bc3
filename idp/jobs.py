"""Background jobs (back-channel logout deliveries): RQ on a real Redis, threads otherwise.

With `REDIS_URL` set, jobs go to the RQ queue `idp` and survive a web-process crash; a worker
runs them (`flask jobs worker`), retrying with back-off. With the embedded default (no Redis) a
small thread pool in the web process runs them. `JOBS_SYNC` (tests) runs them at once.
A job is a module-level function that returns True on success; it must be idempotent.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import redis
from flask import current_app
from werkzeug.utils import import_string

log = logging.getLogger(__name__)
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="idp-job")
QUEUE = "idp"


class JobFailed(RuntimeError):
    """Raised inside an RQ worker so that RQ schedules the next retry."""


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


def backend(app) -> str:
    return app.config.get("JOBS_BACKEND") or ("rq" if app.config["REDIS_URL"] else "thread")


def rq_connection(app) -> redis.Redis:
    """RQ stores pickled payloads, so it needs a connection that does not decode responses."""
    if app.config["REDIS_URL"]:
        return redis.Redis.from_url(app.config["REDIS_URL"], socket_timeout=5)
    import fakeredis

    from .store import _SHARED_FAKE

    return fakeredis.FakeRedis(server=_SHARED_FAKE.setdefault("server", fakeredis.FakeServer()))


def run_job(path: str, args: tuple) -> bool:
    """Entry point inside the RQ worker (which holds an app context)."""
    if not import_string(path)(*args):
        raise JobFailed(f"{path} reported failure")
    return True


def enqueue(func, *args) -> None:
    """Run `func(*args)` in the background with retries and exponential back-off."""
    app = current_app._get_current_object()
    attempts = app.config["BACKCHANNEL_LOGOUT_RETRIES"]
    if app.config.get("JOBS_SYNC"):  # tests: run now, deterministically
        run_with_retries(func, args, attempts, base_delay=0)
        return
    if backend(app) == "rq":
        from rq import Queue, Retry

        queue = Queue(QUEUE, connection=rq_connection(app))
        retry = Retry(max=attempts - 1, interval=[2 ** i for i in range(attempts - 1)]) \
            if attempts > 1 else None
        queue.enqueue(run_job, f"{func.__module__}:{func.__name__}", args, retry=retry,
                      job_timeout=60, result_ttl=3600, failure_ttl=7 * 24 * 3600)
        return

    def _run():
        with app.app_context():
            run_with_retries(func, args, attempts)

    _POOL.submit(_run)


def work(app, burst: bool = False) -> None:
    """Run an RQ worker for the `idp` queue inside this app's context."""
    from rq import Queue, SimpleWorker

    connection = rq_connection(app)
    with app.app_context():
        worker = SimpleWorker([Queue(QUEUE, connection=connection)], connection=connection)
        worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
