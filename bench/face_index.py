"""Search time and memory of the 1:N face index (`ekyc.face.index`) at 1,000,000 templates, on
one core with single-threaded BLAS.

    taskset -c 0 uv run python bench/face_index.py                     # 1,000,000 templates
    taskset -c 0 uv run python bench/face_index.py --n 200000 --runs 3 --db-rows 20000

Sets OMP/OPENBLAS/MKL_NUM_THREADS=1 before numpy loads and pins itself to `--cpu` (the same as
`taskset -c CPU`). Templates are synthetic but shaped like dlib's: identity centres drawn from
a Gaussian with the mean and covariance of the faces-dev identities' mean encodings, each
template one within-identity sample around its centre (covariance of the faces-dev
residuals). The faces-dev encodings are computed once and cached (`--cache`); without
faces-dev a plain Gaussian of dlib's scale is used and the table says so. Queries are
"genuine" (another sample of an enrolled identity) and "impostor" (a new identity).

Measured: in-memory search (the exact scan: every template of the model compared), median and
p90 over the queries, per run, median over the runs; with and without a `within` limit; the
build time (appending N templates); RSS and bytes per template; exactness against a float64
brute force on a few queries. With `--db-rows R` also the database part on SQLite: loading R
templates from the database (decryption included, rows/s and the extrapolation to N), and the
full `search()` (refresh above the watermark + reading the candidates back). From the
faces-dev impostor pairs it prints how many false candidates a search over N templates would
return at a few thresholds (N x FMR): the 1:N threshold must be far stricter than the 1:1 one.
A benchmark, not a test: nothing asserts.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import hashlib
import json
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ekyc.face.index import FaceIndex

MODEL = "bench-model/1"
CHUNK = 100_000


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def faces_dev_encodings(folder: Path, cache: Path | None) -> dict | None:
    """{vectors, identities, groups, model} of faces-dev (encoded once, then cached)."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return None
    sha = hashlib.sha256(manifest.read_bytes()).hexdigest()[:12]
    path = cache or Path(tempfile.gettempdir()) / f"dinhdanh-face-index-{sha}.npz"
    if not path.is_file():
        from ekyc.face import default_matcher
        from ekyc.face.calibrate import encode_manifest

        print(f"encoding {folder} once (cached in {path}) ...", file=sys.stderr)
        matcher = default_matcher()
        rows, vectors, _missing = encode_manifest(folder, matcher)
        np.savez(path, vectors=vectors.astype(np.float32),
                 identities=np.array([r["identity"] for r in rows]),
                 groups=np.array([r["group"] for r in rows]), model=np.array(str(matcher.model)))
    data = np.load(path)
    return {k: data[k] for k in ("vectors", "identities", "groups", "model")}


class Generator:
    """Synthetic dlib-like templates: centre ~ N(mu, S_between), sample = centre + N(0, S_within)."""

    def __init__(self, faces: dict | None, seed: int):
        self.rng = np.random.default_rng(seed)
        if faces is None:
            self.source = "plain Gaussian (faces-dev not found)"
            self.mu = np.zeros(128)
            self.between = np.eye(128) * 0.09 ** 2
            self.within = np.eye(128) * 0.025 ** 2
        else:
            vectors = faces["vectors"].astype(np.float64)
            ids = faces["identities"]
            names = sorted(set(ids))
            means = np.array([vectors[ids == n].mean(axis=0) for n in names])
            resid = np.concatenate([vectors[ids == n] - means[i] for i, n in enumerate(names)
                                    if (ids == n).sum() > 1])
            self.source = (f"faces-dev ({len(vectors)} encodings, {len(names)} identities, "
                           f"model {faces['model']})")
            self.mu = means.mean(axis=0)
            self.between = np.cov(means, rowvar=False)
            self.within = np.cov(resid, rowvar=False)
        self.lb = np.linalg.cholesky(self.between + 1e-9 * np.eye(128))
        self.lw = np.linalg.cholesky(self.within + 1e-9 * np.eye(128))

    def centres(self, n: int) -> np.ndarray:
        return self.mu + self.rng.standard_normal((n, 128)) @ self.lb.T

    def sample(self, centres: np.ndarray) -> np.ndarray:
        return (centres + self.rng.standard_normal(centres.shape) @ self.lw.T).astype(np.float32)


