"""Throttling of password guessing: per account (temporary lockout) and per client IP."""

from __future__ import annotations

from flask import current_app, request

from .. import store


def _conf(name):
    return current_app.config[name]


def ip_blocked() -> bool:
    count = store.kv().get(f"fail-ip:{request.remote_addr}")
    return int(count or 0) >= _conf("LOGIN_IP_MAX_FAILURES")


def account_locked(account_id: str) -> int:
    """Seconds left on a temporary lockout, 0 when the account may try."""
    return max(0, int(store.kv().ttl(f"lock:{account_id}") or 0))


def record_failure(account_id: str | None) -> None:
    kv = store.kv()
    pipe = kv.pipeline()
    key_ip = f"fail-ip:{request.remote_addr}"
    pipe.incr(key_ip)
    pipe.expire(key_ip, _conf("LOGIN_IP_WINDOW"))
    if account_id:
        key = f"fail-acct:{account_id}"
        pipe.incr(key)
        pipe.expire(key, _conf("LOGIN_LOCKOUT_SECONDS"))
    results = pipe.execute()
    if account_id and results[2] >= _conf("LOGIN_MAX_FAILURES"):
        kv.set(f"lock:{account_id}", "1", ex=_conf("LOGIN_LOCKOUT_SECONDS"))
        kv.delete(f"fail-acct:{account_id}")


def record_success(account_id: str) -> None:
    store.kv().delete(f"fail-acct:{account_id}")
