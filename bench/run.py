"""DinhDanh IdP versus npm oidc-provider 9.x, on loopback, with one load generator.

    uv run python bench/run.py            # full: 5 runs x 10 s per scenario and server
    uv run python bench/run.py --quick    # smoke: 1 run x 3 s

Starts each server as ONE process on 127.0.0.1, sets it up, runs every scenario N times with
bench/loadgen/loadgen.mjs (Node + undici, the same for both servers), takes medians and writes
bench/results.md (and the raw numbers to bench/results.json). Servers it started are stopped on
exit, whatever happens. A benchmark, not a test: nothing here asserts on timings.

Only the standard library is used, so any Python 3.11 runs it; the project's own commands
(flask, gunicorn) are run through `uv run` from the repository root.
"""

# ruff: noqa: PLW1510, SIM115  (exit codes are checked by hand; server logs stay open while it runs)
from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEER_DIR = BENCH / "peer"
LOADGEN_DIR = BENCH / "loadgen"
LOADGEN = LOADGEN_DIR / "loadgen.mjs"

SCENARIOS = ["client_credentials", "sso_hop", "refresh", "userinfo"]
LABELS = {
    "client_credentials": "client_credentials grants/s",
    "sso_hop": "SSO hops/s (authorize + code exchange)",
    "refresh": "refresh grants/s (rotating)",
    "userinfo": "userinfo requests/s",
}
REDIRECT_URI = "http://127.0.0.1:9999/cb"
NATIONAL_ID = "001199000001"
PASSWORD = "Citizen-Demo-1"

_started: list[subprocess.Popen] = []
_tmpdirs: list[str] = []


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- processes
# CPU pinning (--pin, the default on 2+ cores): the server under test gets SERVER_CPUS, the load
# generator (and Redis, which stands for infrastructure outside the IdP) gets the others, so
# "per core" means one core and the two servers never fight the load generator for a core.
SERVER_CPUS: set[int] | None = None
CLIENT_CPUS: set[int] | None = None


def _affinity(cpus: set[int] | None):
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def start(cmd: list[str], *, env: dict | None = None, cwd: Path = ROOT, stdout=None,
          stderr=None, cpus: set[int] | None = None) -> subprocess.Popen:
    """Start a process in a session of its own, so that stopping it stops its children."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=stdout, stderr=stderr,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=_affinity(cpus))  # noqa: PLW1509 (no threads here)
    _started.append(proc)
    return proc


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=timeout)
    if proc in _started:
        _started.remove(proc)


def cleanup() -> None:
    for proc in list(reversed(_started)):
        try:
            stop(proc)
        except Exception as exc:  # noqa: BLE001 - best effort on the way out
            log(f"could not stop pid {proc.pid}: {exc}")
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


def _on_signal(signum, _frame):
    cleanup()
    sys.exit(128 + signum)


def descendants(pid: int) -> list[int]:
    """pid and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s ({last})")


def run_checked(cmd: list[str], env: dict, what: str, timeout: float = 180.0) -> str:
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=timeout, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise RuntimeError(
            f"{what} failed (exit {res.returncode}): {' '.join(cmd)}\n"
            f"--- stdout ---\n{res.stdout[-3000:]}\n--- stderr ---\n{res.stderr[-3000:]}")
    return res.stdout


def last_json_object(text: str) -> dict:
    """The last JSON object printed (commands may log before it)."""
    dec = json.JSONDecoder()
    found = None
    i = 0
    while True:
        j = text.find("{", i)
        if j < 0:
            break
        try:
            obj, end = dec.raw_decode(text, j)
            if isinstance(obj, dict):
                found = obj
            i = end
        except json.JSONDecodeError:
            i = j + 1
    if found is None:
        raise ValueError(f"no JSON object in: {text[-500:]}")
    return found


# ----------------------------------------------------------------------------- node deps
def ensure_node_deps() -> None:
    if not shutil.which("node") or not shutil.which("npm"):
        raise SystemExit("node and npm are needed (Debian: apt-get install nodejs npm)")
    for d in (PEER_DIR, LOADGEN_DIR):
        lock = d / "package-lock.json"
        marker = d / "node_modules" / ".package-lock.json"
        if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
            log(f"npm ci in {d.relative_to(ROOT)}")
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=d, check=True, timeout=300, stdin=subprocess.DEVNULL)


