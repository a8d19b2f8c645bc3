"""The decision policy (ekyc/policy.py): one ordered list of checks, reason codes with
messages, the decision rule, the face-check setting and the consent text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask_babel import force_locale

from ekyc import policy, service
from ekyc.policy import FAIL, PASS, REVIEW, SKIPPED, Result
from idp.settings import ConfigError, load_settings, validate
from tests.conftest import base_config
from tests.ekyc.conftest import FakeReader, captured_case, reading_for
from tests.idp.test_settings import PRODUCTION


def test_the_checks_run_in_the_order_of_the_policy():
    assert policy.CHECK_NAMES == ("upload_quality", "document_read", "document_consistency",
                                  "register_lookup", "register_fields_match",
                                  "register_portrait", "face_match", "liveness", "duplicate")
    stages = [c.stage for c in policy.CHECKS]
    assert stages == sorted(stages, key=["quality", "document", "register", "face", "liveness",
                                         "duplicates"].index)


def test_every_reason_code_the_policy_can_give_has_a_message_in_both_languages(ekyc_app):
    source = Path(policy.__file__).read_text() + Path(service.__file__).read_text() + \
        Path(policy.__file__).with_name("pipeline.py").read_text()
    codes = set(re.findall(r'Result\(\w+, "(\w+)"', source))
    codes |= set(re.findall(r'code = "(\w+)"', Path(policy.__file__).read_text()))
    codes |= {"already_enrolled", "processing_error", "register_unavailable"}
    assert codes <= set(policy.REASONS), codes - set(policy.REASONS)
    app = ekyc_app()
    with app.test_request_context("/"):
        for code in codes:
            for locale in ("en", "vi"):
                with force_locale(locale):
                    assert str(policy.reason_message(code))
            assert policy.reason_next(code) in ("retry", "contact", "wait")


def _results(**outcomes) -> dict:
    base = {name: Result(PASS) for name in policy.CHECK_NAMES}
    base.update({name: Result(outcome, f"{name}_code") for name, outcome in outcomes.items()})
    return base


def test_the_decision_rule():
    assert policy.decide(_results()).state == "approved"
    assert policy.decide(_results(face_match=SKIPPED, liveness=SKIPPED)).state == "approved"
    review = policy.decide(_results(face_match=REVIEW))
    assert (review.state, review.reasons) == ("needs_review", ["face_match_code"])
    rejected = policy.decide(_results(face_match=REVIEW, register_fields_match=FAIL))
    assert (rejected.state, rejected.reasons) == ("rejected", ["register_fields_match_code"])


def test_never_approved_without_every_check_and_a_register_answer():
    incomplete = _results()
    del incomplete["register_lookup"]
    with pytest.raises(RuntimeError, match="register"):
        policy.decide(incomplete)
    with pytest.raises(RuntimeError):
        policy.decide(_results(register_lookup=SKIPPED))


class Evidence:
    """Input data for one check, as the pipeline would hand it over."""

    def __init__(self, reading=None, config=None):
        self._reading = reading or {}
        self.config = config or {"EKYC_FACE_CHECK": "required", "SELFIE_MIN_FRAMES": 3}

    def reading(self):
        return self._reading

    def component(self, _name):
        return None

    def enrolled_elsewhere(self):
        return False


@pytest.mark.parametrize("findings, outcome, code", [
    ([], PASS, None),
    ([("id_unknown_province", "warn")], PASS, None),
    ([("printed_name_mismatch", "review")], REVIEW, "document_needs_review"),
    ([("quality_blur", "review"), ("qr_mrz_sex_mismatch", "reject")], FAIL,
     "document_inconsistent"),
    ([("card_expired", "reject")], FAIL, "document_expired"),
    ([("quality_card_not_in_frame", "reject")], FAIL, "image_quality"),
])
def test_card_findings_map_to_outcomes(findings, outcome, code):
    reading = {"findings": [{"code": c, "severity": s, "detail": "x"} for c, s in findings]}
    result = policy.document_consistency(Evidence(reading))
    assert (result.outcome, result.reason_code) == (outcome, code)
    assert [f["code"] for f in result.detail["findings"]] == [c for c, _ in findings]


class RegisterEvidence(Evidence):
    def __init__(self, verdicts: dict, sources: dict):
        super().__init__()
        self.verdicts, self.sources = verdicts, sources

    def register_answer(self):
        from ekyc.register_client import VerifyAnswer

        return VerifyAnswer(found=True, status="alive", fields=self.verdicts)

    def identity_sources(self):
        return self.sources


ALL_MATCH = {"full_name": "match", "date_of_birth": "match", "sex": "match",
             "residence": "match", "card_issue_date": "match"}
QR = {"full_name": "qr", "date_of_birth": "qr", "sex": "qr", "residence": "qr"}


@pytest.mark.parametrize("verdicts, sources, outcome, code", [
    ({}, QR, PASS, None),
    ({"residence": "mismatch"}, QR, PASS, None),  # people move; the card is older
    ({"full_name": "mismatch"}, QR, FAIL, "register_mismatch"),
    ({"date_of_birth": "mismatch"}, {**QR, "date_of_birth": "mrz"}, FAIL, "register_mismatch"),
    ({"full_name": "mismatch"}, {**QR, "full_name": "printed"}, REVIEW,
     "register_mismatch_unconfirmed"),
    ({"card_issue_date": "mismatch"}, QR, REVIEW, "register_card_superseded"),
])
def test_register_field_verdicts(verdicts, sources, outcome, code):
    ev = RegisterEvidence({**ALL_MATCH, **verdicts}, sources)
    result = policy.register_fields_match(ev)
    assert (result.outcome, result.reason_code) == (outcome, code)


def test_fields_the_card_did_not_give_are_not_confirmed():
    ev = RegisterEvidence({"full_name": "match", "sex": "match"}, QR)
    result = policy.register_fields_match(ev)
    assert (result.outcome, result.reason_code) == (REVIEW, "register_fields_incomplete")


def test_identity_fields_prefer_digital_sources():
    from ekyc.pipeline import identity

    reading = {"national_id": "079200105810",
               "qr": None,
               "mrz": {"valid": True, "fields": {"birth_date": "2000-08-15", "sex": "M",
                                                 "surname": "NGUYEN"}},
               "printed": {"full_name": "Nguyễn  Trọng Thanh Hùng", "date_of_birth": "15/08/2000",
                           "sex": "Nam", "place_of_residence": "Tây Ninh"}}
    fields, sources = identity(reading)
    assert fields == {"national_id": "079200105810", "full_name": "Nguyễn Trọng Thanh Hùng",
                      "date_of_birth": "2000-08-15", "sex": "M", "residence": "Tây Ninh"}
    assert sources == {"full_name": "printed", "date_of_birth": "mrz", "sex": "mrz",
                       "residence": "printed"}


class PortraitEvidence(Evidence):
    """The register's answer and the portrait comparison the pipeline would hand over."""

    def __init__(self, has_portrait=True, check=None, mode="required", error=None):
        super().__init__(config={"EKYC_FACE_CHECK": mode})
        self.has_portrait, self.check, self.error = has_portrait, check, error
        self.compared = 0

    def register_answer(self):
        from ekyc.register_client import VerifyAnswer

        return VerifyAnswer(found=True, status="alive", has_portrait=self.has_portrait)

    def register_portrait_check(self):
        self.compared += 1
        if self.error:
            raise self.error
        return self.check


