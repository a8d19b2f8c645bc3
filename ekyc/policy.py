"""The eKYC decision policy: ONE ordered list of checks, their reason codes, the decision rule.

    quality -> document -> register (number, fields, portrait) -> face -> liveness
    -> duplicates -> decision

Each check is a small function from the case's evidence (`Evidence`, built by
`ekyc.pipeline`) to a `Result` with an outcome, reason code, score, threshold and version, which
the pipeline records on the case. The rule (`decide`): any `fail` rejects, else any `review`
sends the case to an operator, else it is approved, and never without both register checks
passed. A check that fails stops the list (nothing is sent to the register for a forged card).

`register_portrait` compares the card's portrait with the register's portrait of the number
(the document reader's comparison, `ekyc.face` at its calibrated strict threshold): a swapped
portrait (another person's face on the card) or a card portrait without a face goes to an
officer. It runs after the register has confirmed the number (the portrait is only fetched
then). Being a face comparison, it follows `EKYC_FACE_CHECK` like the slots below: under
`skip-dev` it is run and recorded but a mismatch does not stop the case.

Face match, liveness and the face-duplicate search are the biometric checks of
`ekyc.biometrics` (installed in `app.extensions` under `ekyc.face_matcher`, `ekyc.liveness`
and `ekyc.face_index`; tests may install others): each is called with the evidence and returns
a `Result`. `EKYC_FACE_CHECK=required` (production default) enforces them. `skip-dev`
(development default, refused in production, logged as unsafe) still runs and records them but
turns anything short of a pass into `skipped`, so `make run` completes an onboarding end to end
with any face in front of the camera.

Messages are English msgids (`lazy_gettext`); the catalogue translates them. The consent text
is different on purpose: a legal text bound to its version, written here in both languages, so
that editing a catalogue can never change what a citizen consented to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from flask import current_app
from flask_babel import lazy_gettext as _l

PASS, FAIL, REVIEW, SKIPPED, PENDING, ERROR = "pass", "fail", "review", "skipped", "pending", \
    "error"
POLICY_VERSION = "2026.11-1"


# -- reasons -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reason:
    """What a reason code tells the citizen, and what they can do next (retry | contact | wait)."""

    message: object  # a lazy string
    next: str


REASONS: dict[str, Reason] = {
    "missing_images": Reason(_l("We did not receive both sides of your card and your selfie."),
                             "retry"),
    "media_unreadable": Reason(_l("Your photos could not be read back. Please take them again."),
                               "retry"),
    "document_unreadable": Reason(_l("We could not read your card. Take the photos again in good "
                                     "light, with the whole card in the frame."), "retry"),
    "image_quality": Reason(_l("The photo of your card is blurred, has glare, or the card is not "
                               "fully in the frame. Please take it again."), "retry"),
    "document_expired": Reason(_l("Your card has expired. Renew it at the police, then register "
                                  "again."), "contact"),
    "document_inconsistent": Reason(_l("The information on your card does not agree with itself. "
                                       "Please contact your commune police."), "contact"),
    "document_needs_review": Reason(_l("Some details of your card need a check by an officer."),
                                    "wait"),
    "register_not_found": Reason(_l("Your card could not be found in the population register. "
                                    "Please contact your commune police."), "contact"),
    "register_deceased": Reason(_l("The population register does not allow an account for this "
                                   "card. Please contact your commune police."), "contact"),
    "register_card_revoked": Reason(_l("This card is no longer valid in the population register. "
                                       "Please contact your commune police."), "contact"),
    "register_mismatch": Reason(_l("The details on your card do not match the population "
                                   "register. Please contact your commune police."), "contact"),
    "register_mismatch_unconfirmed": Reason(_l("Some details read from your card differ from "
                                               "the population register: an officer will check "
                                               "your case."), "wait"),
    "register_card_superseded": Reason(_l("The register holds a newer card for you: an officer "
                                          "will check your case."), "wait"),
    "register_fields_incomplete": Reason(_l("Some details could not be read from your card: an "
                                            "officer will check your case."), "wait"),
    "register_unavailable": Reason(_l("The population register is not answering right now. We "
                                      "will try again automatically."), "wait"),
    "register_error": Reason(_l("The population register could not check your card: an officer "
                                "will look at your case."), "wait"),
    "portrait_register_mismatch": Reason(_l("The photo on your card does not match the photo "
                                            "the population register holds for this card: an "
                                            "officer will check your case."), "wait"),
    "portrait_no_face": Reason(_l("No face could be found in the photo on your card: an officer "
                                  "will check your case."), "wait"),
    "portrait_register_unusable": Reason(_l("The photo on your card could not be compared with "
                                            "the population register's photo: an officer will "
                                            "check your case."), "wait"),
    "portrait_check_skipped": Reason(_l("Card photo check against the register not enforced "
                                        "(development setting)."), "wait"),
    "face_check_unavailable": Reason(_l("An officer will compare your selfie with your card."),
                                     "wait"),
    "face_check_skipped": Reason(_l("Face check skipped (development setting)."), "wait"),
    "liveness_unavailable": Reason(_l("An officer will check your live selfie."), "wait"),
    "liveness_skipped": Reason(_l("Liveness check skipped (development setting)."), "wait"),
    "duplicate_search_unavailable": Reason(_l("An officer will check that you have no other "
                                              "account."), "wait"),
    "duplicate_search_skipped": Reason(_l("Duplicate face search skipped (development "
                                          "setting)."), "wait"),
    "selfie_no_face": Reason(_l("We could not see your face clearly in the selfie. Please start "
                                "again in good light, facing the camera, alone in the picture."),
                             "retry"),
    "selfie_quality": Reason(_l("Your selfie was too dark, blurred or not facing the camera. "
                                "Please start again in good light, facing the camera."), "retry"),
    "face_mismatch": Reason(_l("Your selfie does not match the photo on your card. If this is "
                               "your card, please contact your commune police."), "contact"),
    "face_uncertain": Reason(_l("An officer will compare your selfie with the photo on your "
                                "card."), "wait"),
    "liveness_no_challenge": Reason(_l("We did not receive your live selfie. Please start "
                                       "again."), "retry"),
    "liveness_replayed": Reason(_l("Your selfie could not be accepted. Please start again and "
                                   "follow the instructions on the screen."), "retry"),
    "liveness_no_timing": Reason(_l("Your selfie photos were picked from files, so they cannot "
                                    "show movement: an officer will check them."), "wait"),
    "liveness_timing": Reason(_l("Your selfie photos did not arrive as they were taken. Please "
                                 "start again."), "retry"),
    "liveness_too_few_faces": Reason(_l("We could not see your face in enough of your selfie "
                                        "photos. Please start again in good light, close to the "
                                        "camera, with your face filling the oval."), "retry"),
    "liveness_face_changed": Reason(_l("More than one person appeared during your selfie. Please "
                                       "start again, alone in front of the camera."), "retry"),
    "liveness_not_card_holder": Reason(_l("Your selfie does not match the photo on your card. If "
                                          "this is your card, please contact your commune "
                                          "police."), "contact"),
    "liveness_face_uncertain": Reason(_l("An officer will check your live selfie."), "wait"),
    "liveness_static": Reason(_l("We could not see you move during your selfie. Please start "
                                 "again and follow the instructions on the screen."), "retry"),
    "liveness_action_missing": Reason(_l("We did not see every movement we asked for. Please "
                                         "start again and follow the instructions in order."),
                                      "retry"),
    "liveness_order": Reason(_l("We did not see every movement we asked for. Please start again "
                                "and follow the instructions in order."), "retry"),
    "liveness_passive_attack": Reason(_l("Your selfie looks like it may have been taken from a "
                                         "photo or a screen: an officer will check it."), "wait"),
    "duplicate_search_no_face": Reason(_l("An officer will check that you have no other "
                                          "account."), "wait"),
    "duplicate_face_suspected": Reason(_l("Your face looks like that of a person who already "
                                          "has an account: an officer will check your case."),
                                       "wait"),
    "already_enrolled": Reason(_l("An account already exists for this card. Sign in, or contact "
                                  "your commune police if it is not yours."), "contact"),
    "processing_error": Reason(_l("Something went wrong while checking your case: an officer "
                                  "will look at it."), "wait"),
    # Decisions of an officer in the console (ekyc.review.decisions).
    "recapture_requested": Reason(_l("An officer checked your application and asks you to take "
                                     "new photos of both sides of your card and a new selfie."),
                                  "retry"),
    "officer_rejected": Reason(_l("An officer checked your application and could not confirm "
                                  "your identity. Please contact your commune police."),
                               "contact"),
}


def reason_message(code: str):
    """The (lazy) message of a reason code; unknown codes get a neutral message."""
    reason = REASONS.get(code)
    return reason.message if reason else _l("Your case needs a check by an officer.")


def reason_next(code: str) -> str:
    reason = REASONS.get(code)
    return reason.next if reason else "wait"


# -- evidence and results ------------------------------------------------------------------------

@dataclass(frozen=True)
class Result:
    """One check's result, recorded as a `CaseCheck` row."""

    outcome: str
    reason_code: str | None = None
    score: float | None = None
    threshold: float | None = None
    detail: dict = field(default_factory=dict)
    version: str | None = None  # the check's own version when None


