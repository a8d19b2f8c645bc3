"""Running the case pipeline in the background: RQ on Redis, a thread when embedded, inline in
tests; retries of cases waiting for the register; the sweeper that resumes stuck cases.

Backends follow `idp.jobs` (JOBS_BACKEND / REDIS_URL / JOBS_SYNC):
- rq: jobs go to the EKYC_QUEUE queue; `flask ekyc worker` (an RQ worker with the scheduler,
  on this queue and the IdP's) runs them; retries are `enqueue_in` jobs the scheduler releases;
- thread: a small pool in the web process (the embedded default), retries on timers;
- JOBS_SYNC (tests): `submit` processes the case before it returns; retries wait until the
  test calls `run_due()`.
Whatever happens to a queue, timer or process, the database is the truth: `requeue_stuck()`
finds cases whose worker died (lease expired), submissions never picked up and retries that
are due, and queues them again. Workers run it when they start and every EKYC_SWEEP_INTERVAL.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import redis
from flask import current_app

from idp import jobs
from idp.extensions import db

from . import cases, pipeline
from .models import Case, utcnow

log = logging.getLogger(__name__)
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ekyc-case")
_SWEEPERS: dict = {}
_SWEEPERS_LOCK = threading.Lock()


def process_case(case_id: str) -> bool:
    """Process one case now (idempotent, resumable); True if this call worked on it."""
    return pipeline.process(case_id)


def run_job(case_id: str) -> bool:
    """RQ entry point: one app context (and database session) per job."""
    with current_app.app_context():
        return process_case(case_id)


def _in_context(app, func, *args) -> None:
    with app.app_context():
        try:
            func(*args)
        except Exception:  # a crashed run leaves its lease to expire; the sweeper resumes it
            log.exception("eKYC case processing failed; the sweeper will resume the case")


def enqueue(case_id: str) -> None:
    """Queue the case for processing with the configured backend."""
    app = current_app._get_current_object()
    if app.config.get("JOBS_SYNC"):
        try:
            process_case(case_id)
        except Exception:
            db.session.rollback()
            log.exception("eKYC case processing failed; the sweeper will resume the case")
        return
    if jobs.backend(app) == "rq":
        try:
            _queue(app).enqueue(run_job, case_id, job_timeout=600, result_ttl=3600,
                                failure_ttl=7 * 24 * 3600)
        except redis.exceptions.RedisError:
            # The case is safely `submitted` in the database; the sweeper queues it later.
            log.warning("eKYC queue unavailable; the sweeper will queue the case")
        return
    _POOL.submit(_in_context, app, process_case, case_id)


def _queue(app):
    from rq import Queue

    return Queue(app.config["EKYC_QUEUE"], connection=jobs.rq_connection(app))


def schedule_retry(case_id: str, delay: float) -> None:
    """Process the case again in `delay` seconds (a case waiting for the register)."""
    app = current_app._get_current_object()
    if app.config.get("JOBS_SYNC"):
        return  # tests call run_due() when they decide time has passed
    if jobs.backend(app) == "rq":
        _queue(app).enqueue_in(dt.timedelta(seconds=delay), run_job, case_id, job_timeout=600,
                               result_ttl=3600, failure_ttl=7 * 24 * 3600)
        return
    timer = threading.Timer(delay, lambda: _POOL.submit(_in_context, app, process_case, case_id))
    timer.daemon = True
    timer.start()


def due_for_retry(now: dt.datetime | None = None) -> list[str]:
    now = now or utcnow()
    return list(db.session.scalars(
        db.select(Case.id).where(Case.state == cases.WAITING_REGISTER,
                                 Case.next_attempt_at <= now).order_by(Case.next_attempt_at)))


def run_due(now: dt.datetime | None = None) -> int:
    """Process, here and now, every waiting case whose retry time has come; returns how many."""
    done = 0
    for case_id in due_for_retry(now):
        done += bool(process_case(case_id))
    return done


def stuck_cases(now: dt.datetime | None = None) -> list[str]:
    """Cases that should be moving but nobody is moving: what the sweeper re-queues."""
    now = now or utcnow()
    conf = current_app.config
    grace = dt.timedelta(seconds=max(conf["EKYC_SWEEP_INTERVAL"], 1))
    lease = dt.timedelta(seconds=conf["EKYC_LEASE_SECONDS"])
    dead_worker = db.and_(Case.state.in_(cases.IN_FLIGHT), Case.lease_owner.is_not(None),
                          Case.lease_expires_at < now)
    never_picked = db.and_(Case.state == cases.SUBMITTED, Case.lease_owner.is_(None),
                           Case.submitted_at < now - lease)
    retry_lost = db.and_(Case.state == cases.WAITING_REGISTER, Case.lease_owner.is_(None),
                         Case.next_attempt_at < now - grace)
    return list(db.session.scalars(db.select(Case.id).where(
        db.or_(dead_worker, never_picked, retry_lost)).order_by(Case.updated_at)))


def requeue_stuck(now: dt.datetime | None = None) -> list[str]:
    """Queue every stuck case again (a duplicate queue entry is harmless: leases)."""
    found = stuck_cases(now)
    for case_id in found:
        enqueue(case_id)
    if found:
        log.warning("re-queued %d stuck eKYC cases", len(found))
    return found


def start_sweeper(app) -> None:
    """Run `requeue_stuck` (and the media purge, hourly) in a daemon thread of this process."""
    with _SWEEPERS_LOCK:
        if _SWEEPERS.get(id(app)):
            return
        stop = threading.Event()
        _SWEEPERS[id(app)] = stop

    def loop():
        from . import media

        ticks = 0
        interval = max(app.config["EKYC_SWEEP_INTERVAL"], 1)
        while not stop.wait(interval if ticks else 0):
            with app.app_context():
                try:
                    requeue_stuck()
                    if ticks % max(3600 // interval, 1) == 0:
                        media.purge_expired()
                except Exception:  # the sweeper must outlive a database hiccup
                    log.exception("eKYC sweeper run failed")
                finally:
                    db.session.remove()
            ticks += 1

    threading.Thread(target=loop, name="ekyc-sweeper", daemon=True).start()


def stop_sweeper(app) -> None:
    with _SWEEPERS_LOCK:
        stop = _SWEEPERS.pop(id(app), None)
    if stop is not None:
        stop.set()


def work(app, burst: bool = False) -> None:
    """`flask ekyc worker`: an RQ worker (with scheduler) on the eKYC and IdP queues; the
    sweeper runs first, then every EKYC_SWEEP_INTERVAL while the worker lives."""
    from rq import Queue, SimpleWorker

    connection = jobs.rq_connection(app)
    with app.app_context():
        requeue_stuck()
        db.session.remove()
    if not burst:
        start_sweeper(app)
    try:
        with app.app_context():
            queues = [Queue(app.config["EKYC_QUEUE"], connection=connection),
                      Queue(jobs.QUEUE, connection=connection)]
            # maintenance every minute: among others it restarts the scheduler, which dies
            # when Redis restarts (RQ's default is every 10 minutes)
            worker = SimpleWorker(queues, connection=connection, maintenance_interval=60)
            worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
    finally:
        stop_sweeper(app)