def _compared(outcome, distance):
    return {"checked": True, "outcome": outcome, "distance": distance, "threshold": 0.4146,
            "model": "dlib-resnet-v1", "model_version": "v", "provisional": True,
            "card_face": [1, 2, 30, 30] if outcome != "no_face" else None}


@pytest.mark.parametrize("mode, outcome, distance, result, code", [
    ("required", "match", 0.3, PASS, None),
    ("required", "mismatch", 0.7, REVIEW, "portrait_register_mismatch"),
    ("required", "no_face", None, REVIEW, "portrait_no_face"),
    ("required", "register_no_face", None, REVIEW, "portrait_register_unusable"),
    ("skip-dev", "match", 0.3, PASS, None),
    ("skip-dev", "mismatch", 0.7, SKIPPED, "portrait_check_skipped"),
])
def test_register_portrait_outcomes(mode, outcome, distance, result, code):
    ev = PortraitEvidence(check=_compared(outcome, distance), mode=mode)
    got = policy.register_portrait(ev)
    assert (got.outcome, got.reason_code) == (result, code)
    assert (got.score, got.threshold, got.version) == (distance, 0.4146, "dlib-resnet-v1/v")
    assert got.detail["outcome"] == outcome


def test_register_portrait_not_checked_without_a_register_portrait():
    from ekyc.register_client import RegisterError

    ev = PortraitEvidence(has_portrait=False)
    got = policy.register_portrait(ev)
    assert got.outcome == SKIPPED and got.detail["checked"] is False and ev.compared == 0
    gone = PortraitEvidence(check={"checked": False, "why": "no register portrait"})
    assert policy.register_portrait(gone).outcome == SKIPPED
    refused = PortraitEvidence(error=RegisterError("invalid_request", 400))
    assert (policy.register_portrait(refused).outcome,
            policy.register_portrait(refused).reason_code) == (REVIEW, "register_error")


