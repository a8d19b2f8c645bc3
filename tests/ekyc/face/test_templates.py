"""Face templates at rest: an enrolled face is stored encrypted (no vector in clear in the row),
reads back exactly, only with the app's data key, and belongs to the caller's transaction."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from ekyc.face import Encoding, ModelInfo
from ekyc.face.templates import FaceTemplate, enroll, open_sealed, seal
from ekyc.models import Case
from idp.extensions import db
from idp.models import Account, new_id

MODEL = ModelInfo("test-model", "1")


def make_account() -> Account:
    account = Account(pid_hash=new_id(), pid_encrypted="x", full_name="Test Citizen")
    db.session.add(account)
    db.session.flush()
    return account


def make_case(account: Account | None = None) -> Case:
    case = Case(token_hash="t" * 64, consent_version="v1", consent_text_hash="h" * 64,
                account_id=account.id if account else None)
    db.session.add(case)
    db.session.flush()
    return case


def encoding(vector, model: ModelInfo = MODEL) -> Encoding:
    return Encoding(np.asarray(vector, np.float32), (0, 0, 10, 10), 1, model)


def random_vectors(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((count, 128)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_enrolled_vector_is_stored_encrypted_and_reads_back(app):
    vector = random_vectors(1)[0]
    with app.app_context():
        account = make_account()
        case = make_case(account)
        enroll(account.id, case.id, encoding(vector))
        db.session.commit()
        row = db.session.execute(db.select(FaceTemplate)).scalar_one()
        assert (row.account_id, row.case_id, row.model) == (account.id, case.id, "test-model/1")
        stored = row.vector_encrypted
        raw = vector.astype("<f4").tobytes()
        # Neither the float bytes nor any usual text form of them is in the row.
        for clear in (base64.b64encode(raw), base64.urlsafe_b64encode(raw), raw.hex().encode()):
            assert clear[:24].decode() not in stored
        assert f"{vector[0]:.4f}" not in stored
        np.testing.assert_array_equal(open_sealed(stored), vector)


def test_sealed_vector_needs_the_data_key(make_app):
    app = make_app()
    with app.app_context():
        token = seal(random_vectors(1)[0])
    other = make_app(DATA_ENCRYPTION_KEY="Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE=")
    with other.app_context(), pytest.raises(RuntimeError, match="DATA_ENCRYPTION_KEY"):
        open_sealed(token)


def test_two_seals_of_one_vector_differ(app):
    vector = random_vectors(1)[0]
    with app.app_context():
        assert seal(vector) != seal(vector)  # random IV: equal faces are not visible at rest


def test_enrol_belongs_to_the_callers_transaction(app):
    with app.app_context():
        account = make_account()
        db.session.commit()
        enroll(account.id, None, encoding(random_vectors(1)[0]))
        db.session.rollback()
        assert db.session.execute(db.select(FaceTemplate)).first() is None


@pytest.mark.parametrize("bad", [np.zeros((2, 64)), np.array([np.nan] * 128), np.array([])])
def test_a_malformed_vector_is_refused(app, bad):
    with app.app_context():
        account = make_account()
        with pytest.raises(ValueError):
            enroll(account.id, None, encoding(bad))
