"""Short labels operators read for the pipeline's reason codes, check names and case states
(the citizen's longer messages live in `ekyc.policy.REASONS`)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

REASON_LABELS = {
    "missing_images": _l("Images missing"),
    "media_unreadable": _l("Stored images unreadable"),
    "document_unreadable": _l("Card not readable"),
    "image_quality": _l("Card photo quality"),
    "document_expired": _l("Card expired"),
    "document_inconsistent": _l("Card inconsistent with itself"),
    "document_needs_review": _l("Card details to check"),
    "register_not_found": _l("Not in the register"),
    "register_deceased": _l("Register: deceased"),
    "register_card_revoked": _l("Register: card revoked"),
    "register_mismatch": _l("Register mismatch"),
    "register_mismatch_unconfirmed": _l("Register mismatch (printed text only)"),
    "register_card_superseded": _l("Register holds a newer card"),
    "register_fields_incomplete": _l("Card fields incomplete"),
    "register_unavailable": _l("Register not answering"),
    "register_error": _l("Register error"),
    "portrait_register_mismatch": _l("Card portrait differs from the register's"),
    "portrait_no_face": _l("No face in the card portrait"),
    "portrait_register_unusable": _l("Card portrait not comparable"),
    "portrait_check_skipped": _l("Portrait check skipped (development)"),
    "face_check_unavailable": _l("Face check unavailable"),
    "face_check_skipped": _l("Face check skipped (development)"),
    "liveness_unavailable": _l("Liveness check unavailable"),
    "liveness_skipped": _l("Liveness skipped (development)"),
    "duplicate_search_unavailable": _l("Duplicate search unavailable"),
    "duplicate_search_skipped": _l("Duplicate search skipped (development)"),
    "selfie_no_face": _l("No face in the selfie"),
    "selfie_quality": _l("Selfie quality"),
    "face_mismatch": _l("Selfie does not match the card"),
    "face_uncertain": _l("Face match uncertain"),
    "liveness_no_challenge": _l("No live selfie"),
    "liveness_replayed": _l("Selfie frames replayed"),
    "liveness_no_timing": _l("Selfie from files (no timing)"),
    "liveness_timing": _l("Selfie timing wrong"),
    "liveness_too_few_faces": _l("Too few faces in the selfie"),
    "liveness_face_changed": _l("Face changed during the selfie"),
    "liveness_not_card_holder": _l("Live face is not the card holder"),
    "liveness_face_uncertain": _l("Live face uncertain"),
    "liveness_static": _l("No movement in the selfie"),
    "liveness_action_missing": _l("Challenge action missing"),
    "liveness_order": _l("Challenge actions out of order"),
    "liveness_passive_attack": _l("Possible photo or screen attack"),
    "duplicate_search_no_face": _l("No face to search for duplicates"),
    "duplicate_face_suspected": _l("Suspected duplicate face"),
    "already_enrolled": _l("Already enrolled"),
    "processing_error": _l("Processing error"),
    "recapture_requested": _l("New photos requested"),
    "officer_rejected": _l("Rejected by an officer"),
}

CHECK_LABELS = {
    "upload_quality": _l("Images received"),
    "document_read": _l("Card read"),
    "document_consistency": _l("Card consistency"),
    "register_lookup": _l("Register lookup"),
    "register_fields_match": _l("Register fields"),
    "register_portrait": _l("Register portrait"),
    "face_match": _l("Face match"),
    "liveness": _l("Liveness"),
    "duplicate": _l("Duplicates"),
    "pipeline": _l("Processing"),
    "recapture": _l("New photos requested (checks start over)"),
}

STATE_LABELS = {
    "created": _l("created"), "capturing": _l("capturing"), "submitted": _l("submitted"),
    "processing": _l("processing"), "waiting_register": _l("waiting for the register"),
    "needs_review": _l("needs review"), "approved": _l("approved"), "rejected": _l("rejected"),
}

FIELD_LABELS = {
    "national_id": _l("ID number"), "full_name": _l("Full name"),
    "date_of_birth": _l("Date of birth"), "sex": _l("Sex"), "residence": _l("Residence"),
    "card_issue_date": _l("Card issue date"), "expiry_date": _l("Expiry date"),
}

CHANNEL_LABELS = {"web": _l("web"), "api": _l("app"), "counter": _l("counter")}

OUTCOME_LABELS = {"pass": _l("pass"), "fail": _l("fail"), "review": _l("review"),
                  "skipped": _l("skipped"), "pending": _l("pending"), "error": _l("error"),
                  "accept": _l("same person"), "reject": _l("different people")}


def reason(code: str):
    return REASON_LABELS.get(code, code)


def label(table: dict, key):
    return table.get(key, key)