# ----------------------------------------------------------------------------- servers
class Server:
    name: str
    label: str
    issuer: str
    client_id: str
    client_secret: str
    proc: subprocess.Popen
    config: dict

    def pids(self) -> list[int]:
        """The processes whose CPU and memory count as the server's."""
        return [p for p in descendants(self.proc.pid) if comm(p) not in ("uv",)]

    def stop(self) -> None:
        stop(self.proc)


class PeerServer(Server):
    def __init__(self, logdir: Path):
        self.name = "peer"
        self.label = "oidc-provider"
        port = free_port()
        self.client_id = "bench"
        self.client_secret = secrets.token_urlsafe(32)
        opts = {"port": port, "client-id": self.client_id, "client-secret": self.client_secret,
                "redirect-uri": REDIRECT_URI, "national-id": NATIONAL_ID, "password": PASSWORD}
        cmd = ["node", str(PEER_DIR / "server.js"), *(f"--{k}={v}" for k, v in opts.items())]
        env = dict(os.environ, NODE_ENV="production")
        self.out = open(logdir / "peer.stdout", "w")
        self.err = open(logdir / "peer.stderr", "w")
        self.proc = start(cmd, env=env, stdout=self.out, stderr=self.err, cpus=SERVER_CPUS)
        self.issuer = f"http://127.0.0.1:{port}"
        wait_http(f"{self.issuer}/.well-known/openid-configuration", self.proc)
        version = json.loads(
            (PEER_DIR / "node_modules" / "oidc-provider" / "package.json").read_text())["version"]
        self.config = {
            "command": f"NODE_ENV=production node bench/peer/server.js --port {port} ...",
            "oidc-provider": version,
            "node": subprocess.run(["node", "--version"], capture_output=True,
                                   text=True).stdout.strip(),
            "storage": "oidc-provider default in-memory adapter (LRU, 1000 entries)",
        }


