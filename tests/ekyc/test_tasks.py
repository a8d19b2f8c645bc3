"""Background processing (ekyc/tasks.py): RQ queue and worker, scheduled register retries,
the embedded thread, and the sweeper that finds cases nobody is moving."""

from __future__ import annotations

import time

from rq import Queue
from rq.registry import ScheduledJobRegistry

from ekyc import cases, service, tasks
from ekyc.models import Case
from idp import jobs
from idp.extensions import db
from tests.ekyc.conftest import FakeReader, captured_case, reading_for, utc


def _state(app, case_id) -> Case:
    with app.app_context():
        case = db.session.get(Case, case_id)
        db.session.expunge(case)
        return case


def _ekyc_queue(app) -> Queue:
    return Queue(app.config["EKYC_QUEUE"], connection=jobs.rq_connection(app))


def test_with_redis_a_submitted_case_waits_in_the_queue_for_a_worker(ekyc_app, register_stub,
                                                                      citizens):
    app = ekyc_app(JOBS_SYNC=False, JOBS_BACKEND="rq")
    register_stub(app)
    app.extensions["ekyc.reader"] = FakeReader(reading_for(citizens[1]))
    case_id, token = captured_case(app)
    with app.app_context():
        service.submit(service.open_case(case_id, token))
    assert _state(app, case_id).state == "submitted"  # the web request did not process it
    assert _ekyc_queue(app).count == 1
    result = app.test_cli_runner().invoke(args=["ekyc", "worker", "--burst"])
    assert result.exit_code == 0, result.output
    assert _state(app, case_id).state == "approved"
    assert _ekyc_queue(app).count == 0


def test_a_register_retry_is_scheduled_in_rq(ekyc_app, register_stub, citizens):
    app = ekyc_app(JOBS_SYNC=False, JOBS_BACKEND="rq")
    stub = register_stub(app)
    stub.stop()
    app.extensions["ekyc.reader"] = FakeReader(reading_for(citizens[2]))
    case_id, token = captured_case(app)
    with app.app_context():
        service.submit(service.open_case(case_id, token))
    assert app.test_cli_runner().invoke(args=["ekyc", "worker", "--burst"]).exit_code == 0
    case = _state(app, case_id)
    assert case.state == "waiting_register"
    registry = ScheduledJobRegistry(queue=_ekyc_queue(app))
    [job_id] = registry.get_job_ids()
    scheduled_for = registry.get_scheduled_time(job_id).replace(tzinfo=None)
    assert abs((scheduled_for - case.next_attempt_at).total_seconds()) < 5
    # The register is back; the scheduler releases the job (here: by hand) and a worker runs it.
    stub.start()
    registry.remove(job_id)
    queue = _ekyc_queue(app)
    queue.enqueue_job(queue.fetch_job(job_id))
    assert app.test_cli_runner().invoke(args=["ekyc", "worker", "--burst"]).exit_code == 0
    assert _state(app, case_id).state == "approved"


def test_the_embedded_thread_processes_cases_without_redis(ekyc_app, register_stub, citizens):
    app = ekyc_app(JOBS_SYNC=False, JOBS_BACKEND="thread")
    register_stub(app)
    app.extensions["ekyc.reader"] = FakeReader(reading_for(citizens[3]))
    case_id, token = captured_case(app)
    with app.app_context():
        service.submit(service.open_case(case_id, token))
    for _ in range(400):  # poll the database like the result page does
        if _state(app, case_id).state in cases.DECIDED:
            break
        time.sleep(0.025)
    assert _state(app, case_id).state == "approved"


def _submitted_case(app, **changes) -> str:
    case_id, token = captured_case(app)
    with app.app_context():
        case = service.open_case(case_id, token)
        cases.transition(case, changes.pop("state", "submitted"))
        for name, value in changes.items():
            setattr(case, name, value)
        db.session.commit()
    return case_id


def test_the_sweeper_finds_cases_nobody_is_moving(ekyc_app):
    app = ekyc_app(JOBS_SYNC=False, JOBS_BACKEND="rq", EKYC_LEASE_SECONDS=300,
                   EKYC_SWEEP_INTERVAL=60)
    fresh = _submitted_case(app)
    lost = _submitted_case(app, submitted_at=utc(minutes=-10))  # the enqueue never happened
    dead = _submitted_case(app, lease_owner="host:1:2", lease_expires_at=utc(seconds=-5))
    alive = _submitted_case(app, lease_owner="host:1:3", lease_expires_at=utc(minutes=4))
    with app.app_context():
        for case_id, when in ((overdue := _submitted_case(app)), utc(minutes=-5)), \
                ((not_yet := _submitted_case(app)), utc(minutes=5)):
            case = db.session.get(Case, case_id)
            cases.transition(case, "processing")
            cases.transition(case, "waiting_register")
            case.next_attempt_at = when
        db.session.commit()
        assert set(tasks.stuck_cases()) == {lost, dead, overdue}
        assert fresh not in tasks.stuck_cases() and alive not in tasks.stuck_cases()
        assert not_yet not in tasks.stuck_cases()
    result = app.test_cli_runner().invoke(args=["ekyc", "requeue-stuck"])
    assert result.exit_code == 0 and "re-queued 3 cases" in result.output
    assert _ekyc_queue(app).count == 3


def test_run_due_command_processes_due_retries(ekyc_app, register_stub, citizens):
    app = ekyc_app()
    stub = register_stub(app)
    stub.stop()
    app.extensions["ekyc.reader"] = FakeReader(reading_for(citizens[4]))
    case_id, token = captured_case(app)
    with app.app_context():
        service.submit(service.open_case(case_id, token))
        case = db.session.get(Case, case_id)
        case.next_attempt_at = utc(seconds=-1)
        db.session.commit()
    stub.start()
    result = app.test_cli_runner().invoke(args=["ekyc", "run-due"])
    assert result.exit_code == 0 and "processed 1 cases" in result.output
    assert _state(app, case_id).state == "approved"