class Evidence(Protocol):
    """What checks may read about a case (implemented by `ekyc.pipeline.CaseEvidence`)."""

    case: object
    config: dict

    def images(self, kind: str) -> list[bytes]: ...

    def read_document(self) -> object: ...

    def reading(self) -> dict: ...

    def identity_fields(self) -> dict: ...

    def identity_sources(self) -> dict: ...

    def register_answer(self) -> object: ...

    def register_portrait_check(self) -> dict: ...

    def component(self, name: str): ...

    def enrolled_elsewhere(self) -> bool: ...


@dataclass(frozen=True)
class Check:
    """A named step of the policy: `run(evidence) -> Result`."""

    name: str
    stage: str
    version: str
    run: Callable[[Evidence], Result]


# -- the checks ----------------------------------------------------------------------------------

def upload_quality(ev: Evidence) -> Result:
    """Both sides of the card and enough selfie frames are stored and decrypt intact."""
    from .media import MediaError

    try:
        counts = {kind: len(ev.images(kind)) for kind in ("front", "back", "selfie")}
    except MediaError:
        return Result(FAIL, "media_unreadable")
    missing = [k for k in ("front", "back") if counts[k] != 1]
    if counts["selfie"] < ev.config["SELFIE_MIN_FRAMES"]:
        missing.append("selfie")
    if missing:
        return Result(FAIL, "missing_images", detail={"missing": missing, **counts})
    return Result(PASS, detail=counts)


