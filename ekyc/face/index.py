"""The 1:N face index: which issued accounts have a face close to this one (duplicate
identities, issue 4).

Exact search: every template of the query's model is compared (recall matters more than
speed here, and a float32 matrix-vector product over 1,000,000 x 128 fits the budget of
50 ms on one core; `bench/face_index.py` measures it). Distances are Euclidean, as the
matcher's.

The index lives in the process and is built from `ekyc_face_templates` (`ekyc.face.templates`)
on first use, then brought up to date before every search by reading only the rows above the
highest id it holds (the watermark), so several workers stay current and a restart loses
nothing. Ids of a sequence are handed out before commit, so a row may become visible after a
higher one: missing ids below the watermark are remembered and asked for again for
`GAP_GRACE_S`. Deleted templates (an account erased) are noticed when they come up as
candidates: the candidates are read back from the database, which also gives their current
account and case.

    from ekyc.face.index import search
    for c in search(encoding, k=5, exclude_account_id=account_id, within=thresholds.loose):
        ...  # c.account_id, c.case_id, c.distance (nearest first, one per account)

Thread-safe: refreshes are serialised; searches read a snapshot and run in parallel (BLAS
releases the GIL).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
from flask import current_app
from sqlalchemy import or_, select

from ekyc.face.templates import FaceTemplate, check_vector, open_sealed
from idp.extensions import db

log = logging.getLogger(__name__)

BLOCK_ROWS = 1 << 16  # rows per block (32 MiB at 128-d): appends never copy the matrix
GAP_GRACE_S = 600.0  # how long a missing id is asked for again (a transaction still open)
MAX_GAPS = 1000  # missing ids remembered at most (the oldest are given up first)
MAX_HOLE = 1000  # a longer run of missing ids is taken as settled (deleted or skipped)
FETCH_ROWS = 5000  # rows per fetch when loading
_EXTENSION = "ekyc_face_index"
_DEFAULT_LOCK = threading.Lock()


@dataclass(frozen=True)
class Candidate:
    """An enrolled face close to the query: its account, the case that enrolled it, the
    Euclidean distance (smaller = more alike) and the template's id."""

    account_id: str
    case_id: str | None
    distance: float
    template_id: int = 0