class OurServer(Server):
    def __init__(self, logdir: Path, *, name: str, label: str, database_url: str | None,
                 redis_url: str, threads: int):
        self.name = name
        self.label = label
        port = free_port()
        self.issuer = f"http://127.0.0.1:{port}"
        tmp = tempfile.mkdtemp(prefix="dinhdanh-bench-")
        _tmpdirs.append(tmp)
        database_url = database_url or f"sqlite:///{tmp}/bench.db"
        env = dict(os.environ)
        env.update({
            "IDP_ENV": "development",
            "ISSUER": self.issuer,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            # development secrets are generated here, not in the repository's instance/ folder
            "INSTANCE_PATH": tmp,
        })
        env.pop("VIRTUAL_ENV", None)
        uv = ["uv", "run", "--frozen"]
        flask = [*uv, "flask", "--app", "wsgi"]
        log(f"{name}: db upgrade, seed, clients create")
        run_checked([*flask, "db", "upgrade"], env, "db upgrade")
        run_checked([*flask, "seed"], env, "seed")
        out = run_checked(
            [*flask, "clients", "create", "--name", "bench", "--redirect-uri", REDIRECT_URI,
             "--grant-type", "authorization_code", "--grant-type", "refresh_token",
             "--grant-type", "client_credentials", "--auth-method", "client_secret_basic",
             "--scope", "openid profile offline_access", "--first-party", "--json"],
            env, "clients create")
        client = last_json_object(out)
        self.client_id = client["client_id"]
        self.client_secret = client["client_secret"]
        cmd = [*uv, "gunicorn", "-w", "1", "--threads", str(threads), "-b",
               f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"]
        self.out = open(logdir / f"{name}.stdout", "w")
        self.err = open(logdir / f"{name}.stderr", "w")
        self.proc = start(cmd, env=env, stdout=self.out, stderr=self.err, cpus=SERVER_CPUS)
        wait_http(f"{self.issuer}/.well-known/openid-configuration", self.proc)
        shown_db = database_url.replace(tmp, "<tmp>")
        self.config = {
            "command": f"uv run gunicorn -w 1 --threads {threads} -b 127.0.0.1:{port} wsgi:app",
            "env": f"IDP_ENV=development INSTANCE_PATH=<tmp> DATABASE_URL={shown_db} "
                   f"REDIS_URL={redis_url or '(empty: in-process stand-in)'}",
            "processes": {str(p): cmdline(p)[:120] for p in self.pids()},
        }


class Infra:
    """A backing service (Redis, PostgreSQL) the bench starts, pinned with the load generator."""

    def __init__(self, name: str, proc: subprocess.Popen, url: str, version: str):
        self.name, self.proc, self.url, self.version = name, proc, url, version

    def pids(self) -> list[int]:
        return [p for p in descendants(self.proc.pid) if comm(p) not in ("runuser", "su")]

    def stop(self) -> None:
        stop(self.proc, timeout=20)


def start_redis(logdir: Path) -> Infra | None:
    exe = shutil.which("redis-server")
    if not exe:
        log("redis-server not found (Debian: apt-get install redis-server)")
        return None
    port = free_port()
    proc = start([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                  "--appendonly", "no", "--daemonize", "no"],
                 stdout=open(logdir / "redis.log", "a"), stderr=subprocess.STDOUT,
                 cpus=CLIENT_CPUS)
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split()
    version = next((v.split("=", 1)[1] for v in version if v.startswith("v=")), "?")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return Infra("redis", proc, f"redis://127.0.0.1:{port}/15", version)
        except OSError:
            pass
        time.sleep(0.2)
    stop(proc)
    log("redis-server did not start")
    return None


def start_postgres(logdir: Path) -> Infra | None:
    """A throw-away PostgreSQL cluster in a temporary folder (default settings, fsync on)."""
    import glob
    import pwd

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    runuser = shutil.which("runuser")
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        pw = None
    if not bins or not runuser or pw is None or os.geteuid() != 0:
        log("PostgreSQL not usable here (needs /usr/lib/postgresql/*/bin, a postgres user and "
            "root; Debian: apt-get install postgresql)")
        return None
    pgbin = Path(bins[-1])
    tmp = tempfile.mkdtemp(prefix="dinhdanh-bench-pg-")
    _tmpdirs.append(tmp)
    os.chmod(tmp, 0o755)
    os.chown(tmp, pw.pw_uid, pw.pw_gid)
    as_pg = [runuser, "-u", "postgres", "--"]
    res = subprocess.run([*as_pg, str(pgbin / "initdb"), "-D", f"{tmp}/data", "-A", "trust",
                          "-U", "postgres", "--no-sync"], capture_output=True, text=True,
                         timeout=120, stdin=subprocess.DEVNULL, cwd=tmp)
    if res.returncode != 0:
        log(f"initdb failed: {res.stderr[-800:]}")
        return None
    port = free_port()
    proc = start([*as_pg, str(pgbin / "postgres"), "-D", f"{tmp}/data", "-p", str(port),
                  "-k", tmp, "-c", "listen_addresses=127.0.0.1"],
                 cwd=Path(tmp), stdout=open(logdir / "postgres.log", "a"),
                 stderr=subprocess.STDOUT, cpus=CLIENT_CPUS)
    psql = str(pgbin / "psql")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        r = subprocess.run([psql, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-tAc",
                            "SELECT current_setting('server_version')"],
                           capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        if r.returncode == 0:
            subprocess.run([psql, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c",
                            "CREATE DATABASE dinhdanh_bench"], capture_output=True, timeout=30,
                           check=True, stdin=subprocess.DEVNULL)
            return Infra("postgres", proc,
                         f"postgresql+psycopg://postgres@127.0.0.1:{port}/dinhdanh_bench",
                         r.stdout.strip())
        time.sleep(0.3)
    stop(proc)
    log("PostgreSQL did not start")
    return None


# ----------------------------------------------------------------------------- load
def run_loadgen(server: Server, scenario: str, args, infra: list[Infra]) -> dict:
    pids = server.pids()
    infra_pids = [p for i in infra for p in i.pids()]
    opts = {"issuer": server.issuer, "client-id": server.client_id,
            "client-secret": server.client_secret, "redirect-uri": REDIRECT_URI,
            "national-id": NATIONAL_ID, "password": PASSWORD, "scenario": scenario,
            "connections": args.connections, "duration": args.duration, "warmup": args.warmup,
            "pids": ",".join(map(str, pids)), "infra-pids": ",".join(map(str, infra_pids))}
    # --name=value: a value may start with "-" (client secrets do)
    cmd = ["node", str(LOADGEN), *(f"--{k}={v}" for k, v in opts.items())]
    budget = args.warmup + args.duration + 120 + args.connections * 5
    proc = start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cpus=CLIENT_CPUS)
    try:
        stdout, stderr = proc.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        stop(proc)
        return {"scenario": scenario, "fatal": f"load generator exceeded {budget} s"}
    finally:
        if proc in _started:
            _started.remove(proc)
    res = subprocess.CompletedProcess(cmd, proc.returncode, stdout.decode(errors="replace"),
                                      stderr.decode(errors="replace"))
    try:
        out = last_json_object(res.stdout)
    except ValueError:
        out = {"scenario": scenario, "fatal": f"exit {res.returncode}: {res.stderr[-1500:]}"}
    if res.stderr.strip() and "fatal" not in out:
        out["stderr"] = res.stderr[-500:]
    # RSS of the whole server (all its processes) right after the run, and the peak
    rss = hwm = 0
    for v in (out.get("server") or {}).values():
        if v:
            rss += v.get("rss_kb", 0)
            hwm += v.get("hwm_kb", 0)
    out["rss_mib"] = round(rss / 1024, 1)
    out["hwm_mib"] = round(hwm / 1024, 1)
    return out


def run_logged(server: Server, scenario: str, i: int, args, infra: list[Infra]) -> dict:
    r = run_loadgen(server, scenario, args, infra)
    if "fatal" in r:
        log(f"{server.name} {scenario} run {i + 1}: FAILED {r['fatal'][:600]}")
    else:
        flag = f"  ERRORS={r['errors']} e.g. {r['error_samples'][:1]}" if r["errors"] else ""
        log(f"{server.name} {scenario} run {i + 1}/{args.runs}: {r['rate']}/s "
            f"p50 {r['latency_ms']['p50']} ms p99 {r['latency_ms']['p99']} ms "
            f"cpu {r['server_cpu_cores']} rss {r['rss_mib']} MiB "
            f"other load {r.get('other_cpu_cores')}{flag}")
    return r


def summarize(runs: list[dict]) -> dict:
    good = [r for r in runs if "fatal" not in r]
    if not good:
        return {"runs": runs, "ok": False, "fatal": runs[0].get("fatal") if runs else "no run"}

    def med(f):
        vals = [f(r) for r in good if f(r) is not None]
        return round(statistics.median(vals), 2) if vals else None

    errors = sum(r["errors"] for r in good)
    samples = []
    for r in good:
        samples.extend(r["error_samples"])
    return {
        "ok": len(good) == len(runs),
        "n": len(good),
        "rate": med(lambda r: r["rate"]),
        "rates": [r["rate"] for r in good],
        "p50": med(lambda r: r["latency_ms"]["p50"]),
        "p99": med(lambda r: r["latency_ms"]["p99"]),
        "errors": errors,
        "error_samples": samples[:5],
        "server_cpu_cores": med(lambda r: r["server_cpu_cores"]),
        "loadgen_cpu_cores": med(lambda r: r["loadgen_cpu_cores"]),
        "infra_cpu_cores": med(lambda r: r.get("infra_cpu_cores")),
        "other_cpu_cores": med(lambda r: r.get("other_cpu_cores")),
        "rss_mib": good[-1]["rss_mib"],
        "hwm_mib": max(r["hwm_mib"] for r in good),
        "refresh_setup": good[-1].get("refresh_setup"),
        "login_trail": good[-1].get("login_trail"),
        "runs": runs,
    }


# ----------------------------------------------------------------------------- report
def machine_facts() -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip() or "(no commit yet)"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
        "commit": commit,
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{float(v):,.1f}{unit}"
    return f"{v}{unit}"


def ratio(a, b):
    if not a or not b:
        return None
    return a / b


OURS = {
    # name: (label, database, real Redis?)
    "ours-pg": ("DinhDanh IdP, PostgreSQL + Redis", "postgres", True),
    "ours-redis": ("DinhDanh IdP, SQLite + Redis", "sqlite", True),
    "ours-memory": ("DinhDanh IdP, SQLite + in-process Redis stand-in", "sqlite", False),
}
HEADLINE = "ours-pg"
OTHER_LOAD_FLAG = 0.25  # cores used by other jobs on the machine that make a line suspect


def table(ours: dict, peer: dict) -> list[str]:
    lines = [
        ("| scenario | ours /s | oidc-provider /s | ratio ours/peer | ours p50 / p99 ms "
        "| peer p50 / p99 ms | ours RSS (peak) MiB | peer RSS (peak) MiB | errors ours / peer |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in SCENARIOS:
        o, p = ours.get(s), peer.get(s)
        if not o and not p:
            continue
        o = o or {}
        p = p or {}
        r = ratio(o.get("rate"), p.get("rate"))
        mark = "" if r is None else (" ✅" if r >= 1.0 else " ❌")

        def flag(x):
            bad = (x and (not x.get("ok", True) or x.get("errors")
                          or (x.get("other_cpu_cores") or 0) > OTHER_LOAD_FLAG))
            return " ⚠" if bad else ""

        lines.append(
            f"| {LABELS[s]} | {fmt(o.get('rate'))}{flag(o)} | {fmt(p.get('rate'))}{flag(p)} "
            f"| {'n/a' if r is None else f'{r:.2f}'}{mark} "
            f"| {fmt(o.get('p50'))} / {fmt(o.get('p99'))} "
            f"| {fmt(p.get('p50'))} / {fmt(p.get('p99'))} "
            f"| {fmt(o.get('rss_mib'))} ({fmt(o.get('hwm_mib'))}) "
            f"| {fmt(p.get('rss_mib'))} ({fmt(p.get('hwm_mib'))}) "
            f"| {o.get('errors', 'n/a')} / {p.get('errors', 'n/a')} |")
    return lines


def write_report(data: dict, path: Path) -> None:
    m = data["machine"]
    a = data["args"]
    res = data["results"]
    peer = res.get("peer", {})
    lines = [
        "# Benchmark results: DinhDanh IdP vs oidc-provider",
        "",
        f"Generated by `{data['command']}` on {m['date']}."
        + (" **Partial: the run was interrupted or is still going.**"
           if data.get("partial") else ""),
        "",
        (f"- Machine: {m['nproc']} cores ({m['cpu']}), {m['memory']} RAM, Linux {m['kernel']}, "
        f"Python {m['python']}, Node {m['node']}; commit {m['commit']}; load average at start "
        f"{m.get('loadavg', '?')}."),
        (f"- Load: {a['connections']} connections (closed loop, keep-alive), {a['warmup']} s "
        f"warm-up then {a['duration']} s measured, {a['runs']} run(s) per line; rate, p50 and "
        "p99 are each the median over the runs."),
        (f"- CPU pinning: each server (all its processes and threads) on CPU "
         f"{data['pinning']['server']}; load generator, Redis and PostgreSQL on CPU(s) "
         f"{data['pinning']['client']}. So every rate is what one core gives."
         if a.get("pin") else "- CPU pinning: off (server and load generator share all cores)."),
        ("- RSS: VmRSS of the server's processes summed (gunicorn master + worker; the node "
        "process), right after the last run of the line; in brackets the peak (VmHWM)."),
        ("- ✅ ratio >= 1.0, ❌ below. ⚠ = errors, a failed run, or more than "
        f"{OTHER_LOAD_FLAG} cores of other jobs on the machine during the runs (see the CPU "
        "table and results.json)."),
        "",
    ]
    ours_names = [n for n in OURS if n in res]
    for n in ours_names:
        srv = data["servers"][n]
        head = (" — headline: the production configuration" if n == HEADLINE
                else " — for comparison")
        lines += [f"## {srv['label']}{head}", ""]
        lines += table(res[n], peer)
        lines.append("")
        cc = res[n].get("client_credentials") or {}
        if cc.get("rate"):
            cores = cc.get("server_cpu_cores") or 0
            per_cpu = f"{cc['rate'] / cores:,.1f}" if cores else "n/a"
            lines.append(
                f"client_credentials per core: {cc['rate']:,.1f} grants/s on one core "
                f"(floor: 120/s per core, {'met' if cc['rate'] >= 120 else 'NOT met'}); the "
                f"server used {cores:.2f} cores of CPU meanwhile, i.e. {per_cpu} grants per "
                "CPU-second.")
            lines.append("")
    if not ours_names and peer:
        lines += ["## oidc-provider alone (our IdP was not benchmarked in this run)", ""]
        lines += table({}, peer)
        lines.append("")

    shown = [n for n in [*OURS, "peer"] if n in res]
    lines += ["## CPU during the measured window (median over the runs, in cores)", "",
              ("server = the server under test; infra = its Redis/PostgreSQL; load = the load "
              "generator; other = everything else on the machine (other people's jobs)."), "",
              "| scenario | " + " | ".join(f"{n}: server / infra / load / other" for n in shown)
              + " |",
              "|---|" + "---:|" * len(shown)]
    for s in SCENARIOS:
        cells = []
        for n in shown:
            r = res[n].get(s) or {}
            cells.append(" / ".join(fmt(r.get(k)) for k in (
                "server_cpu_cores", "infra_cpu_cores", "loadgen_cpu_cores", "other_cpu_cores")))
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += ["", "## Server configurations", ""]
    for n, srv in data["servers"].items():
        lines.append(f"- **{n}** ({srv['label']}): " + "; ".join(
            f"{k}: `{v}`" if k == "command" else f"{k}: {v}" for k, v in srv["config"].items()
            if k != "processes"))
    problems = data.get("problems") or []
    if problems:
        lines += ["", "## Problems during this run", ""]
        lines += [f"- {p}" for p in problems]
    lines.append("")
    path.write_text("\n".join(lines))


# ----------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=int, default=10, help="measured seconds per run")
    ap.add_argument("--warmup", type=int, default=3, help="warm-up seconds per run")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=8, help="gunicorn threads for our IdP")
    ap.add_argument("--servers", default="peer," + ",".join(OURS),
                    help="comma list of peer, " + ", ".join(OURS))
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                    help="pin the server to the last CPU and the load generator to the others "
                         "(default on when there are 2+ CPUs)")
    ap.add_argument("--quick", action="store_true", help="1 run x 3 s, 1 s warm-up (smoke)")
    ap.add_argument("--out", default=str(BENCH / "results.md"))
    ap.add_argument("--json", default=str(BENCH / "results.json"))
    argv = sys.argv[1:]
    args = ap.parse_args(argv)
    if args.quick:
        args.runs, args.duration, args.warmup = 1, 3, 1
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    for s in args.scenarios:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s}")
    if min(args.runs, args.duration, args.connections, args.threads) < 1 or args.warmup < 0:
        ap.error("--runs, --duration, --connections and --threads must be >= 1")
    # bounded whatever is asked: at most 20 runs of 120 s, 256 connections
    args.runs = min(args.runs, 20)
    args.duration = min(args.duration, 120)
    args.warmup = min(args.warmup, 60)
    args.connections = min(args.connections, 256)
    wanted = [s for s in args.servers.split(",") if s]
    for n in wanted:
        if n != "peer" and n not in OURS:
            ap.error(f"unknown server {n}")
    global SERVER_CPUS, CLIENT_CPUS
    cpus = sorted(os.sched_getaffinity(0))
    if args.pin and len(cpus) >= 2:
        SERVER_CPUS, CLIENT_CPUS = {cpus[-1]}, set(cpus[:-1])
    else:
        args.pin = False

    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    ensure_node_deps()
    logdir = Path(tempfile.mkdtemp(prefix="dinhdanh-bench-logs-"))
    log(f"server logs in {logdir}")
    data = {
        "command": "uv run python bench/run.py" + ("".join(f" {x}" for x in argv)),
        "machine": machine_facts(),
        "args": {k: v for k, v in vars(args).items() if k in
                 ("runs", "duration", "warmup", "connections", "threads", "scenarios", "pin")},
        "pinning": {"server": sorted(SERVER_CPUS or []), "client": sorted(CLIENT_CPUS or [])},
        "servers": {},
        "results": {},
        "problems": [],
    }

    # Start every server first, then interleave: for each scenario and run, every server in
    # turn (the order rotating from run to run), so that a burst of other load on the machine
    # hits all of them alike instead of one server's whole series.
    started: dict[str, tuple[Server, list[Infra]]] = {}
    try:
        for name in wanted:
            infra: list[Infra] = []
            try:
                if name == "peer":
                    log("starting oidc-provider")
                    server = PeerServer(logdir)
                else:
                    label, database, want_redis = OURS[name]
                    if not (ROOT / "wsgi.py").exists():
                        raise RuntimeError("wsgi.py does not exist yet; skipped")
                    database_url = None
                    redis_url = ""
                    if database == "postgres":
                        pg = start_postgres(logdir)
                        if pg is None:
                            raise RuntimeError("PostgreSQL unavailable; skipped")
                        infra.append(pg)
                        database_url = pg.url
                    if want_redis:
                        redis = start_redis(logdir)
                        if redis is None:
                            raise RuntimeError("redis-server unavailable; skipped")
                        infra.append(redis)
                        redis_url = redis.url
                    log(f"starting our IdP ({name}: {label})")
                    server = OurServer(logdir, name=name, label=label, database_url=database_url,
                                       redis_url=redis_url, threads=args.threads)
                    for i in infra:
                        server.config[i.name] = f"{i.version}, pinned with the load generator"
            except Exception as exc:  # noqa: BLE001 - report and go on with the next server
                msg = f"{name}: {type(exc).__name__}: {exc}".replace("\n", " ")[:1500]
                data["problems"].append(msg)
                log(msg)
                for i in reversed(infra):
                    i.stop()
                continue
            started[name] = (server, infra)
            data["servers"][name] = {"label": server.label, "issuer": server.issuer,
                                     "config": server.config}
            data["results"][name] = {}

        names = list(started)
        for scenario in args.scenarios:
            runs: dict[str, list[dict]] = {n: [] for n in names}
            for i in range(args.runs):
                k = i % max(len(names), 1)
                for name in names[k:] + names[:k]:
                    server, infra = started[name]
                    if server.proc.poll() is not None:
                        continue
                    runs[name].append(run_logged(server, scenario, i, args, infra))
                    if server.proc.poll() is not None:
                        msg = f"{name} exited ({server.proc.returncode}) during {scenario}"
                        data["problems"].append(msg)
                        log(msg)
            for name in names:
                r = data["results"][name][scenario] = summarize(runs[name])
                if not r.get("ok", False) or r.get("errors"):
                    data["problems"].append(
                        f"{name} {scenario}: {r.get('fatal') or ''} {r.get('errors', 0)} errors; "
                        f"samples: {r.get('error_samples', [])[:2]}".replace("\n", " ")[:900])
                if (r.get("other_cpu_cores") or 0) > OTHER_LOAD_FLAG:
                    data["problems"].append(
                        f"{name} {scenario}: other jobs used {r['other_cpu_cores']} cores during "
                        "the runs (median); the numbers of this line are suspect")
            if scenario != args.scenarios[-1]:
                save(data, args, partial=True)
    finally:
        for name, (server, infra) in started.items():
            tail = ""
            try:
                server.err.flush()
                tail = Path(server.err.name).read_text()[-1500:]
            except (OSError, AttributeError):
                pass
            server.stop()
            if tail.strip():
                data["servers"][name]["stderr_tail"] = tail
            for i in reversed(infra):
                i.stop()

    save(data, args, partial=False)
    print(Path(args.out).read_text())
    return 0


def save(data: dict, args, *, partial: bool) -> None:
    data["partial"] = partial
    Path(args.json).write_text(json.dumps(data, indent=1))
    write_report(data, Path(args.out))
    log(f"wrote {args.out} and {args.json}" + (" (partial)" if partial else ""))


if __name__ == "__main__":
    sys.exit(main())
