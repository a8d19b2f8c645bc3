"""Both session stores keep the same promises: load what was saved, end every session of one
IdP session (sid) or one subject, and accept a single-use value once."""

from __future__ import annotations

import os
import uuid

import fakeredis
import pytest

from clients.portal.store import RedisStore, SqliteStore


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "sqlite":
        made = SqliteStore(str(tmp_path / "sessions.db"))
    elif os.environ.get("TEST_REDIS_URL"):
        made = RedisStore(os.environ["TEST_REDIS_URL"], f"test-{uuid.uuid4().hex}")
    else:
        made = RedisStore("", "test-store", client=fakeredis.FakeRedis())
    yield made
    made.close()


def user(sid: str, sub: str = "s") -> dict:
    return {"user": {"sid": sid, "sub": sub}, "lang": "en"}


def test_save_load_delete(store):
    store.save("k1", user("sid-1"), 60)
    assert store.load("k1") == user("sid-1")
    store.delete("k1")
    assert store.load("k1") is None


def test_end_sid_ends_only_that_idp_session(store):
    store.save("a", user("sid-1"), 60)
    store.save("b", user("sid-1"), 60)
    store.save("c", user("sid-2"), 60)
    assert store.end_sid("sid-1") == 2
    assert store.load("a") is None and store.load("b") is None
    assert store.load("c") is not None


def test_end_sid_with_a_sub_spares_another_subject(store):
    store.save("a", user("sid-1", "alice"), 60)
    store.save("b", user("sid-1", "bob"), 60)
    assert store.end_sid("sid-1", "alice") == 1
    assert store.load("b") is not None


def test_end_sub(store):
    store.save("a", user("sid-1", "alice"), 60)
    store.save("b", user("sid-2", "alice"), 60)
    assert store.end_sub("alice") == 2


def test_once(store):
    assert store.once("jti:1", 60) is True
    assert store.once("jti:1", 60) is False
    assert store.once("jti:2", 60) is True
