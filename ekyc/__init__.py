"""eKYC onboarding: documents, cases, the decision pipeline, citizen views.

`init_app(app)` attaches the package to the IdP: its tables, the biometric checks
(`ekyc.biometrics`), the register-events endpoint, the
citizen pages (`ekyc.views.bp`, /onboarding) and the JSON API (`ekyc.api.bp`,
/api/onboarding/v1, CSRF-exempt: bearer case token), the `ekyc/templates` folder, the
`flask ekyc ...` commands, and in the embedded setup (no Redis) the sweeper thread that resumes
stuck cases.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from jinja2 import ChoiceLoader, FileSystemLoader

TEMPLATES = Path(__file__).resolve().parent / "templates"


def init_app(app) -> None:
    """Attach eKYC to the IdP application."""
    from idp import jobs
    from idp.extensions import csrf

    from . import (
        biometrics,
        models,  # noqa: F401  (tables join the metadata)
    )
    from .api import bp as api_bp
    from .register_events import bp as events_bp
    from .views import bp as views_bp

    biometrics.install(app)  # face match, liveness, duplicate face search (policy slots)
    app.register_blueprint(views_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(events_bp)
    from . import review

    review.init_app(app)  # the operator console, /ops
    csrf.exempt(api_bp)  # bearer case token, no cookies
    csrf.exempt(events_bp)  # signed SET body from the register
    app.jinja_loader = ChoiceLoader([app.jinja_loader, FileSystemLoader(str(TEMPLATES))])
    app.cli.add_command(ekyc_group)
    if jobs.backend(app) == "thread" and not app.config.get("JOBS_SYNC") and not app.testing:
        _start_sweeper_on_first_request(app)


def _start_sweeper_on_first_request(app) -> None:
    """Embedded mode: the web process resumes stuck cases itself (not for CLI commands)."""
    started = []

    @app.before_request
    def _sweeper():
        if not started:
            from .tasks import start_sweeper

            started.append(True)
            start_sweeper(app)


@click.group("ekyc", cls=AppGroup)
def ekyc_group():
    """eKYC onboarding: worker, sweeper, media retention."""


@ekyc_group.command("worker")
@click.option("--burst", is_flag=True, help="stop when the queues are empty")
def worker_command(burst):
    """Run an RQ worker (with scheduler) for eKYC cases and the IdP's jobs (needs REDIS_URL)."""
    from .face.index import default_index
    from .tasks import work

    # Load the 1:N face index before the first case (at 1,000,000 templates decrypting them
    # takes ~30 s) and the face models (~1.5 s).
    default_index().refresh()
    from .face.frames import models

    models()
    work(current_app._get_current_object(), burst=burst)


@ekyc_group.command("requeue-stuck")
def requeue_command():
    """Queue again the cases whose worker died, that were never picked up, or whose retry is
    overdue."""
    from .tasks import requeue_stuck

    found = requeue_stuck()
    click.echo(f"re-queued {len(found)} cases")


@ekyc_group.command("run-due")
def run_due_command():
    """Process now, in this process, the cases whose register retry is due."""
    from .tasks import run_due

    click.echo(f"processed {run_due()} cases")


@ekyc_group.command("purge-media")
def purge_command():
    """Delete document and face images whose retention period is over."""
    from .media import purge_expired

    click.echo(f"deleted {purge_expired()} media objects")
