"""Background jobs: with Redis they wait in the RQ queue for a worker and survive the web
process; the worker delivers them and retries failures."""

from __future__ import annotations

from tests.helpers import full_login, register_client
from tests.rp_server import RPServer


def _logout(client):
    from tests.helpers import csrf_token

    client.post("/logout/confirm", data={"csrf_token": csrf_token(client.get("/account").text)})


def test_backchannel_logout_waits_in_the_queue_until_a_worker_delivers_it(make_app):
    app = make_app(JOBS_SYNC=False, JOBS_BACKEND="rq", BACKCHANNEL_LOGOUT_RETRIES=2)
    client = app.test_client()
    with RPServer() as portal:
        portal.serve("/bc", "")
        portal.fail_next("/bc", times=1)
        rp = register_client(app, first_party=True, backchannel_logout_uri=portal.url("/bc"))
        full_login(client, rp)
        _logout(client)
        assert portal.received("/bc", "POST") == []  # queued, not sent by the web request
        result = app.test_cli_runner().invoke(args=["jobs", "worker", "--burst"])
        assert result.exit_code == 0, result.output
        # The first attempt failed; RQ scheduled a retry that a later worker run delivers.
        from rq import Queue
        from rq.registry import ScheduledJobRegistry

        from idp import jobs

        connection = jobs.rq_connection(app)
        registry = ScheduledJobRegistry(queue=Queue(jobs.QUEUE, connection=connection))
        for job_id in registry.get_job_ids():  # run the retry now instead of waiting for it
            registry.remove(job_id)
            Queue(jobs.QUEUE, connection=connection).enqueue_job(
                Queue(jobs.QUEUE, connection=connection).fetch_job(job_id))
        assert app.test_cli_runner().invoke(args=["jobs", "worker", "--burst"]).exit_code == 0
        posts = portal.received("/bc", "POST")
        assert len(posts) == 2 and b"logout_token=" in posts[-1].body
