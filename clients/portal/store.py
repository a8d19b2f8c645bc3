"""Server-side portal sessions, keyed by a random cookie value (only its hash is stored).

A session is a JSON object: the signed-in citizen (`user`: sub, sid, id_token, claims), the
sign-ins started from this browser (`pending`, by state), the language and the CSRF token.
`end_sid` ends every session of one IdP session (back-channel logout); `once` makes a value
single-use (logout token jti). Two implementations of one interface: SQLite (stdlib sqlite3, a
file in the instance folder) and Redis (REDIS_URL), chosen when the app starts.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from typing import Protocol


def key_hash(cookie_value: str) -> str:
    """A leaked store does not hand out cookies: rows are found by the value's hash."""
    return hashlib.sha256(cookie_value.encode()).hexdigest()


class SessionStore(Protocol):
    def load(self, key: str) -> dict | None: ...
    def save(self, key: str, data: dict, ttl: int) -> None: ...
    def delete(self, key: str) -> None: ...
    def end_sid(self, sid: str, sub: str | None = None) -> int: ...
    def end_sub(self, sub: str) -> int: ...
    def once(self, name: str, ttl: int) -> bool: ...
    def close(self) -> None: ...


def _user(data: dict) -> dict:
    return data.get("user") or {}


class SqliteStore:
    """One file per portal; safe for gunicorn threads and workers (WAL, short transactions)."""

    def __init__(self, path: str):
        self._path = path
        self._local = threading.local()
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS sessions (key TEXT PRIMARY KEY, sid TEXT, "
                       "sub TEXT, data TEXT NOT NULL, expires REAL NOT NULL)")
            db.execute("CREATE INDEX IF NOT EXISTS sessions_sid ON sessions (sid)")
            db.execute("CREATE INDEX IF NOT EXISTS sessions_sub ON sessions (sub)")
            db.execute("CREATE TABLE IF NOT EXISTS once (name TEXT PRIMARY KEY, "
                       "expires REAL NOT NULL)")

    def _db(self) -> _Transaction:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return _Transaction(conn)

    def load(self, key):
        with self._db() as db:
            row = db.execute("SELECT data FROM sessions WHERE key = ? AND expires > ?",
                             (key, time.time())).fetchone()
        return json.loads(row[0]) if row else None

    def save(self, key, data, ttl):
        user = _user(data)
        with self._db() as db:
            db.execute("DELETE FROM sessions WHERE expires <= ?", (time.time(),))
            db.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?)",
                       (key, user.get("sid"), user.get("sub"), json.dumps(data),
                        time.time() + ttl))

    def delete(self, key):
        with self._db() as db:
            db.execute("DELETE FROM sessions WHERE key = ?", (key,))

    def end_sid(self, sid, sub=None):
        with self._db() as db:
            if sub is None:
                return db.execute("DELETE FROM sessions WHERE sid = ?", (sid,)).rowcount
            return db.execute("DELETE FROM sessions WHERE sid = ? AND sub = ?",
                              (sid, sub)).rowcount

    def end_sub(self, sub):
        with self._db() as db:
            return db.execute("DELETE FROM sessions WHERE sub = ?", (sub,)).rowcount

    def once(self, name, ttl):
        now = time.time()
        with self._db() as db:
            db.execute("DELETE FROM once WHERE expires <= ?", (now,))
            inserted = db.execute("INSERT OR IGNORE INTO once VALUES (?, ?)", (name, now + ttl))
            return inserted.rowcount == 1

    def close(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class _Transaction:
    """`with` gives the connection inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind, *_):
        self.conn.execute("ROLLBACK" if kind else "COMMIT")


class RedisStore:
    """Sessions as keys with a TTL; a set per sid and per sub lists the sessions to end."""

    def __init__(self, url: str, prefix: str, client=None):
        import redis

        self._redis = client or redis.Redis.from_url(url, socket_timeout=5,
                                                     socket_connect_timeout=5)
        self._prefix = f"portal:{prefix}:"

    def _k(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    def load(self, key):
        raw = self._redis.get(self._k("s", key))
        return json.loads(raw) if raw else None

    def save(self, key, data, ttl):
        user = _user(data)
        pipe = self._redis.pipeline()
        pipe.set(self._k("s", key), json.dumps(data), ex=ttl)
        for kind in ("sid", "sub"):
            if user.get(kind):
                pipe.sadd(self._k(kind, user[kind]), key)
                pipe.expire(self._k(kind, user[kind]), ttl)
        pipe.execute()

    def delete(self, key):
        self._redis.delete(self._k("s", key))

    def _end(self, index: str, keep=lambda data: True) -> int:
        ended = 0
        for member in self._redis.smembers(index):
            key = member.decode()
            raw = self._redis.get(self._k("s", key))
            if raw and keep(json.loads(raw)):
                ended += self._redis.delete(self._k("s", key))
        self._redis.delete(index)
        return ended

    def end_sid(self, sid, sub=None):
        return self._end(self._k("sid", sid),
                         lambda data: sub is None or _user(data).get("sub") == sub)

    def end_sub(self, sub):
        return self._end(self._k("sub", sub))

    def once(self, name, ttl):
        return bool(self._redis.set(self._k("once", name), b"1", nx=True, ex=ttl))

    def close(self):
        self._redis.close()


def connect(conf: dict, name: str) -> SessionStore:
    if conf["REDIS_URL"]:
        return RedisStore(conf["REDIS_URL"], name)
    return SqliteStore(conf["SESSION_DB"])