_QUALITY_HINTS = ("blur", "glare", "resolution", "frame", "quality", "dark", "bright")


def _is_quality(code: str) -> bool:
    return any(hint in code for hint in _QUALITY_HINTS)


def _finding_codes(findings) -> list[dict]:
    out = []
    for f in findings or []:
        code = f.get("code") if isinstance(f, dict) else getattr(f, "code", None)
        severity = f.get("severity") if isinstance(f, dict) else getattr(f, "severity", None)
        if code:
            out.append({"code": str(code)[:64], "severity": str(severity or "warn")})
    return out


class UnusableImage(Exception):
    """The reader found no usable card in a photo (`code` from the reader)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def document_read(ev: Evidence) -> Result:
    """QR, MRZ and printed fields read from the card; an ID number agreed between them."""
    try:
        reading = ev.read_document()
    except UnusableImage as exc:
        return Result(FAIL, "image_quality", detail={"error": exc.code[:64]})
    data = ev.reading()
    versions = data.get("versions") or {}
    detail = {"qr": bool(data.get("qr")), "mrz": bool((data.get("mrz") or {}).get("valid")),
              "printed": bool(data.get("printed")), "timings_ms": data.get("timings_ms") or {}}
    version = str(versions.get("reader") or "unknown")[:64]
    if getattr(reading, "national_id", None) is None and not data.get("national_id"):
        quality = [f["code"] for f in _finding_codes(data.get("findings")) if _is_quality(f["code"])]
        return Result(FAIL, "image_quality" if quality else "document_unreadable",
                      detail={**detail, "quality": quality}, version=version)
    return Result(PASS, detail=detail, version=version)


def document_consistency(ev: Evidence) -> Result:
    """The card's own cross-checks (ekyc.document.checks): number vs DOB/sex, QR vs MRZ vs
    printed, expiry, image quality. A `reject` finding fails, a `review` one asks an officer."""
    findings = _finding_codes(ev.reading().get("findings"))
    rejects = [f["code"] for f in findings if f["severity"] == "reject"]
    reviews = [f["code"] for f in findings if f["severity"] == "review"]
    detail = {"findings": findings}
    if rejects:
        if all(_is_quality(c) for c in rejects):
            code = "image_quality"
        elif "card_expired" in rejects:
            code = "document_expired"
        else:
            code = "document_inconsistent"
        return Result(FAIL, code, detail=detail)
    if reviews:
        return Result(REVIEW, "document_needs_review", detail=detail)
    return Result(PASS, detail=detail)


def register_lookup(ev: Evidence) -> Result:
    """The register knows the number, the person is alive and the card is not revoked.

    Raises `register_client.RegisterUnavailable` when the register does not answer: the case
    then waits and retries; it is never decided without this answer."""
    from .register_client import RegisterError

    try:
        answer = ev.register_answer()
    except RegisterError as exc:
        return Result(REVIEW, "register_error", detail={"error": exc.code})
    detail = {"found": answer.found, "status": answer.status, "checked_at": answer.checked_at}
    if not answer.found:
        return Result(FAIL, "register_not_found", detail=detail)
    if answer.status == "deceased":
        return Result(FAIL, "register_deceased", detail=detail)
    if answer.status == "card_revoked":
        return Result(FAIL, "register_card_revoked", detail=detail)
    if answer.status != "alive":
        return Result(REVIEW, "register_error", detail=detail)
    return Result(PASS, detail=detail)


# Fields the register must confirm; a mismatch of any rejects. Residence may be out of date
# on the card (people move), so its mismatch is only noted; a different issue date means the
# register holds a newer card, which an officer checks.
REQUIRED_FIELDS = ("full_name", "date_of_birth", "sex")


def register_fields_match(ev: Evidence) -> Result:
    """The fields read from the card match the register record, field by field."""
    from .register_client import RegisterError

    try:
        answer = ev.register_answer()
    except RegisterError as exc:
        return Result(REVIEW, "register_error", detail={"error": exc.code})
    fields = dict(answer.fields or {})
    sources = ev.identity_sources()
    detail = {"fields": fields, "sources": sources}
    asked = [name for name in REQUIRED_FIELDS if name in fields]
    matched = [name for name, verdict in fields.items() if verdict == "match"]
    score = len(matched) / len(fields) if fields else 0.0
    mismatched = [name for name in REQUIRED_FIELDS if fields.get(name) == "mismatch"]
    if mismatched and all(sources.get(name) == "printed" for name in mismatched):
        # Read by OCR alone (no QR code): a misread letter is as likely as a false card.
        return Result(REVIEW, "register_mismatch_unconfirmed", score=score, threshold=1.0,
                      detail=detail)
    if mismatched:
        return Result(FAIL, "register_mismatch", score=score, threshold=1.0, detail=detail)
    if len(asked) < len(REQUIRED_FIELDS):
        return Result(REVIEW, "register_fields_incomplete", score=score, threshold=1.0,
                      detail=detail)
    if fields.get("card_issue_date") == "mismatch":
        return Result(REVIEW, "register_card_superseded", score=score, threshold=1.0,
                      detail=detail)
    return Result(PASS, score=score, threshold=1.0, detail=detail)


def register_portrait(ev: Evidence) -> Result:
    """The card's portrait is the face the register holds for this number (see the module
    docstring). Score = face distance, threshold = the matcher's strict threshold, version =
    the face model. A register without a portrait for the number: skipped (not checked)."""
    from .register_client import RegisterError

    try:
        answer = ev.register_answer()
        if not answer.has_portrait:
            return Result(SKIPPED, detail={"checked": False, "why": "no register portrait"})
        check = ev.register_portrait_check()
    except RegisterError as exc:
        return Result(REVIEW, "register_error", detail={"error": exc.code})
    if not check.get("checked"):
        return Result(SKIPPED, detail={"checked": False, "why": str(check.get("why"))[:64]})
    outcome = check.get("outcome")
    detail = {"checked": True, "outcome": outcome, "distance": check.get("distance"),
              "provisional": check.get("provisional"), "card_face": check.get("card_face")}
    measured = {"score": check.get("distance"), "threshold": check.get("threshold"),
                "version": f"{check.get('model')}/{check.get('model_version')}"[:64]}
    if outcome == "match":
        return Result(PASS, detail=detail, **measured)
    if ev.config["EKYC_FACE_CHECK"] == "skip-dev":
        return Result(SKIPPED, "portrait_check_skipped", **measured,
                      detail={**detail, "setting": "EKYC_FACE_CHECK=skip-dev"})
    if outcome == "mismatch":
        return Result(REVIEW, "portrait_register_mismatch", detail=detail, **measured)
    if outcome == "no_face":
        return Result(REVIEW, "portrait_no_face", detail=detail, **measured)
    return Result(REVIEW, "portrait_register_unusable", detail=detail, **measured)


def _slot(ev: Evidence, component: str, unavailable: str, skipped: str) -> Result:
    """A biometric check: delegate to the component installed for it (`ekyc.biometrics`).
    Without one, `required` sends the case to an officer. Under `skip-dev` the component still
    runs and its result is recorded, but anything short of a pass is recorded as `skipped`
    (what it would have been stays in the detail) so a development onboarding completes."""
    implementation = ev.component(component)
    mode = ev.config["EKYC_FACE_CHECK"]
    if implementation is None:
        if mode == "skip-dev":
            return Result(SKIPPED, skipped, detail={"setting": "EKYC_FACE_CHECK=skip-dev"})
        return Result(REVIEW, unavailable, detail={"component": component})
    result = implementation(ev)
    if mode == "skip-dev" and result.outcome != PASS:
        return Result(SKIPPED, skipped, result.score, result.threshold,
                      {**(result.detail or {}), "setting": "EKYC_FACE_CHECK=skip-dev",
                       "would_be": result.outcome, "would_be_reason": result.reason_code},
                      result.version)
    return result


def face_match(ev: Evidence) -> Result:
    """Selfie frames against the card portrait and the register portrait (`ekyc.biometrics`)."""
    return _slot(ev, "ekyc.face_matcher", "face_check_unavailable", "face_check_skipped")


def liveness(ev: Evidence) -> Result:
    """The selfie frames answer the random challenge (blink, head turns) (`ekyc.biometrics`)."""
    return _slot(ev, "ekyc.liveness", "liveness_unavailable", "liveness_skipped")


def duplicate(ev: Evidence) -> Result:
    """No account exists for this ID number, nor for this face (`ekyc.biometrics`)."""
    if ev.enrolled_elsewhere():
        return Result(FAIL, "already_enrolled")
    return _slot(ev, "ekyc.face_index", "duplicate_search_unavailable",
                 "duplicate_search_skipped")


CHECKS: tuple[Check, ...] = (
    Check("upload_quality", "quality", "1", upload_quality),
    Check("document_read", "document", "1", document_read),
    Check("document_consistency", "document", "1", document_consistency),
    Check("register_lookup", "register", "1", register_lookup),
    Check("register_fields_match", "register", "1", register_fields_match),
    Check("register_portrait", "register", "1", register_portrait),
    Check("face_match", "face", "2", face_match),
    Check("liveness", "liveness", "2", liveness),
    Check("duplicate", "duplicates", "2", duplicate),
)
CHECK_NAMES = tuple(c.name for c in CHECKS)
REGISTER_CHECKS = ("register_lookup", "register_fields_match")


def position(name: str) -> int:
    return CHECK_NAMES.index(name)


# -- the decision --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    state: str  # approved | rejected | needs_review
    reasons: list[str]


def decide(results: dict[str, Result]) -> Decision:
    """The rule over final results by check name (see the module docstring)."""
    fails = [r.reason_code for name in CHECK_NAMES if (r := results.get(name)) and
             r.outcome == FAIL]
    if fails:
        return Decision("rejected", [c for c in fails if c])
    reviews = [r.reason_code for name in CHECK_NAMES if (r := results.get(name)) and
               r.outcome in (REVIEW, ERROR)]
    if reviews:
        return Decision("needs_review", [c for c in reviews if c])
    if any(name not in results for name in CHECK_NAMES) or \
            any(results[name].outcome != PASS for name in REGISTER_CHECKS):
        # Unreachable by construction; the guard makes "never approve blind" local and obvious.
        raise RuntimeError("refusing to approve a case without every check and a register answer")
    return Decision("approved", [])


# -- consent -------------------------------------------------------------------------------------

CONSENT_VERSION = "2026-11-v1"
_CONSENT = {
    "en": """\