class _Store:
    """The templates of one model: vectors, squared norms (inf = forgotten) and template ids,
    in blocks of `BLOCK_ROWS` rows. Rows below `n` are never rewritten except to forget one."""

    def __init__(self, dim: int):
        self.dim = dim
        self.blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.n = 0

    def append(self, template_id: int, vector: np.ndarray) -> None:
        b, r = divmod(self.n, BLOCK_ROWS)
        if b == len(self.blocks):
            self.blocks.append((np.zeros((BLOCK_ROWS, self.dim), np.float32),
                                np.full(BLOCK_ROWS, np.inf, np.float32),
                                np.zeros(BLOCK_ROWS, np.int64)))
        vectors, norms, ids = self.blocks[b]
        vectors[r] = vector
        ids[r] = template_id
        norms[r] = float(np.dot(vectors[r], vectors[r]))  # written last: the row is complete
        self.n += 1

    def extend(self, template_ids: np.ndarray, vectors: np.ndarray) -> None:
        """Append many rows at once (the bench's synthetic templates)."""
        done = 0
        while done < len(template_ids):
            b, r = divmod(self.n, BLOCK_ROWS)
            if b == len(self.blocks):
                self.blocks.append((np.zeros((BLOCK_ROWS, self.dim), np.float32),
                                    np.full(BLOCK_ROWS, np.inf, np.float32),
                                    np.zeros(BLOCK_ROWS, np.int64)))
            take = min(BLOCK_ROWS - r, len(template_ids) - done)
            block_v, block_n, block_i = self.blocks[b]
            block_v[r:r + take] = vectors[done:done + take]
            block_i[r:r + take] = template_ids[done:done + take]
            part = block_v[r:r + take]
            block_n[r:r + take] = np.einsum("ij,ij->i", part, part)
            self.n += take
            done += take

    def snapshot(self) -> tuple[list, int]:
        return list(self.blocks), self.n

    def forget(self, row: int) -> None:
        self.blocks[row // BLOCK_ROWS][1][row % BLOCK_ROWS] = np.inf

    @staticmethod
    def scores(blocks: list, n: int, q: np.ndarray) -> np.ndarray:
        """Squared distance minus |q|^2 for every row (inf for forgotten rows): |x|^2 - 2 x.q"""
        out = np.empty(n, np.float32)
        for b, (vectors, norms, _ids) in enumerate(blocks):
            start = b * BLOCK_ROWS
            m = min(n - start, BLOCK_ROWS)
            if m <= 0:
                break
            part = out[start:start + m]
            np.matmul(vectors[:m], q, out=part)
            part *= -2.0
            part += norms[:m]
        return out

    @staticmethod
    def rows(blocks: list, rows: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(template ids, exact float64 distances) of some rows."""
        ids = np.empty(len(rows), np.int64)
        dist = np.empty(len(rows), np.float64)
        q64 = q.astype(np.float64)
        for i, row in enumerate(rows):
            vectors, norms, tids = blocks[row // BLOCK_ROWS]
            r = row % BLOCK_ROWS
            ids[i] = tids[r]
            dist[i] = (np.inf if not np.isfinite(norms[r])
                       else float(np.linalg.norm(vectors[r].astype(np.float64) - q64)))
        return ids, dist


@dataclass
class Hit:
    """One row found in memory: where it is, its template id and exact distance."""

    row: int
    template_id: int
    distance: float


class FaceIndex:
    """An exact 1:N index over the face templates of the database (one per app: see
    `default_index`). `engine` defaults to the app's (`db.engine`)."""

    def __init__(self, engine=None):
        self._engine = engine
        self._lock = threading.RLock()
        self._stores: dict[str, _Store] = {}
        self._high = 0  # the watermark: highest template id seen
        self._gaps: dict[int, float] = {}  # missing id below the watermark -> first missed at
        self.loaded = False

    # -- loading -----------------------------------------------------------------------------

    @property
    def engine(self):
        return self._engine if self._engine is not None else db.engine

    @property
    def watermark(self) -> int:
        return self._high

    def __len__(self) -> int:
        return sum(s.n for s in self._stores.values())

    def add(self, template_id: int, model: str, vector) -> None:
        """Put one template in memory (loading; the bench). Ids must not repeat."""
        vec = check_vector(vector)
        with self._lock:
            self._add(int(template_id), model, vec)
            self._high = max(self._high, int(template_id))

    def add_many(self, template_ids, model: str, vectors) -> None:
        """Put many templates of one model in memory at once (the bench's synthetic ones)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.asarray(template_ids, dtype=np.int64)
        if vectors.ndim != 2 or len(ids) != len(vectors) or not np.all(np.isfinite(vectors)):
            raise ValueError("add_many needs one finite vector per id")
        if len(ids) == 0:
            return
        with self._lock:
            store = self._stores.get(model)
            if store is None:
                store = self._stores[model] = _Store(vectors.shape[1])
            if vectors.shape[1] != store.dim:
                raise ValueError("vectors of another size than the model's")
            store.extend(ids, vectors)
            self._high = max(self._high, int(ids.max()))

    def _add(self, template_id: int, model: str, vec: np.ndarray) -> None:
        store = self._stores.get(model)
        if store is None:
            store = self._stores[model] = _Store(vec.size)
        if vec.size != store.dim:
            log.warning("face template %d skipped: %d dimensions, model %s has %d",
                        template_id, vec.size, model, store.dim)
            return
        store.append(template_id, vec)

    def refresh(self) -> int:
        """Read the templates committed since the last refresh (all of them the first time);
        returns how many were added."""
        t = FaceTemplate.__table__.c
        with self._lock:
            now = time.monotonic()
            self._gaps = {i: at for i, at in self._gaps.items() if now - at < GAP_GRACE_S}
            cond = t.id > self._high
            if self._gaps:
                cond = or_(cond, t.id.in_(sorted(self._gaps)))
            query = select(t.id, t.model, t.vector_encrypted).where(cond).order_by(t.id)
            added = 0
            seen: list[int] = []
            with self.engine.connect() as conn:
                result = conn.execution_options(stream_results=True,
                                                yield_per=FETCH_ROWS).execute(query)
                for template_id, model, sealed in result:
                    self._add(template_id, model, open_sealed(sealed))
                    seen.append(template_id)
                    added += 1
            self._note_ids(seen, now)
            self.loaded = True
            return added

    def _note_ids(self, seen: list[int], now: float) -> None:
        """Advance the watermark; remember the ids skipped on the way (open transactions)."""
        for template_id in seen:
            self._gaps.pop(template_id, None)
        fresh = [i for i in seen if i > self._high]
        prev = self._high if self.loaded else (fresh[0] - 1 if fresh else 0)
        for template_id in fresh:
            if 1 < template_id - prev <= MAX_HOLE + 1:
                for missing in range(prev + 1, template_id):
                    self._gaps[missing] = now
            prev = template_id
        if fresh:
            self._high = fresh[-1]
        if len(self._gaps) > MAX_GAPS:
            for missing in sorted(self._gaps, key=self._gaps.get)[:len(self._gaps) - MAX_GAPS]:
                del self._gaps[missing]

    # -- searching ---------------------------------------------------------------------------

    def nearest(self, vector, model: str, *, pool: int = 5,
                within: float | None = None) -> list[Hit]:
        """In memory only: the `pool` nearest rows of `model` (below `within` if given),
        nearest first, with exact distances."""
        q = check_vector(vector)
        with self._lock:
            store = self._stores.get(str(model))
            if store is None or store.n == 0 or q.size != store.dim:
                return []
            blocks, n = store.snapshot()
        scores = _Store.scores(blocks, n, q)
        return self._select(blocks, scores, q, pool, within)

    @staticmethod
    def _select(blocks, scores, q, pool, within) -> list[Hit]:
        if within is not None:
            bound = within * within - float(np.dot(q, q)) + 1e-4  # float32 rounding slack
            rows = np.flatnonzero(scores < bound)
            if len(rows) > pool:
                rows = rows[np.argpartition(scores[rows], pool - 1)[:pool]]
        elif pool < len(scores):
            rows = np.argpartition(scores, pool - 1)[:pool]
        else:
            rows = np.arange(len(scores))
        ids, dist = _Store.rows(blocks, rows, q)
        order = np.argsort(dist, kind="stable")
        limit = np.inf if within is None else within
        return [Hit(int(rows[i]), int(ids[i]), float(dist[i])) for i in order
                if dist[i] < limit]

    def search(self, encoding, *, k: int = 5, exclude_account_id: str | None = None,
               within: float | None = None) -> list[Candidate]:
        """The `k` nearest enrolled accounts to `encoding` (an `ekyc.face.Encoding`) among the
        templates of its model: one candidate per account (its nearest template), nearest
        first, `exclude_account_id`'s templates left out, only distances < `within` if given.
        Reads the database (refresh, then the candidates' current rows): call it inside an
        app context."""
        if k <= 0:
            return []
        q = check_vector(encoding.vector)
        model = str(encoding.model)
        self.refresh()
        with self._lock:
            store = self._stores.get(model)
            if store is None or store.n == 0 or q.size != store.dim:
                return []
            blocks, n = store.snapshot()
        scores = _Store.scores(blocks, n, q)
        pool = k + 8
        while True:
            hits = self._select(blocks, scores, q, pool, within)
            owners = self._owners([h.template_id for h in hits])
            gone = [h for h in hits if h.template_id not in owners]
            if gone:  # deleted since loaded: forget them and choose again
                with self._lock:
                    for h in gone:
                        store.forget(h.row)
                for h in gone:
                    scores[h.row] = np.inf
                continue
            found: dict[str, Candidate] = {}
            for h in hits:
                account_id, case_id = owners[h.template_id]
                if account_id != exclude_account_id and account_id not in found:
                    found[account_id] = Candidate(account_id, case_id, h.distance,
                                                  h.template_id)
            if len(found) >= k or len(hits) < pool or pool >= n:
                return list(found.values())[:k]
            pool = min(n, pool * 4)

    def _owners(self, template_ids: list[int]) -> dict[int, tuple[str, str | None]]:
        if not template_ids:
            return {}
        t = FaceTemplate.__table__.c
        query = select(t.id, t.account_id, t.case_id).where(t.id.in_(template_ids))
        with self.engine.connect() as conn:
            return {row.id: (row.account_id, row.case_id) for row in conn.execute(query)}

    def memory_bytes(self) -> int:
        """Bytes held by the arrays (allocated blocks, including their unused rows)."""
        return sum(v.nbytes + m.nbytes + i.nbytes
                   for s in self._stores.values() for v, m, i in s.blocks)


def default_index() -> FaceIndex:
    """The current app's index (created on first use, loaded on its first search)."""
    ext = current_app.extensions
    index = ext.get(_EXTENSION)
    if index is None:
        with _DEFAULT_LOCK:
            index = ext.setdefault(_EXTENSION, FaceIndex())
    return index


def search(encoding, *, k: int = 5, exclude_account_id: str | None = None,
           within: float | None = None) -> list[Candidate]:
    """`FaceIndex.search` on the current app's index."""
    return default_index().search(encoding, k=k, exclude_account_id=exclude_account_id,
                                  within=within)


__all__ = ["Candidate", "FaceIndex", "Hit", "default_index", "search"]
