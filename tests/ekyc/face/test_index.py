"""The 1:N duplicate index: an enrolled face is found again, nearest first, one candidate per
account; templates of another model and the excluded account are never returned; a fresh
index (a restart, another worker) sees every committed template, including those committed
after it was loaded or committed out of id order; a deleted template is not returned."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ekyc.face import ModelInfo
from ekyc.face.index import FaceIndex, default_index, search
from ekyc.face.templates import FaceTemplate, enroll, seal
from idp.extensions import db
from tests.ekyc.face.test_templates import (
    MODEL,
    encoding,
    make_account,
    make_case,
    random_vectors,
)

OTHER_MODEL = ModelInfo("test-model", "2")


def near(vector: np.ndarray, scale: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (vector + rng.standard_normal(vector.size).astype(np.float32) * scale).astype(
        np.float32)


def populate(count: int = 20, seed: int = 0) -> tuple[list[str], list[str], np.ndarray]:
    """`count` accounts, each with one enrolled template; committed."""
    vectors = random_vectors(count, seed)
    accounts, cases = [], []
    for vector in vectors:
        account = make_account()
        case = make_case(account)
        enroll(account.id, case.id, encoding(vector))
        accounts.append(account.id)
        cases.append(case.id)
    db.session.commit()
    return accounts, cases, vectors


def test_search_finds_the_nearest_first_with_exact_distances(app):
    with app.app_context():
        accounts, cases, vectors = populate()
        query = near(vectors[7], 0.01, 1)
        found = search(encoding(query), k=3)
        assert found[0].account_id == accounts[7]
        assert found[0].case_id == cases[7]
        assert len(found) == 3
        assert [c.distance for c in found] == sorted(c.distance for c in found)
        expected = sorted(float(np.linalg.norm(v.astype(np.float64) - query)) for v in vectors)
        assert [c.distance for c in found] == pytest.approx(expected[:3], abs=1e-6)


def test_within_keeps_only_close_faces(app):
    with app.app_context():
        accounts, _, vectors = populate()
        found = search(encoding(near(vectors[3], 0.01, 2)), k=5, within=0.5)
        assert [c.account_id for c in found] == [accounts[3]]  # random unit vectors are ~1.4 apart
        assert search(encoding(-vectors[3]), within=0.5) == []


def test_other_model_templates_are_ignored(app):
    with app.app_context():
        _, _, vectors = populate(5)
        other = make_account()
        enroll(other.id, None, encoding(vectors[2], OTHER_MODEL))  # same vector, other model
        db.session.commit()
        found = search(encoding(vectors[2]), k=10)
        assert other.id not in {c.account_id for c in found}
        assert len(found) == 5
        [only] = search(encoding(vectors[2], OTHER_MODEL), k=10)
        assert only.account_id == other.id and only.distance == pytest.approx(0, abs=1e-6)


def test_excluded_account_is_ignored_and_one_candidate_per_account(app):
    with app.app_context():
        accounts, _, vectors = populate(10)
        target = vectors[4]
        twin = make_account()  # an account with three templates right next to the query
        for i in range(3):
            enroll(twin.id, None, encoding(near(target, 0.001, 10 + i)))
        db.session.commit()
        found = search(encoding(target), k=3)
        assert [c.account_id for c in found][:2] in ([twin.id, accounts[4]],
                                                     [accounts[4], twin.id])
        assert len({c.account_id for c in found}) == 3
        found = search(encoding(target), k=3, exclude_account_id=twin.id)
        assert twin.id not in {c.account_id for c in found}
        assert found[0].account_id == accounts[4] and len(found) == 3


def test_restart_rebuilds_from_the_database(app):
    with app.app_context():
        _, _, vectors = populate()
        first = search(encoding(vectors[11]), k=5)
        restarted = FaceIndex()  # a new process: nothing in memory
        assert len(restarted) == 0
        assert restarted.search(encoding(vectors[11]), k=5) == first
        assert len(restarted) == 20 and restarted.watermark == default_index().watermark


def test_templates_enrolled_elsewhere_are_seen_on_the_next_search(app):
    with app.app_context():
        populate(5)
        worker_a, worker_b = FaceIndex(), FaceIndex()
        fresh = random_vectors(1, seed=99)[0]
        assert worker_a.search(encoding(fresh), k=1)[0].distance > 0.5
        mark = worker_a.watermark
        newcomer = make_account()  # "worker B" issues an account and enrols its face
        enroll(newcomer.id, None, encoding(fresh))
        db.session.commit()
        assert worker_b.search(encoding(fresh), k=1)[0].account_id == newcomer.id
        [hit] = worker_a.search(encoding(fresh), k=1)
        assert hit.account_id == newcomer.id and worker_a.watermark > mark
        assert worker_a.refresh() == 0  # nothing new: only rows above the watermark are read


def test_a_row_committed_out_of_id_order_is_not_missed(app):
    """A sequence hands out ids before commit: id n+2 may be visible before id n+1."""
    with app.app_context():
        populate(3)
        index = FaceIndex()
        index.refresh()
        top = index.watermark
        late, early = make_account(), make_account()
        db.session.commit()
        late_vector, early_vector = random_vectors(2, seed=5)
        db.session.add(FaceTemplate(id=top + 2, account_id=early.id, model=str(MODEL),
                                    vector_encrypted=seal(early_vector)))
        db.session.commit()
        assert index.search(encoding(early_vector), k=1)[0].account_id == early.id
        assert index.watermark == top + 2
        db.session.add(FaceTemplate(id=top + 1, account_id=late.id, model=str(MODEL),
                                    vector_encrypted=seal(late_vector)))
        db.session.commit()
        [hit] = index.search(encoding(late_vector), k=1)
        assert hit.account_id == late.id and hit.distance == pytest.approx(0, abs=1e-6)


def test_a_deleted_template_is_not_returned(app):
    with app.app_context():
        accounts, _, vectors = populate(6)
        index = FaceIndex()
        assert index.search(encoding(vectors[2]), k=1)[0].account_id == accounts[2]
        db.session.execute(db.delete(FaceTemplate).where(FaceTemplate.account_id == accounts[2]))
        db.session.commit()
        found = index.search(encoding(vectors[2]), k=6)
        assert accounts[2] not in {c.account_id for c in found} and len(found) == 5


def test_uncommitted_templates_are_not_searched(app):
    with app.app_context():
        populate(3)
        account = make_account()
        vector = random_vectors(1, seed=42)[0]
        enroll(account.id, None, encoding(vector))  # flushed, not committed
        index = FaceIndex()
        assert account.id not in {c.account_id for c in index.search(encoding(vector), k=5)}
        db.session.rollback()


def test_empty_index_and_k_zero(app):
    with app.app_context():
        vector = random_vectors(1)[0]
        assert search(encoding(vector)) == []
        populate(2)
        assert search(encoding(vector), k=0) == []


def test_concurrent_searches_while_enrolling(app):
    with app.app_context():
        accounts, _, vectors = populate(10)
        index = FaceIndex()

    def searcher(i: int) -> None:
        with app.app_context():
            for _ in range(5):
                [hit] = index.search(encoding(vectors[i]), k=1)
                assert hit.account_id == accounts[i]

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(searcher, i) for i in range(6)]
        with app.app_context():
            for vector in random_vectors(5, seed=7):
                account = make_account()
                enroll(account.id, None, encoding(vector))
                db.session.commit()
        for future in futures:
            future.result()  # re-raises a thread's failure
    with app.app_context():
        index.refresh()
        assert len(index) == 15