@pytest.mark.parametrize("mode, outcome, reason", [
    ("required", REVIEW, "face_check_unavailable"),
    ("skip-dev", SKIPPED, "face_check_skipped"),
])
def test_face_slot_without_a_matcher(mode, outcome, reason):
    ev = Evidence(config={"EKYC_FACE_CHECK": mode})
    result = policy.face_match(ev)
    assert (result.outcome, result.reason_code) == (outcome, reason)


def test_face_check_setting_defaults_and_production_refusal():
    development = base_config(IDP_ENV="development")
    assert load_settings(development, environ={})["EKYC_FACE_CHECK"] == "skip-dev"
    conf = load_settings(PRODUCTION, environ={})
    validate(conf)
    assert conf["EKYC_FACE_CHECK"] == "required"
    with pytest.raises(ConfigError, match="EKYC_FACE_CHECK"):
        validate(load_settings({**PRODUCTION, "EKYC_FACE_CHECK": "skip-dev"}, environ={}))
    with pytest.raises(ConfigError, match="EKYC_FACE_CHECK"):
        validate(load_settings(base_config(EKYC_FACE_CHECK="off"), environ={}))


def test_skip_dev_is_logged_as_unsafe(caplog):
    validate(load_settings(base_config(IDP_ENV="development"), environ={}))
    assert "UNSAFE development setting EKYC_FACE_CHECK=skip-dev" in caplog.text


def _decided(app, citizen):
    """Decide a case whose card reads as `citizen`'s, with the citizen's own face as the card
    portrait (the register's photo: a card is printed from it) when the faces data is there."""
    from ekyc.models import Case
    from idp.extensions import db
    from register.seed import faces_dir, identity_images, portrait_identity

    reading = reading_for(citizen)
    if faces_dir() is not None and citizen.portrait_file:
        own = identity_images(portrait_identity(citizen))[0]
        reading.portrait_jpeg = (faces_dir() / own).read_bytes()
    app.extensions["ekyc.reader"] = FakeReader(reading)
    case_id, token = captured_case(app)
    with app.app_context():
        service.submit(service.open_case(case_id, token))
        case = db.session.get(Case, case_id)
        return case.state, list(case.reason_codes), case.account_id


