"""The audit log page (`ops.audit_log`, supervisors and auditors): the hash-chained log of
`idp.audit`, newest first, filtered and paged by `id` (keyset: no OFFSET, so the last page costs
what the first does), and a button that recomputes the chains (`idp.audit.verify_chain`).

The log is several chains (`AUDIT_CHAINS`), each with its own `seq`, so pages follow the entry
`id`: one sequence over every chain, given out as entries are written, so the page reads in the
order entries were appended (chain 0 keeps the order of the log from before the split).

Entries hold ids and codes, never personal data (see `idp.audit`), so they are shown as stored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from flask import render_template, request
from flask_babel import gettext as _

from idp import audit
from idp.extensions import db
from idp.models import AuditEvent

from . import bp
from .auth import actor, require

PAGE = 50  # entries per page
FILTERS = ("event", "actor", "account", "case")  # query parameters


@dataclass
class Verdict:
    """The result of a chain verification, for the page."""

    checked: int
    why: str | None
    seq: int | None = None  # of the first broken entry, None at the end of the chain
    event: str | None = None
    at: object = None
    chain: int | None = None  # of the first broken entry

    @classmethod
    def run(cls) -> Verdict:
        checked, broken, why = audit.verify_chain()
        if broken is None:
            return cls(checked, why)
        return cls(checked, why, broken.seq, broken.event, broken.at, broken.chain)

    @property
    def intact(self) -> bool:
        return self.why is None


def _int(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else None


def _filters() -> dict[str, str]:
    return {k: v for k in FILTERS if (v := request.args.get(k, "").strip()[:100])}


def _like_prefix(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _query(filters: dict[str, str]):
    q = db.select(AuditEvent).where(AuditEvent.seq.is_not(None))
    if "event" in filters:
        q = q.where(AuditEvent.event.like(_like_prefix(filters["event"]), escape="\\"))
    if "actor" in filters:
        q = q.where(AuditEvent.actor == filters["actor"])
    if "account" in filters:  # a shortened id (as the page shows it) finds the account too
        q = q.where(AuditEvent.account_id.like(_like_prefix(filters["account"]), escape="\\"))
    if "case" in filters:
        q = q.where(AuditEvent.detail["case_id"].as_string() == filters["case"])
    return q


def _page(filters: dict[str, str], before: int | None, after: int | None):
    """(entries newest first, id for an older page or None, id for a newer page or None)."""
    q = _query(filters)
    if after is not None:  # going back towards the newest entries
        rows = list(db.session.scalars(q.where(AuditEvent.id > after)
                                       .order_by(AuditEvent.id).limit(PAGE + 1)))
        newer = rows[PAGE - 1].id if len(rows) > PAGE else None
        rows = list(reversed(rows[:PAGE]))
        older = rows[-1].id if rows else None
        return rows, older, newer
    if before is not None:
        q = q.where(AuditEvent.id < before)
    rows = list(db.session.scalars(q.order_by(AuditEvent.id.desc()).limit(PAGE + 1)))
    older = rows[PAGE - 1].id if len(rows) > PAGE else None
    rows = rows[:PAGE]
    newer = rows[0].id if rows and before is not None else None
    return rows, older, newer


def detail_items(entry: AuditEvent) -> list[tuple[str, str]]:
    items = []
    for key, value in sorted((entry.detail or {}).items()):
        items.append((key, value if isinstance(value, str)
                      else json.dumps(value, ensure_ascii=False)))
    return items


def reason(why: str | None) -> str:
    """The verification's finding in the reader's language (verify_chain speaks English; the
    chain it names, "(chain 3)" at the end, is the `Verdict`'s `chain`)."""
    if why is None:
        return ""
    why = re.sub(r" \(chain \d+\)$", "", why)
    known = (("not chained", _("the entry has no place in the chain (no sequence number)")),
             ("seq ", _("entries are missing before it")),
             ("prev_hash", _("it does not carry the previous entry's hash (an entry was "
                             "removed or inserted)")),
             ("content does not match", _("its content does not match its hash: the entry "
                                          "was changed")),
             ("the chain head is missing", _("the chain head is missing: whether entries were "
                                             "removed from the end cannot be told")),
             ("the chain head", _("the chain head counts a different number of entries: "
                                  "entries were removed from, or added to, the end")))
    return next((text for prefix, text in known if why.startswith(prefix)), why)


@bp.route("/audit", methods=["GET", "POST"])
@require("supervisor", "auditor")
def audit_log():
    filters = _filters()
    before, after = _int("before"), _int("after")
    verdict, who = None, actor()  # who first: verify_chain() empties the session's identity map
    if request.method == "POST":  # recompute before this view's own entry is appended
        verdict = Verdict.run()
    # prefixed: "event" and "actor" are record()'s own arguments
    detail = {**{f"filter_{k}": v for k, v in filters.items()}, "before": before, "after": after}
    if verdict is not None:
        detail["verified"] = "intact" if verdict.intact else "broken"
    audit.record("ops.audit_viewed", actor=who,
                 **{k: v for k, v in detail.items() if v is not None})
    rows, older, newer = _page(filters, before, after)  # after the commit: nothing to reload
    return render_template("ops/audit.html", rows=rows, older=older, newer=newer,
                           filters=filters, verdict=verdict, reason=reason,
                           detail_items=detail_items)