Consent to the processing of your personal data for electronic identification (version {version})

Who: the DinhDanh electronic identification service processes your data to create your \
electronic identity account.

What we collect: photos of both sides of your citizen ID card; the data on it (ID number, \
name, date of birth, sex, address, card dates); the card portrait; and a short series of live \
selfie photos. Your face images are BIOMETRIC DATA, which is sensitive personal data under the \
Law on Personal Data Protection (Law 91/2025/QH15).

Why: only to check that the card is genuine, that it matches the national population register, \
and that you are the card holder and present; and then to create your account. We send your ID \
number and card details to the population register to check them. We do not use your data for \
anything else and do not sell or share it for marketing.

How long: the photos and the data read from them are deleted {days} days after a decision on \
your application (kept longer only while an officer reviews it). If an account is created, it \
keeps your ID number (encrypted), name, date of birth, sex and address while the account exists.

Your rights: you may refuse: then no account is created remotely, and you can register in \
person at your commune police instead. You may withdraw this consent before a decision, ask to \
see, correct or delete your data, and complain to the personal data protection authority. \
Contact our data protection officer through the help page.

By continuing you confirm that you are the holder of the card and that you explicitly agree to \
the processing of your biometric data for these purposes.""",
    "vi": """\
Đồng ý xử lý dữ liệu cá nhân để định danh điện tử (phiên bản {version})