def timed(fn, queries, cpu: list | None = None) -> list[float]:
    """Wall ms per query; the thread's CPU ms appended to `cpu` when given (on a shared
    machine the wall time also counts waiting for the core)."""
    out = []
    for q in queries:
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn(q)
        out.append((time.perf_counter() - start) * 1000)
        if cpu is not None:
            cpu.append((time.thread_time() - start_cpu) * 1000)
    return out


def runs_summary(all_runs: list[list[float]]) -> dict:
    medians = [statistics.median(r) for r in all_runs]
    p90s = [float(np.percentile(r, 90)) for r in all_runs]
    return {"median_ms": round(statistics.median(medians), 2),
            "p90_ms": round(statistics.median(p90s), 2),
            "run_medians_ms": [round(m, 2) for m in medians]}


def exactness(index: FaceIndex, queries: np.ndarray, all_vectors_fn, k: int) -> dict:
    """Top-k of the index vs a float64 brute force over every template."""
    same = 0
    for q in queries:
        got = [h.template_id for h in index.nearest(q, MODEL, pool=k)]
        best, best_d = None, None
        for ids, vecs in all_vectors_fn():
            d = np.linalg.norm(vecs.astype(np.float64) - q.astype(np.float64), axis=1)
            cand_ids = np.concatenate([best, ids]) if best is not None else ids
            cand_d = np.concatenate([best_d, d]) if best_d is not None else d
            keep = np.argsort(cand_d, kind="stable")[:k]
            best, best_d = cand_ids[keep], cand_d[keep]
        same += int(list(best) == got)
    return {"queries": len(queries), "identical_top_k": same}


def db_part(gen: Generator, rows: int, queries: np.ndarray, n_total: int) -> dict:
    """Load `rows` templates from a SQLite database; time the full search() on it."""
    from cryptography.fernet import Fernet

    from ekyc.face import templates as tpl
    from idp import create_app
    from idp.extensions import db
    from idp.models import Account, new_id

    tmp = Path(tempfile.mkdtemp(prefix="face-index-bench-"))
    app = create_app({"IDP_ENV": "testing", "TESTING": True, "ISSUER": "http://127.0.0.1:8000",
                      "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}", "REDIS_URL": "",
                      "INSTANCE_PATH": str(tmp / "instance"), "SECRET_KEY": "bench-" * 8,
                      "DATA_ENCRYPTION_KEY": Fernet.generate_key().decode(),
                      "PAIRWISE_SECRET": "bench-pairwise", "JOBS_SYNC": True})
    with app.app_context():
        db.create_all()
        start = time.perf_counter()
        vectors = gen.sample(gen.centres(rows))
        accounts = [new_id() for _ in range(rows)]
        db.session.execute(db.insert(Account), [
            {"id": a, "pid_hash": a, "pid_encrypted": "x", "full_name": "Bench"} for a in accounts])
        db.session.execute(db.insert(tpl.FaceTemplate), [
            {"account_id": a, "case_id": None, "model": MODEL, "vector_encrypted": tpl.seal(v)}
            for a, v in zip(accounts, vectors, strict=True)])
        db.session.commit()
        insert_s = time.perf_counter() - start
        index = FaceIndex()
        start = time.perf_counter()
        index.refresh()
        load_s = time.perf_counter() - start
        search_ms = timed(lambda q: index.search(_Enc(q), k=5), queries)
        memory_ms = timed(lambda q: index.nearest(q, MODEL, pool=13), queries)
        refresh_ms = timed(lambda q: index.refresh(), queries)
        db.session.remove()
        db.engine.dispose()
    rate = rows / load_s
    return {"rows": rows, "insert_s": round(insert_s, 1), "load_s": round(load_s, 2),
            "load_rows_per_s": round(rate), "load_extrapolated_s": round(n_total / rate, 1),
            "search_median_ms": round(statistics.median(search_ms), 3),
            "in_memory_median_ms": round(statistics.median(memory_ms), 3),
            "refresh_nothing_new_median_ms": round(statistics.median(refresh_ms), 3)}


