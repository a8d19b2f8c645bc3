"""Command line of the register stub: `uv run python -m register <command>`.

- `seed [--count N] [--seed S]`: create the tables and the synthetic citizens (idempotent).
- `set-status NATIONAL_ID alive|deceased|card_revoked`: change a status and queue the signed
  notification to the IdP (delivered by the app's outbox thread or by `deliver`).
- `deliver`: try every due notification once and print what happened.
Settings come from the environment (register.settings), like the app.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time

from register.notify import STATUSES


@contextlib.contextmanager
def _app_context():
    """An app (no outbox thread) and its context; connections closed afterwards."""
    from register.app import create_app
    from register.models import db

    app = create_app({"REGISTER_OUTBOX_THREAD": False})
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def cmd_seed(args) -> int:
    from register.seeding import seed_database

    with _app_context() as app:
        count = app.config["REGISTER_SEED_COUNT"] if args.count is None else args.count
        seed = app.config["REGISTER_SEED"] if args.seed is None else args.seed
        started = time.monotonic()
        stats = seed_database(count, seed)
    stats["seconds"] = round(time.monotonic() - started, 2)
    print(json.dumps(stats))
    return 0


def cmd_set_status(args) -> int:
    from register.notify import change_status

    with _app_context():
        result = change_status(args.national_id, args.status)
    if result is None:
        print("no citizen has this number", file=sys.stderr)
        return 1
    record, jti = result
    print(json.dumps({"status": record.status, "changed": jti is not None,
                      "notification_jti": jti}))
    return 0


def cmd_deliver(_args) -> int:
    from register.notify import deliver_due

    with _app_context():
        print(json.dumps(deliver_due()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m register",
                                     description="DinhDanh population-register stub")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("seed", help="create the synthetic citizens (idempotent)")
    p.add_argument("--count", type=int, default=None, help="citizens (REGISTER_SEED_COUNT)")
    p.add_argument("--seed", type=int, default=None, help="random seed (REGISTER_SEED)")
    p.set_defaults(func=cmd_seed)
    p = sub.add_parser("set-status", help="change a citizen's status and notify the IdP")
    p.add_argument("national_id")
    p.add_argument("status", choices=STATUSES)
    p.set_defaults(func=cmd_set_status)
    p = sub.add_parser("deliver", help="try every due notification once")
    p.set_defaults(func=cmd_deliver)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