Ai xử lý: dịch vụ định danh điện tử DinhDanh xử lý dữ liệu của bạn để tạo tài khoản định danh \
điện tử.

Thu thập gì: ảnh hai mặt thẻ căn cước/căn cước công dân; thông tin trên thẻ (số định danh, họ \
tên, ngày sinh, giới tính, nơi cư trú, ngày cấp và hạn thẻ); ảnh chân dung trên thẻ; và một loạt \
ảnh tự chụp trực tiếp. Ảnh khuôn mặt của bạn là DỮ LIỆU SINH TRẮC HỌC, là dữ liệu cá nhân nhạy \
cảm theo Luật Bảo vệ dữ liệu cá nhân (Luật số 91/2025/QH15).

Mục đích: chỉ để kiểm tra thẻ là thật, khớp với Cơ sở dữ liệu quốc gia về dân cư, và bạn chính là \
chủ thẻ đang có mặt; sau đó tạo tài khoản cho bạn. Chúng tôi gửi số định danh và thông tin thẻ \
tới Cơ sở dữ liệu quốc gia về dân cư để đối chiếu. Chúng tôi không dùng dữ liệu của bạn vào mục \
đích khác, không bán hay chia sẻ để quảng cáo.

Thời gian lưu: ảnh và dữ liệu đọc từ ảnh được xóa sau {days} ngày kể từ khi có quyết định về hồ \
sơ (chỉ lưu lâu hơn trong thời gian cán bộ đang xem xét). Nếu tài khoản được tạo, tài khoản lưu \
số định danh (đã mã hóa), họ tên, ngày sinh, giới tính và địa chỉ trong thời gian tài khoản tồn tại.

