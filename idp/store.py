"""The key-value store for what may expire: codes, PAR URIs, SSO sessions, replay caches, limits.

`REDIS_URL` selects a real Redis; empty selects fakeredis, an in-process implementation of the
same protocol (one process only, lost on restart) so that `make run` works anywhere.
"""

from __future__ import annotations

import json

import redis
from flask import current_app

_SHARED_FAKE = {}


def connect(url: str) -> redis.Redis:
    if url:
        return redis.Redis.from_url(url, decode_responses=True, socket_timeout=2,
                                    socket_connect_timeout=2, health_check_interval=30)
    import fakeredis

    # One server per process, so every app created in this process sees the same data.
    server = _SHARED_FAKE.setdefault("server", fakeredis.FakeServer())
    return fakeredis.FakeRedis(server=server, decode_responses=True)


def kv() -> redis.Redis:
    return current_app.extensions["kv"]


def put_json(key: str, value: dict, ttl: int, nx: bool = False) -> bool:
    return bool(kv().set(key, json.dumps(value, separators=(",", ":")), ex=max(int(ttl), 1), nx=nx))


def get_json(key: str) -> dict | None:
    raw = kv().get(key)
    return json.loads(raw) if raw else None


def take_json(key: str) -> dict | None:
    """Read and delete atomically: what a single-use value needs."""
    raw = kv().getdel(key)
    return json.loads(raw) if raw else None


def once(key: str, ttl: int, value: str = "1") -> bool:
    """True the first time a key is claimed within `ttl` (Redis SET NX): replay caches."""
    return bool(kv().set(key, value, ex=max(int(ttl), 1), nx=True))


def fixed_window(key: str, limit: int, window: int) -> int:
    """Count one attempt under `key` in a fixed window of `window` seconds; 0 while at most
    `limit` attempts were made in it, else the seconds until the window ends."""
    store = kv()
    count = store.incr(key)
    if count == 1 or store.ttl(key) < 0:  # a key left without TTL must not block for ever
        store.expire(key, window)
    if count > limit:
        return max(1, int(store.ttl(key)))
    return 0
