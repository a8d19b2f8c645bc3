"""Processing one case: run the policy's checks in order, record each, decide, issue.

`process(case_id)` is idempotent and resumable:
- a worker first takes the case's LEASE (an atomic UPDATE that succeeds only when nobody holds
  an unexpired lease), so two workers never process one case at once; the lease is extended
  in the same transaction as every recorded check, and a worker that lost it stops writing;
- checks already recorded with a final outcome are not run again, so a worker killed mid-case
  is resumed by the next one (the sweeper in `ekyc.tasks` re-queues cases whose lease
  expired) from the first check without a final result;
- the register not answering (`RegisterUnavailable`) records a `pending` result, moves the case
  to `waiting_register` and schedules a retry with exponential back-off and jitter: a case is
  never decided without a register answer, and nothing is lost;
- approval creates the account in the same transaction as the state change
  (`ekyc.issuance`); a duplicate ID number rejects the case with `already_enrolled`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import socket
import threading

from flask import current_app
from sqlalchemy.exc import IntegrityError

from idp import crypto
from idp.extensions import db
from idp.models import Account

from . import cases, issuance, media, policy
from .models import Case, CaseCheck, Challenge, utcnow
from .register_client import RegisterUnavailable, VerifyAnswer

log = logging.getLogger(__name__)
WORKER_ACTOR = "worker"


class LeaseLost(Exception):
    """Another worker took the case over (our lease expired): stop without writing."""


def worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{threading.get_ident()}"[:64]


def _reader():
    """The document reader: injected by tests (`app.extensions['ekyc.reader']`) or the real one."""
    reader = current_app.extensions.get("ekyc.reader")
    if reader is None:
        from .document.reader import read_document as reader
    return reader


def _unusable_image_errors() -> tuple[type[Exception], ...]:
    try:
        from .document.imaging import ImageError
    except ImportError:  # the document reader is not installed
        return ()
    return (ImageError,)


# -- evidence ------------------------------------------------------------------------------------

def _sex(value) -> str | None:
    text = str(value or "").strip().lower()
    if text in ("m", "male", "nam"):
        return "M"
    if text in ("f", "female", "nữ", "nu"):
        return "F"
    return None


def _iso(value) -> str | None:
    if not value:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d%m%Y", "%d-%m-%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def _text(value) -> str | None:
    if not isinstance(value, str):
        return None
    return " ".join(value.split()) or None


def identity(reading: dict) -> tuple[dict, dict]:
    """(fields, sources) read from a card: its `DocumentReading.to_dict()`, best source first.

    The QR code is digital and keeps diacritics; the MRZ has check digits but no diacritics,
    so it supplies only the date of birth and sex; the printed fields come from OCR, the least
    certain source. `sources` says where each field came from (qr | mrz | printed). Missing
    fields are left out, never guessed.
    """
    qr = reading.get("qr") or {}
    qr = (qr.get("payload") or {}) if isinstance(qr, dict) else {}
    mrz = reading.get("mrz") or {}
    mrz = (mrz.get("fields") or {}) if isinstance(mrz, dict) and mrz.get("valid") else {}
    printed = reading.get("printed") or {}
    candidates = {
        "full_name": [("qr", _text(qr.get("full_name"))),
                      ("printed", _text(printed.get("full_name")))],
        "date_of_birth": [("qr", _iso(qr.get("birth"))), ("mrz", _iso(mrz.get("birth_date"))),
                          ("printed", _iso(printed.get("date_of_birth")))],
        "sex": [("qr", _sex(qr.get("sex"))), ("mrz", _sex(mrz.get("sex"))),
                ("printed", _sex(printed.get("sex")))],
        "residence": [("qr", _text(qr.get("address"))),
                      ("printed", _text(printed.get("place_of_residence")))],
        "card_issue_date": [("qr", _iso(qr.get("issue_date")))],
    }
    fields, sources = {}, {}
    if reading.get("national_id"):
        fields["national_id"] = reading["national_id"]
    for name, options in candidates.items():
        for source, value in options:
            if value:
                fields[name], sources[name] = value, source
                break
    return fields, sources


def province_of(national_id: str) -> str | None:
    """The 3-digit province code an ID number starts with (DOMAIN.md 1), or None."""
    code = national_id[:3]
    return code if len(national_id) == 12 and national_id.isdigit() else None


def identity_fields(reading: dict) -> dict:
    """The identity fields of a reading (see `identity`)."""
    return identity(reading)[0]


class CaseEvidence:
    """What the checks may read (`ekyc.policy.Evidence`); loads and caches lazily."""

    def __init__(self, case: Case):
        self.case = case
        self.config = current_app.config
        self._images: dict[str, list[bytes]] = {}
        self._reading: dict | None = None
        self._document = None
        self._answer: VerifyAnswer | None = None
        self._portrait_check: dict | None = None
        self._register_portrait: list[bytes | None] = []
        self.portrait_encodings: dict = {}  # card / register faces found by the portrait check

    def images(self, kind: str) -> list[bytes]:
        if kind not in self._images:
            objs = self.case.live_media(kind)
            if kind == "selfie":
                objs = sorted(objs, key=lambda m: int(m.kind.split("_")[1]))
            self._images[kind] = [media.load(obj) for obj in objs]
        return self._images[kind]

    def read_document(self):
        """Run the reader once; keep its result encrypted on the case and the portrait as
        media, in the transaction that records the check."""
        if self._document is not None:
            return self._document
        front = self.images("front")[0]
        back = (self.images("back") or [None])[0]
        try:
            reading = _reader()(front, back)
        except _unusable_image_errors() as exc:  # no card found in the photo, and the like
            raise policy.UnusableImage(str(getattr(exc, "code", "unusable_image"))) from exc
        data = reading.to_dict()
        self.case.reading_encrypted = crypto.encrypt(json.dumps(data, default=str))
        national_id = getattr(reading, "national_id", None) or data.get("national_id")
        if national_id:
            self.case.pid_hash = issuance.pid_hash(national_id)
            self.case.pid_encrypted = crypto.encrypt(national_id)
            self.case.province = province_of(str(national_id))
        portrait = getattr(reading, "portrait_jpeg", None)
        if portrait:
            media.save(self.case, "portrait", portrait, "image/jpeg")
        self._document, self._reading = reading, data
        return reading

    def reading(self) -> dict:
        if self._reading is None:
            if self.case.reading_encrypted:
                self._reading = json.loads(crypto.decrypt(self.case.reading_encrypted))
            else:
                self.read_document()
        return self._reading

    def identity_fields(self) -> dict:
        return identity(self.reading())[0]

    def identity_sources(self) -> dict:
        return identity(self.reading())[1]

    def register_answer(self) -> VerifyAnswer:
        if self._answer is None:
            from . import register_client

            fields = self.identity_fields()
            asked = {k: fields[k] for k in ("full_name", "date_of_birth", "sex", "residence",
                                            "card_issue_date") if k in fields}
            self._answer = register_client.verify(fields["national_id"], asked)
        return self._answer

    def register_portrait_check(self) -> dict:
        """Fetch the register's portrait of the card's number and compare the card's portrait
        with it (`ekyc.document.reader.compare_register_portrait`). The comparison and its
        finding are added to the stored reading, in the transaction that records the check.
        Raises `RegisterUnavailable` like every register call."""
        if self._portrait_check is not None:
            return self._portrait_check
        reference = self.register_portrait()
        if reference is None:
            record = {"checked": False, "why": "no register portrait"}
        else:
            from .document.reader import compare_register_portrait

            record, findings = compare_register_portrait(self.card_portrait(), reference,
                                                         encodings=self.portrait_encodings)
            data = self.reading()
            data["portrait_check"] = record
            data["findings"] = [*(data.get("findings") or []), *(f.to_dict() for f in findings)]
            self.case.reading_encrypted = crypto.encrypt(json.dumps(data, default=str))
        self._portrait_check = record
        return record

    def register_portrait(self) -> bytes | None:
        """The register's portrait of the card's number (fetched once per run), or None.
        Raises `RegisterUnavailable` like every register call."""
        if not self._register_portrait:
            from . import register_client

            national_id = self.identity_fields().get("national_id")
            self._register_portrait.append(
                register_client.portrait(national_id) if national_id else None)
        return self._register_portrait[0]

    def challenge(self) -> Challenge | None:
        """The challenge the case's current selfie frames answered (the last one used)."""
        return db.session.scalar(db.select(Challenge).where(
            Challenge.case_id == self.case.id, Challenge.used_at.is_not(None))
            .order_by(Challenge.used_at.desc(), Challenge.id.desc()).limit(1))

    def card_portrait(self) -> bytes | None:
        """The portrait cropped from the card: from this run's reading, else as stored."""
        portrait = getattr(self._document, "portrait_jpeg", None)
        if portrait:
            return portrait
        stored = self.case.live_media("portrait")
        try:
            return media.load(stored[0]) if stored else None
        except media.MediaError:  # unreadable: compared as "no face", an officer looks
            return None

    def component(self, name: str):
        return current_app.extensions.get(name)

    def enrolled_elsewhere(self) -> bool:
        national_id = self.identity_fields().get("national_id")
        account = issuance.find_account(national_id) if national_id else None
        return account is not None and account.id != self.case.account_id and \
            account.onboarded_case_id != self.case.id and \
            not issuance.raises_level(self.case, account)  # a counter case raising level 1 to 2


