"""Operator console server time with a realistic database (issue 6, acceptance criterion 3:
the case page in under 300 ms of server time with 10,000 cases).

Seeds N cases (default 10,000) with what the pipeline records for them (every policy check
with its detail, the state history, card reading and ID number encrypted, media rows pointing to
real encrypted images, accounts for the approved ones, console decisions on the reviewed ones),
a mix of states and provinces, and ~50,000 hash-chained audit entries; then times, in-process
with the Flask test client and a signed-in supervisor session, GET /ops/cases/<id>?purpose=review
for random cases, GET /ops/queue, GET /ops/dashboard and GET /ops/audit (and one chain verification).

    uv run python bench/ops_console.py                         # SQLite file in a temp folder
    uv run python bench/ops_console.py --database-url postgresql+psycopg://postgres@127.0.0.1:55433/dd_h5
    uv run python bench/ops_console.py --workdir /tmp/ops-bench --reuse   # time again, no seed

Server time = `time.perf_counter()` around `client.get` (routing, queries, template, the audit
entry every view writes and its commit; no network, no browser). Prints a JSON summary and a
markdown table: median and p95 per run, and the median of the run medians.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
STATES = (("approved", 0.70), ("rejected", 0.18), ("needs_review", 0.10), ("capturing", 0.01),
          ("waiting_register", 0.01))
REVIEW_REASONS = ("document_needs_review", "face_uncertain", "register_mismatch_unconfirmed",
                  "duplicate_face_suspected", "portrait_register_mismatch")
REJECT_REASONS = ("face_mismatch", "register_mismatch", "document_inconsistent",
                  "register_not_found", "image_quality")
MEDIA_POOL = 100  # distinct encrypted image sets; every case has rows pointing to one of them
AUDIT_EVENTS = (("login.success", 0.55), ("login.failure", 0.08), ("token.issued", 0.2),
                ("ops.case_viewed", 0.1), ("ops.decision", 0.04), ("ops.signin", 0.03))


def make_app(url: str, workdir: Path):
    from idp import create_app

    return create_app({
        "IDP_ENV": "development", "ISSUER": "http://127.0.0.1:8000", "DATABASE_URL": url,
        "REDIS_URL": "", "INSTANCE_PATH": str(workdir / "instance"),
        "MEDIA_DIR": str(workdir / "media"),
        "SECRET_KEY": "bench-secret-key-not-for-production",
        "DATA_ENCRYPTION_KEY": "3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "PAIRWISE_SECRET": "bench-pairwise-secret", "JOBS_SYNC": True,
    })


def migrate(app) -> None:
    from flask_migrate import upgrade
    from sqlalchemy import text

    from idp.extensions import db

    with app.app_context():
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade(directory=str(ROOT / "migrations"))


def _jpeg(width: int, height: int, color) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), color)
    ImageDraw.Draw(img).ellipse((width // 4, height // 5, 3 * width // 4, 4 * height // 5),
                                fill=(210, 170, 140))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80)
    return out.getvalue()


def _pick(rng, weighted):
    return rng.choices([w[0] for w in weighted], [w[1] for w in weighted])[0]


def _checks(rng, case_id, state, reason, at, strict, loose, candidate=(None, None)):
    """The nine policy checks as the pipeline records them."""
    from ekyc import policy

    face = round(rng.uniform(0.2, strict), 4)
    outcome = {name: "pass" for name in policy.CHECK_NAMES}
    details = {
        "upload_quality": ({"front": 1, "back": 1, "selfie": 5}, None, None, "1"),
        "document_read": ({"qr": True, "mrz": True, "printed": True,
                           "timings_ms": {"qr": 41, "mrz": 180, "ocr": 620, "total": 870}},
                          None, None, "reader-1.3"),
        "document_consistency": ({"findings": []}, None, None, "1"),
        "register_lookup": ({"found": True, "status": "alive",
                             "checked_at": at.isoformat(timespec="seconds")}, None, None, "1"),
        "register_fields_match": ({"fields": {k: "match" for k in (
            "full_name", "date_of_birth", "sex", "residence", "card_issue_date")},
            "sources": {k: "qr" for k in ("full_name", "date_of_birth", "sex", "residence",
                                          "card_issue_date")}}, 1.0, 1.0, "1"),
        "register_portrait": ({"checked": True, "outcome": "match", "distance": 0.31,
                               "provisional": False, "card_face": True}, 0.31, strict,
                              "dlib/1"),
        "face_match": ({"frames": 5, "frames_with_face": 5, "frame_errors": [],
                        "card_frame_distances": {"min": face - 0.02, "max": face + 0.03},
                        "card_outcome": "accept", "outcome": "accept", "distance_card": face,
                        "distance_register": None, "strict": strict, "loose": loose,
                        "frames_used": 3}, face, strict, "dlib-resnet-v1"),
        "liveness": ({"actions": ["turn_left", "blink"], "timing": "ok", "faces": 5,
                      "same_face_max_distance": 0.21, "landmark_motion": 0.034,
                      "steps": "ok"}, 0.92, 0.5, "liveness-2"),
        "duplicate": ({"searched": True, "threshold": round(strict * 0.9, 4),
                       "nearest": 0.71, "candidates": []}, 0.71, round(strict * 0.9, 4),
                      "dlib-resnet-v1"),
    }
    failing = {"face_uncertain": "face_match", "face_mismatch": "face_match",
               "document_needs_review": "document_consistency",
               "document_inconsistent": "document_consistency",
               "register_mismatch_unconfirmed": "register_fields_match",
               "register_mismatch": "register_fields_match",
               "register_not_found": "register_lookup", "image_quality": "document_read",
               "duplicate_face_suspected": "duplicate",
               "portrait_register_mismatch": "register_portrait"}
    if reason:
        name = failing[reason]
        outcome[name] = "fail" if reason in REJECT_REASONS else "review"
        d = details[name][0]
        if name == "face_match":
            score = round(rng.uniform(strict, loose) if reason == "face_uncertain"
                          else rng.uniform(loose, 0.9), 4)
            d.update(outcome="review" if reason == "face_uncertain" else "reject",
                     distance_card=score)
            details[name] = (d, score, strict, details[name][3])
        elif name == "document_consistency":
            d["findings"] = [{"code": "printed_name_mismatch" if reason.endswith("review")
                              else "qr_mrz_id_mismatch",
                              "severity": "review" if reason.endswith("review") else "reject"}]
        elif name == "register_fields_match":
            d["fields"]["full_name"] = "mismatch"
        elif name == "duplicate":
            d["candidates"] = [{"account_id": candidate[0], "case_id": candidate[1],
                                "distance": 0.38}] if candidate[1] else []
    rows = []
    for position, name in enumerate(policy.CHECK_NAMES):
        d, score, threshold, version = details[name]
        rows.append({"case_id": case_id, "name": name, "position": position,
                     "outcome": outcome[name], "score": score, "threshold": threshold,
                     "version": version, "detail": d,
                     "reason_code": reason if outcome[name] != "pass" else None,
                     "created_at": at + dt.timedelta(seconds=position)})
    return rows


def seed(app, n: int, audit_entries: int, rng: random.Random) -> dict:
    from ekyc import media
    from ekyc.issuance import pid_hash
    from ekyc.models import Case, CaseCheck, CaseDecision, CaseEvent, MediaObject, new_id
    from idp import audit, crypto
    from idp.extensions import db
    from idp.models import Account, Operator, utcnow
    from register.seed import synthetic_citizens

    started = time.perf_counter()
    with app.app_context():
        staff = {}
        for username, role in (("bench-sup", "supervisor"), ("bench-op1", "operator"),
                               ("bench-op2", "operator"), ("bench-aud", "auditor")):
            account = Account(kind="staff", username=username, full_name=username, level=2)
            db.session.add(account)
            db.session.flush()
            op = Operator(username=username, role=role, account_id=account.id)
            db.session.add(op)
            db.session.flush()
            staff[username] = op.id
        deciders = [staff["bench-op1"], staff["bench-op2"], staff["bench-sup"]]
        # real encrypted images, shared by the cases' media rows (keys are bound to the path)
        pool = []
        for i in range(MEDIA_POOL):
            holder = Case(state="approved", token_hash="0" * 64, consent_version="bench",
                          consent_text_hash="0" * 64)
            holder.id = new_id()
            shade = (30 + i, 80, 150)
            kinds = {"front": _jpeg(640, 400, shade), "back": _jpeg(640, 400, (20, 20, 20)),
                     "portrait": _jpeg(120, 160, (200, 170, 150))}
            kinds.update({f"selfie_{k}": _jpeg(320, 400, (90 + 20 * k, 90, 90))
                          for k in range(3)})
            pool.append([media.save(holder, kind, data, "image/jpeg")
                         for kind, data in kinds.items()])
        citizens = synthetic_citizens(n + 1)[1:]
        now = utcnow()
        strict, loose = 0.3503, 0.6639
        cases, checks, events, medias, accounts, decisions = [], [], [], [], [], []
        enrolled = []  # (account id, case id) of approved cases: duplicate candidates
        for i, citizen in enumerate(citizens):
            state = _pick(rng, STATES)
            case_id = new_id()
            submitted = now - dt.timedelta(days=rng.uniform(0, 120))
            reason, reviewed = None, False
            if state == "needs_review":
                reason, reviewed = rng.choice(REVIEW_REASONS), True
            elif state == "rejected":
                reviewed = rng.random() < 0.2
                reason = rng.choice(REVIEW_REASONS if reviewed else REJECT_REASONS)
            elif state == "approved":
                reviewed = rng.random() < 0.12
                reason = rng.choice(REVIEW_REASONS) if reviewed else None
            pipeline_done = submitted + dt.timedelta(seconds=rng.uniform(4, 40))
            decided = None
            if state in ("approved", "rejected"):
                decided = pipeline_done + (dt.timedelta(hours=rng.uniform(0.2, 30)) if reviewed
                                           else dt.timedelta(0))
                decided = min(decided, now)
            reading = {"qr": {"payload": {"national_id": citizen.national_id,
                                          "old_id": citizen.old_id,
                                          "full_name": citizen.full_name,
                                          "birth": citizen.date_of_birth.isoformat(),
                                          "sex": citizen.sex, "address": citizen.residence,
                                          "issue_date": citizen.card_issue_date.isoformat(),
                                          "extra": []}, "decoder": "zxing"},
                       "mrz": {"valid": True, "document_number": citizen.national_id[3:],
                               "date_of_birth": citizen.date_of_birth.isoformat(),
                               "sex": citizen.sex,
                               "expiry_date": (citizen.card_expiry_date.isoformat()
                                               if citizen.card_expiry_date else None)},
                       "printed": {"full_name": citizen.full_name,
                                   "date_of_birth": citizen.date_of_birth.isoformat(),
                                   "place_of_residence": citizen.residence},
                       "quality": {"front": {"blur": 210.4, "glare": 0.01}},
                       "findings": [], "national_id": citizen.national_id,
                       "timings_ms": {"total": 870}, "versions": {"reader": "reader-1.3"}}
            account_id = None
            if state == "approved":
                account_id = new_id()
                accounts.append({"id": account_id, "kind": "citizen",
                                 "pid_hash": pid_hash(citizen.national_id),
                                 "pid_encrypted": crypto.encrypt(citizen.national_id),
                                 "full_name": citizen.full_name, "level": 1,
                                 "status": "active", "onboarded_case_id": case_id,
                                 "created_at": decided, "updated_at": decided})
                enrolled.append((account_id, case_id))
            in_flight = state in ("capturing", "waiting_register")
            cases.append({
                "id": case_id, "state": state, "channel": "web", "locale": "vi",
                "token_hash": f"{i:064d}", "consent_version": "2026-09",
                "consent_text_hash": "c" * 64, "consented_at": submitted - dt.timedelta(minutes=3),
                "pid_hash": None if state == "capturing" else pid_hash(citizen.national_id),
                "pid_encrypted": None if state == "capturing"
                else crypto.encrypt(citizen.national_id),
                "reading_encrypted": None if state == "capturing"
                else crypto.encrypt(json.dumps(reading)),
                "account_id": account_id, "reason_codes": [reason] if reason else [],
                "created_at": submitted - dt.timedelta(minutes=4),
                "updated_at": decided or pipeline_done,
                "submitted_at": None if state == "capturing" else submitted,
                "decided_at": decided,
                "province": None if state == "capturing" else citizen.province_code,
                "target_level": 1,
                "assignee_id": rng.choice(deciders) if reviewed and (
                    state != "needs_review" or rng.random() < 0.3) else None,
                "assigned_at": pipeline_done + dt.timedelta(minutes=5) if reviewed else None,
                # the review clock runs while the case is in review (cleared when it leaves)
                "review_since": pipeline_done if state == "needs_review" else None,
            })
            path = [("created", "capturing", submitted - dt.timedelta(minutes=4))]
            if state != "capturing":
                path += [("capturing", "submitted", submitted),
                         ("submitted", "processing", submitted + dt.timedelta(seconds=1))]
                if state == "waiting_register":
                    path.append(("processing", "waiting_register", pipeline_done))
                elif reviewed:
                    path.append(("processing", "needs_review", pipeline_done))
                    if decided:
                        path.append(("needs_review", state, decided))
                elif decided:
                    path.append(("processing", state, decided))
                checks += _checks(rng, case_id, state, reason if not in_flight else None,
                                  submitted + dt.timedelta(seconds=2), strict, loose,
                                  rng.choice(enrolled) if enrolled else (None, None))
            events += [{"case_id": case_id, "from_state": a, "to_state": b, "at": at,
                        "actor": "worker" if b != state or not reviewed else "bench-op1"}
                       for a, b, at in path]
            if reviewed and decided:
                decisions.append({"case_id": case_id,
                                  "kind": "approve" if state == "approved" else "reject",
                                  "reason_code": "documents_ok" if state == "approved"
                                  else "face_mismatch",
                                  "note_encrypted": crypto.encrypt("checked against the card"),
                                  "operator_id": rng.choice(deciders), "status": "done",
                                  "at": decided})
            for obj in pool[i % MEDIA_POOL]:
                medias.append({"id": new_id(), "case_id": case_id, "kind": obj.kind,
                               "path": obj.path, "sha256": obj.sha256, "size": obj.size,
                               "content_type": obj.content_type, "created_at": submitted,
                               "expires_at": (decided or now) + dt.timedelta(days=30)})
        for table, rows in ((Account, accounts), (Case, cases), (CaseCheck, checks),
                            (CaseEvent, events), (CaseDecision, decisions),
                            (MediaObject, medias)):
            for start in range(0, len(rows), 2000):
                db.session.execute(db.insert(table.__table__), rows[start:start + 2000])
        db.session.commit()
        seeded = time.perf_counter() - started
        account_ids = [a["id"] for a in accounts]
        case_ids = [c["id"] for c in cases]
        for k in range(audit_entries):
            event = _pick(rng, AUDIT_EVENTS)
            if event.startswith("ops."):
                audit.record(event, actor=rng.choice(list(staff)), commit=False,
                             case_id=rng.choice(case_ids), purpose="review")
            else:
                audit.record(event, account_id=rng.choice(account_ids), client_id="portal-demo",
                             commit=False, method="pwd")
            if k % 2000 == 1999:
                db.session.commit()
        db.session.commit()
        by_state = dict(db.session.execute(db.select(Case.state, db.func.count())
                                           .group_by(Case.state)).all())
        db.session.remove()
    return {"cases": n, "media_pool_cases": MEDIA_POOL, "by_state": by_state,
            "checks": len(checks), "events": len(events), "media_rows": len(medias),
            "accounts": len(accounts), "decisions": len(decisions),
            "audit_entries": audit_entries, "seed_seconds": round(seeded, 1),
            "total_seconds": round(time.perf_counter() - started, 1)}


def _sign_in(client, app, username: str = "bench-sup") -> None:
    from idp.extensions import db
    from idp.models import Operator

    with app.app_context():
        op = db.session.scalar(db.select(Operator).filter_by(username=username))
        data = {"operator_id": op.id, "account_id": op.account_id, "role": op.role,
                "username": op.username, "auth_time": int(time.time()),
                "last_seen": int(time.time()), "sid": None}
        db.session.remove()
    with client.session_transaction() as sess:
        sess["ops"] = data


def _time(client, urls: list[str]) -> tuple[list[float], dict]:
    times, statuses = [], {}
    for url in urls:
        t0 = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        response.close()
    return times, statuses


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(app, rng: random.Random, requests: int, runs: int, dashboard_requests: int) -> dict:
    from ekyc.models import Case
    from idp.extensions import db

    with app.app_context():
        ids = list(db.session.scalars(db.select(Case.id).where(Case.submitted_at.is_not(None),
                                                               Case.consent_version != "bench")))
        review = list(db.session.scalars(db.select(Case.id).where(
            Case.state == "needs_review")))
        db.session.remove()
    client = app.test_client()
    _sign_in(client, app)
    pages = {
        "case page (random case)": lambda: [f"/ops/cases/{rng.choice(ids)}?purpose=review"
                                            for _ in range(requests)],
        "case page (case in review)": lambda: [f"/ops/cases/{rng.choice(review)}?purpose=review"
                                               for _ in range(requests)],
        "queue": lambda: ["/ops/queue"] * requests,
        "dashboard": lambda: ["/ops/dashboard"] * dashboard_requests,
        "audit log (newest page)": lambda: ["/ops/audit"] * dashboard_requests,
    }
    for make in pages.values():  # warm up: templates compiled, pools filled, caches loaded
        _time(client, make()[:5])
    out = {}
    for name, make in pages.items():
        rows = []
        for _ in range(runs):
            times, statuses = _time(client, make())
            rows.append({"median_ms": round(statistics.median(times), 1),
                         "p95_ms": round(_p95(times), 1), "max_ms": round(max(times), 1),
                         "requests": len(times), "statuses": statuses})
        out[name] = {"runs": rows,
                     "median_of_medians_ms": statistics.median(r["median_ms"] for r in rows),
                     "median_of_p95_ms": statistics.median(r["p95_ms"] for r in rows)}
    with app.app_context():  # what the audit page's "verify the chain" button costs
        from idp import audit

        t0 = time.perf_counter()
        checked, _broken, why = audit.verify_chain()
        out["verify_chain (once)"] = {"ms": round((time.perf_counter() - t0) * 1000, 1),
                                      "entries": checked, "intact": why is None}
        db.session.remove()
    return out


def markdown(result: dict) -> str:
    lines = [(f"Database: {result['database']}, {result['seed']['cases']:,} cases, "
              f"{result['audit_entries_now']:,} audit entries"),
             "", ("| page | median of run medians (ms) | p95 per run (ms) | medians per run (ms) "
                  "| statuses |"), "|---|---:|---|---|---|"]
    for name, row in result["pages"].items():
        if "runs" not in row:
            lines.append(f"| {name} | {row['ms']} ({row['entries']:,} entries, "
                         f"intact: {row['intact']}) | | | |")
            continue
        statuses = {}
        for r in row["runs"]:
            for code, count in r["statuses"].items():
                statuses[code] = statuses.get(code, 0) + count
        lines.append(f"| {name} | **{row['median_of_medians_ms']}** | "
                     f"{', '.join(str(r['p95_ms']) for r in row['runs'])} | "
                     f"{', '.join(str(r['median_ms']) for r in row['runs'])} | "
                     f"{', '.join(f'{k}: {v}' for k, v in sorted(statuses.items()))} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--audit", type=int, default=50_000, help="audit entries to seed")
    parser.add_argument("--requests", type=int, default=200, help="requests per run and page")
    parser.add_argument("--dashboard-requests", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default="", help="default: SQLite in --workdir")
    parser.add_argument("--workdir", default="", help="media and SQLite file (default: temp)")
    parser.add_argument("--reuse", action="store_true", help="time an already seeded database")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--json", default="", help="also write the summary to this file")
    args = parser.parse_args(argv)
    import logging

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="ops-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{workdir / 'ops.db'}"
    rng = random.Random(args.seed)
    app = make_app(url, workdir)
    logging.getLogger().setLevel(logging.WARNING)  # one INFO line per audit entry otherwise
    seeded = {"cases": args.cases, "reused": True}
    if not args.reuse:
        migrate(app)
        seeded = seed(app, args.cases, args.audit, rng)
    from idp.extensions import db
    from idp.models import AuditEvent

    pages = measure(app, rng, args.requests, args.runs, args.dashboard_requests)
    with app.app_context():
        entries = db.session.scalar(db.select(db.func.count()).select_from(AuditEvent))
        dialect = db.engine.dialect.name
        db.session.remove()
    result = {"database": dialect, "workdir": str(workdir), "seed": seeded,
              "audit_entries_now": entries, "requests_per_run": args.requests,
              "runs": args.runs, "pages": pages,
              "target": "case page under 300 ms server time with 10,000 cases",
              "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print()
    print(markdown(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