class _Enc:
    def __init__(self, vector):
        self.vector, self.model = vector, MODEL


def false_candidates(faces: dict | None, n: int) -> list[dict]:
    """N x FMR(t) from the faces-dev impostor pairs: false candidates per search."""
    if faces is None:
        return []
    v = faces["vectors"].astype(np.float64)
    ids = faces["identities"]
    d = np.linalg.norm(v[:, None, :] - v[None, :, :], axis=2)
    iu = np.triu_indices(len(v), 1)
    impostor = d[iu][ids[iu[0]] != ids[iu[1]]]
    genuine = d[iu][ids[iu[0]] == ids[iu[1]]]
    out = []
    for t in (0.45, 0.4146, 0.40, 0.35, 0.30):
        fmr = float((impostor < t).mean())
        out.append({"threshold": t, "impostor_pairs": int(impostor.size),
                    "fmr": fmr, "false_candidates_per_search": round(fmr * n, 2),
                    "genuine_found": round(float((genuine < t).mean()), 4)})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="templates in the index")
    ap.add_argument("--queries", type=int, default=200, help="queries per run (half genuine)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--within", type=float, default=0.4146, help="a within limit also timed")
    ap.add_argument("--cpu", type=int, default=0, help="core to pin to (-1: do not pin)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--faces", type=Path, default=None, help="faces-dev folder")
    ap.add_argument("--cache", type=Path, default=None, help="faces-dev encodings cache (.npz)")
    ap.add_argument("--db-rows", type=int, default=0, help="also load R templates from SQLite")
    ap.add_argument("--check", type=int, default=5, help="queries checked against brute force")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    command = "taskset -c 0 uv run python bench/face_index.py " + shlex.join(argv or sys.argv[1:])

    if args.faces is None:
        from ekyc.face.calibrate import default_faces_dir
        args.faces = default_faces_dir()
    faces = faces_dev_encodings(args.faces, args.cache)
    gen = Generator(faces, args.seed)

    rss0 = rss_bytes()
    index = FaceIndex()
    start = time.perf_counter()
    genuine_centres = None
    for first in range(0, args.n, CHUNK):
        count = min(CHUNK, args.n - first)
        centres = gen.centres(count)
        if genuine_centres is None:
            genuine_centres = centres[: args.queries // 2].copy()
        index.add_many(np.arange(first + 1, first + count + 1), MODEL, gen.sample(centres))
        del centres
    build_s = time.perf_counter() - start
    rss1 = rss_bytes()

    genuine_q = gen.sample(genuine_centres)
    impostor_q = gen.sample(gen.centres(args.queries - len(genuine_q)))
    queries = np.concatenate([genuine_q, impostor_q])
    for q in queries[:3]:  # warm-up (page faults, BLAS init)
        index.nearest(q, MODEL, pool=args.k)

    plain, within, plain_cpu = [], [], []
    for _ in range(args.runs):
        plain_cpu.append([])
        plain.append(timed(lambda q: index.nearest(q, MODEL, pool=args.k), queries,
                           plain_cpu[-1]))
        within.append(timed(lambda q: index.nearest(q, MODEL, pool=args.k,
                                                    within=args.within), queries))
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    for q in queries:
        index.nearest(q, MODEL, pool=args.k)
    cpu_ratio = (time.process_time() - cpu_start) / (time.perf_counter() - wall_start)

    rank1 = sum(int(h[0].template_id == i + 1) if (h := index.nearest(q, MODEL, pool=1)) else 0
                for i, q in enumerate(genuine_q))

    def chunks():
        store = index._stores[MODEL]
        blocks, n = store.snapshot()
        for b, (vecs, _norms, ids) in enumerate(blocks):
            m = min(n - b * len(ids), len(ids))
            yield ids[:m], vecs[:m]

    result = {
        "command": command,
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "cpu": platform.processor() or platform.machine(),
                    "affinity": sorted(os.sched_getaffinity(0)),
                    "threads": {v: os.environ.get(v) for v in ("OMP_NUM_THREADS",
                                                               "OPENBLAS_NUM_THREADS")}},
        "data": gen.source, "n": args.n, "queries": len(queries), "runs": args.runs, "k": args.k,
        "build_s": round(build_s, 2),
        "memory": {"rss_before_mb": round(rss0 / 2**20, 1), "rss_after_mb": round(rss1 / 2**20, 1),
                   "rss_growth_bytes_per_template": round((rss1 - rss0) / args.n, 1),
                   "arrays_bytes": index.memory_bytes(),
                   "arrays_bytes_per_template": round(index.memory_bytes() / args.n, 1)},
        "search_k": runs_summary(plain),
        "search_k_cpu": runs_summary(plain_cpu),
        "search_within": {"within": args.within, **runs_summary(within)},
        "cpu_over_wall": round(cpu_ratio, 3),
        "genuine_rank1": f"{rank1}/{len(genuine_q)}",
        "exactness": exactness(index, queries[: args.check], chunks, args.k),
        "false_candidates_at_n": false_candidates(faces, args.n),
    }
    if args.db_rows:
        result["database"] = db_part(gen, args.db_rows, queries[:50], args.n)

    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"$ {command}\n")
    print(f"data: {result['data']}; {args.n:,} templates; {len(queries)} queries x {args.runs} "
          f"runs; k={args.k}; affinity {result['machine']['affinity']}; threads "
          f"{result['machine']['threads']}\n")
    m = result["memory"]
    rows = [("search, k nearest: median / p90 (ms)",
             f"{result['search_k']['median_ms']} / {result['search_k']['p90_ms']}"),
            (f"search, within {args.within}: median / p90 (ms)",
             f"{result['search_within']['median_ms']} / {result['search_within']['p90_ms']}"),
            ("search, k nearest, CPU time: median / p90 (ms)",
             f"{result['search_k_cpu']['median_ms']} / {result['search_k_cpu']['p90_ms']}"),
            ("run medians, k nearest (ms)", ", ".join(map(str, result["search_k"]["run_medians_ms"]))),
            ("CPU / wall during search", result["cpu_over_wall"]),
            ("build in memory (s)", result["build_s"]),
            ("RSS before / after build (MiB)", f"{m['rss_before_mb']} / {m['rss_after_mb']}"),
            ("RSS growth per template (bytes)", m["rss_growth_bytes_per_template"]),
            ("index arrays per template (bytes)", m["arrays_bytes_per_template"]),
            ("top-k identical to float64 brute force",
             f"{result['exactness']['identical_top_k']}/{result['exactness']['queries']}"),
            ("genuine queries: own template first", result["genuine_rank1"])]
    if "database" in result:
        d = result["database"]
        rows += [(f"load {d['rows']:,} rows from SQLite, decrypting (s)", d["load_s"]),
                 ("load rate (rows/s); extrapolated to N (s)",
                  f"{d['load_rows_per_s']:,}; {d['load_extrapolated_s']}"),
                 ("refresh with nothing new: median (ms)", d["refresh_nothing_new_median_ms"]),
                 (f"full search() at {d['rows']:,} rows / in-memory part: median (ms)",
                  f"{d['search_median_ms']} / {d['in_memory_median_ms']}")]
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    if result["false_candidates_at_n"]:
        print(f"\nfalse candidates per search at N = {args.n:,} (faces-dev impostor FMR x N):\n")
        print("| threshold | FMR (faces-dev) | false candidates / search | genuine pairs below |")
        print("|---|---|---|---|")
        for r in result["false_candidates_at_n"]:
            print(f"| {r['threshold']} | {r['fmr']:.2e} | {r['false_candidates_per_search']} | "
                  f"{r['genuine_found']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