# -- lease ---------------------------------------------------------------------------------------

def _lease_until(now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(seconds=current_app.config["EKYC_LEASE_SECONDS"])


def take_lease(case_id: str, owner: str, now: dt.datetime | None = None) -> Case | None:
    """Atomically take the case if it is in flight and nobody holds a live lease on it."""
    now = now or utcnow()
    result = db.session.execute(
        db.update(Case)
        .where(Case.id == case_id, Case.state.in_(cases.IN_FLIGHT),
               db.or_(Case.lease_owner.is_(None), Case.lease_expires_at.is_(None),
                      Case.lease_expires_at < now))
        .values(lease_owner=owner, lease_expires_at=_lease_until(now), runs=Case.runs + 1)
        .execution_options(synchronize_session=False))
    db.session.commit()
    if result.rowcount != 1:
        return None
    return db.session.execute(db.select(Case).where(Case.id == case_id)
                              .execution_options(populate_existing=True)).scalar_one()


def _keep_lease(case: Case, owner: str) -> None:
    """Extend our lease inside the current transaction; raise LeaseLost if it is not ours."""
    result = db.session.execute(
        db.update(Case).where(Case.id == case.id, Case.lease_owner == owner)
        .values(lease_expires_at=_lease_until(utcnow()))
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        db.session.rollback()
        raise LeaseLost(case.id)


def _release(case: Case) -> None:
    case.lease_owner = None
    case.lease_expires_at = None


# -- recording -----------------------------------------------------------------------------------

def _record(case: Case, check: policy.Check, result: policy.Result) -> CaseCheck:
    place = policy.position(check.name) if check.name in policy.CHECK_NAMES else -1
    row = CaseCheck(case_id=case.id, name=check.name, position=place,
                    outcome=result.outcome, score=result.score, threshold=result.threshold,
                    version=(result.version or check.version)[:64],
                    reason_code=result.reason_code, detail=result.detail or {})
    case.checks.append(row)
    return row


# Recorded when an operator asks the citizen for new photos (`ekyc.review.decisions`): the
# results before it belong to the old photos, so the next run starts the policy from scratch
# (they stay on the case, in its history).
RESTART_CHECK = "recapture"


def final_results(case: Case) -> dict[str, policy.Result]:
    """The latest final result of each check recorded on the case (since the last recapture)."""
    out: dict[str, policy.Result] = {}
    for row in case.checks:  # ordered by id: later rows win
        if row.name == RESTART_CHECK:
            out = {}
        elif row.final:
            out[row.name] = policy.Result(row.outcome, row.reason_code, row.score,
                                          row.threshold, row.detail, row.version)
    return out


def retry_delay(attempts: int) -> float:
    """Exponential back-off with jitter for asking the register again (seconds)."""
    conf = current_app.config
    cap = min(conf["EKYC_RETRY_MAX"], conf["EKYC_RETRY_BASE"] * 2 ** max(attempts - 1, 0))
    return random.uniform(cap / 2, cap)


# -- the run -------------------------------------------------------------------------------------

def process(case_id: str, owner: str | None = None) -> bool:
    """Process a case as far as possible now. True if this call did work on it, False if the
    case was not in flight or another worker holds it. Exceptions other than the register being
    unavailable propagate (the lease then expires and the sweeper hands the case on)."""
    owner = owner or worker_id()
    case = take_lease(case_id, owner)
    if case is None:
        return False
    try:
        _run(case, owner)
    except LeaseLost:
        log.warning("case lease lost to another worker; stopping this run")
        return False
    return True


def _run(case: Case, owner: str) -> None:
    conf = current_app.config
    if case.state != cases.PROCESSING:
        cases.transition(case, cases.PROCESSING, actor=WORKER_ACTOR)
    if case.runs > conf["EKYC_MAX_RUNS"]:
        # The case crashed its workers again and again: an operator looks at it.
        _record(case, policy.Check("pipeline", "pipeline", "1", policy.decide),
                policy.Result(policy.ERROR, "processing_error", detail={"runs": case.runs}))
        _finish(case, owner, policy.Decision(cases.NEEDS_REVIEW, ["processing_error"]))
        return
    _keep_lease(case, owner)
    db.session.commit()
    evidence = CaseEvidence(case)
    results = final_results(case)
    for check in policy.CHECKS:
        prior = results.get(check.name)
        if prior is None:
            try:
                prior = check.run(evidence)
            except RegisterUnavailable as exc:
                _wait_for_register(case, owner, check, str(exc))
                return
            _record(case, check, prior)
            _keep_lease(case, owner)
            db.session.commit()
            results[check.name] = prior
        if prior.outcome == policy.FAIL:
            break
    _finish(case, owner, policy.decide(results), evidence)


def _wait_for_register(case: Case, owner: str, check: policy.Check, why: str) -> None:
    from . import tasks

    db.session.rollback()  # nothing half-done from the check that was interrupted
    _record(case, check, policy.Result(policy.PENDING, "register_unavailable",
                                       detail={"why": why[:100]}))
    case.attempts += 1
    case.runs = 0  # a clean stop: only runs that crash one after another count as a loop
    delay = retry_delay(case.attempts)
    case.next_attempt_at = utcnow() + dt.timedelta(seconds=delay)
    case.reason_codes = ["register_unavailable"]
    cases.transition(case, cases.WAITING_REGISTER, actor=WORKER_ACTOR,
                     reason="register_unavailable")
    _keep_lease(case, owner)
    _release(case)
    db.session.commit()
    tasks.schedule_retry(case.id, delay)


def _finish(case: Case, owner: str, decision: policy.Decision,
            evidence: CaseEvidence | None = None) -> None:
    state, reasons = decision.state, decision.reasons
    if state == cases.APPROVED:
        try:
            _approve(case, owner, evidence)
            return
        except issuance.AlreadyEnrolled:
            state, reasons = cases.REJECTED, ["already_enrolled"]
        except IntegrityError:
            db.session.rollback()  # another case created the account in the meantime
            log.info("concurrent enrolment of one ID number: this case is rejected")
            state, reasons = cases.REJECTED, ["already_enrolled"]
        _record(case, policy.CHECKS[policy.position("duplicate")],
                policy.Result(policy.FAIL, "already_enrolled", detail={"at": "issuance"}))
    case.reason_codes = reasons
    case.next_attempt_at = None
    cases.transition(case, state, actor=WORKER_ACTOR, reason=(reasons or [None])[0])
    media.set_retention(case, decided=state in cases.DECIDED)
    _keep_lease(case, owner)
    _release(case)
    db.session.commit()


def _approve(case: Case, owner: str, evidence: CaseEvidence) -> Account:
    fields = evidence.identity_fields()
    register_fields = final_results(case)["register_fields_match"].detail.get("fields", {})
    account = issuance.issue_account(case, fields, register_fields)
    from . import biometrics

    if evidence is not None and \
            current_app.extensions.get("ekyc.face_index") is biometrics.duplicate_face:
        biometrics.enroll(evidence, account.id)  # the approved face joins the 1:N index
    case.reason_codes = []
    case.next_attempt_at = None
    cases.transition(case, cases.APPROVED, actor=WORKER_ACTOR)
    media.set_retention(case, decided=True)
    _keep_lease(case, owner)
    _release(case)
    db.session.commit()
    log.info("case approved; account issued (pending activation)")
    return account