def test_with_face_check_required_and_no_matcher_an_operator_decides(ekyc_app, register_stub,
                                                                     citizens):
    app = ekyc_app(EKYC_FACE_CHECK="required")
    register_stub(app)
    for name in ("ekyc.face_matcher", "ekyc.liveness", "ekyc.face_index"):
        app.extensions.pop(name)  # a deployment without the biometric components
    state, reasons, account_id = _decided(app, citizens[1])
    assert state == "needs_review" and account_id is None
    assert reasons == ["face_check_unavailable", "liveness_unavailable",
                       "duplicate_search_unavailable"]


def test_with_face_check_required_a_selfie_without_a_face_is_taken_again(
        ekyc_app, register_stub, citizens):
    """The real biometric checks are installed by default: striped test frames show no face."""
    app = ekyc_app(EKYC_FACE_CHECK="required")
    register_stub(app)
    state, reasons, account_id = _decided(app, citizens[1])
    assert (state, account_id) == ("rejected", None)
    assert reasons == ["selfie_no_face"]
    assert policy.reason_next("selfie_no_face") == "retry"


def test_with_face_check_required_a_matcher_decides(ekyc_app, register_stub, citizens):
    app = ekyc_app(EKYC_FACE_CHECK="required")
    register_stub(app)
    for name in ("ekyc.face_matcher", "ekyc.liveness", "ekyc.face_index"):
        app.extensions[name] = lambda ev: Result(PASS, score=0.1, threshold=0.4, version="t")
    state, reasons, account_id = _decided(app, citizens[2])
    assert (state, reasons) == ("approved", []) and account_id


def test_with_skip_dev_a_case_is_approved_and_the_skips_are_recorded(ekyc_app, register_stub,
                                                                     citizens):
    app = ekyc_app(EKYC_FACE_CHECK="skip-dev")
    register_stub(app)
    state, _reasons, account_id = _decided(app, citizens[3])
    assert state == "approved" and account_id


def test_consent_text_says_what_the_law_requires(ekyc_app):
    app = ekyc_app(MEDIA_RETENTION_DAYS=45)
    with app.app_context():
        english, vietnamese = policy.consent_text("en"), policy.consent_text("vi")
        assert policy.consent_text("fr") == vietnamese  # Vietnamese first
        with pytest.raises(KeyError):
            policy.consent_text("en", version="1999-01")
    for text in (english, vietnamese):
        assert policy.CONSENT_VERSION in text and "45" in text and "91/2025/QH15" in text
    assert "BIOMETRIC" in english and "purpose" in english.lower()
    assert "SINH TRẮC HỌC" in vietnamese and "Mục đích" in vietnamese
    assert policy.consent_hash(english) != policy.consent_hash(vietnamese)


def test_an_unusable_selfie_says_what_to_change(ekyc_app, register_stub, citizens):
    """A selfie whose faces all fail the quality gates: the status page says what to change."""
    from ekyc import biometrics
    from ekyc.face.compare import SelfieComparison
    from ekyc.models import Case
    from idp.extensions import db

    app = ekyc_app(EKYC_FACE_CHECK="required")
    register_stub(app)
    dark = SelfieComparison("unusable", "selfie_quality", None, None, 0,
                            [["too_dark", "face_too_small"]], "m/1", 0.35, 0.66,
                            detail={"problems": ["face_too_small", "too_dark"]})

    def unusable(ev):
        ev._bio_comparison = dark
        return biometrics.face_match(ev)

    app.extensions["ekyc.face_matcher"] = unusable
    state, reasons, _ = _decided(app, citizens[1])
    assert (state, reasons) == ("rejected", ["selfie_quality"])
    with app.app_context():
        case = db.session.scalar(db.select(Case).order_by(Case.created_at.desc()))
        for locale, words in (("en", ("too far away", "too dark")), ("vi", ("quá xa", "quá tối"))):
            view = service.status_view(case, locale)
            assert view["next"] == "retry"
            assert len(view["hints"]) == 2 and all(
                w in " ".join(view["hints"]) for w in words), view["hints"]