Quyền của bạn: bạn có thể không đồng ý; khi đó tài khoản không được tạo trực tuyến và bạn có thể \
đăng ký trực tiếp tại công an cấp xã. Bạn có thể rút lại sự đồng ý trước khi có quyết định, yêu \
cầu xem, sửa hoặc xóa dữ liệu của mình, và khiếu nại tới cơ quan bảo vệ dữ liệu cá nhân. Liên hệ \
người phụ trách bảo vệ dữ liệu cá nhân của chúng tôi qua trang trợ giúp.

Khi tiếp tục, bạn xác nhận mình là chủ thẻ và đồng ý rõ ràng việc xử lý dữ liệu sinh trắc học của \
mình cho các mục đích trên.""",
}


def consent_text(locale: str, version: str = CONSENT_VERSION) -> str:
    """The consent text shown to the citizen in `locale` (vi or en; anything else gets vi)."""
    if version != CONSENT_VERSION:
        raise KeyError(f"unknown consent version {version!r}")
    template = _CONSENT.get((locale or "vi").split("-")[0], _CONSENT["vi"])
    return template.format(version=version, days=current_app.config["MEDIA_RETENTION_DAYS"])


def consent_hash(text: str) -> str:
    """SHA-256 of the exact text shown: recorded on the case with the version."""
    return hashlib.sha256(text.encode()).hexdigest()


__all__ = ["CHECKS", "CONSENT_VERSION", "Check", "Decision", "Evidence", "Result", "consent_text",
           "decide"]
