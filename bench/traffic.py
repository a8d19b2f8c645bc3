"""Citizens' traffic against a running DinhDanh stack: the operations of a national day, at
fixed arrival rates, with every answer checked. Used by `bench/national_day.py` (the 10-minute
load run) and by the fault tests (`tests/stack/`).

Operations (each one "op"; its latency is all of its requests together):
- `password_login`: a cold sign-in, as a browser without cookies does it: the authorization
  request, the login page, the ID number and password posted with the form's hidden fields
  (CSRF), the redirect to the portal with a code, the code exchanged at the token endpoint
  (client_secret_basic, PKCE S256). The citizen keeps the SSO session cookie and the tokens.
- `sso_hop`: a signed-in citizen arrives at another portal: authorization request with the SSO
  session cookie, straight back with a code, code exchange.
- `refresh`: a refresh-token grant; the rotated refresh token replaces the old one.
- `userinfo`: GET userinfo with the citizen's access token.
- `onboarding`: a whole remote onboarding through the public API (consent, case, card front and
  back, liveness challenge, 5 selfie frames, submit) with a synthetic card of a citizen of the
  register stub. The pipeline then runs on the eKYC workers; the case id is kept.

Arrivals are open-loop: each op type has its own clock that schedules the next arrival at its
rate whatever happened to the previous ones, and a pool of `workers` threads runs them. When
the pool is full arrivals wait, and that wait ("lag") is reported, so a generator that cannot
keep up is visible. Every request carries `X-Forwarded-For` with the virtual citizen's own
address (10.x.y.z): the stack runs with TRUSTED_PROXY_HOPS=1, as behind a reverse proxy, so
per-IP limits apply per citizen rather than to the one load-generator address.

    uv run python -m bench.traffic seed-citizens --count 200   # in the stack's environment
"""

from __future__ import annotations

import argparse
import base64
import collections
import dataclasses
import hashlib
import html
import json
import os
import random
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
REDIRECT_URI = "http://127.0.0.1:9/cb"  # never fetched: the code is read from Location
PASSWORD = "Load-Citizen-1"
OPS = ("password_login", "sso_hop", "refresh", "userinfo", "onboarding")
TIMEOUT = 30.0
MAX_STEPS = 8
ACCESS_TOKEN_REUSE = 300.0  # seconds an access token is used for userinfo (it lives 600 s)
# The generator plays the reverse proxy in front of the IdP: like nginx's upstream keep-alive
# (60 s) it drops a connection idle for this long, before gunicorn's --keep-alive (75 s in
# scripts/stack.sh) would close it from the server side while a request is on its way.
IDLE_CLOSE = 50.0


class Unexpected(Exception):
    """An answer the op did not expect (a wrong status, a missing field)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class Target:
    issuer: str
    client_id: str
    client_secret: str
    citizens: list[str]            # national ID numbers of load-test accounts (PASSWORD)
    cards: list[tuple[str, bytes, bytes, list[bytes]]]  # (national_id, front, back, frames)
    # Onboardings cycle through the cards: once every card has been sent, the next ones are
    # repeat attempts of citizens already enrolled (rejected `already_enrolled`).
    redirect_uri: str = REDIRECT_URI
    password: str = PASSWORD


@dataclasses.dataclass
class Event:
    t: float                       # time.monotonic() when the op started
    op: str
    ok: bool
    status: int | None             # the last HTTP status seen; None = no HTTP answer
    latency: float                 # seconds
    error: str | None = None
    lag: float = 0.0               # seconds the op waited for a free worker after its arrival


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


@dataclasses.dataclass
class Report:
    events: list[Event]
    cases: list[tuple[str, str]]   # (case_id, national_id) of submitted onboardings
    started: float
    stopped: float

    def summary(self, since: float | None = None, until: float | None = None) -> dict:
        out = {}
        for op in OPS:
            chosen = [e for e in self.events if e.op == op
                      and (since is None or e.t >= since) and (until is None or e.t < until)]
            if not chosen:
                continue
            good = [e.latency * 1000 for e in chosen if e.ok]
            statuses = collections.Counter(
                str(e.status) if e.status is not None else (e.error or "no answer").split(":")[0]
                for e in chosen if not e.ok)
            out[op] = {"count": len(chosen), "errors": len(chosen) - len(good),
                       "p50_ms": _round(_pct(good, 0.50)), "p95_ms": _round(_pct(good, 0.95)),
                       "p99_ms": _round(_pct(good, 0.99)), "max_ms": _round(max(good or [0])),
                       "lag_p99_ms": _round(_pct([e.lag * 1000 for e in chosen], 0.99)),
                       "statuses": dict(statuses)}
        return out


def _round(v):
    return None if v is None else round(v, 1)


# --------------------------------------------------------------------------- set-up
def _run(cmd: list[str], env: dict | None, what: str, timeout: float = 300.0) -> str:
    full = dict(os.environ)
    full.update(env or {})
    full.setdefault("FLASK_APP", "wsgi")
    done = subprocess.run(cmd, check=False, cwd=ROOT, env=full, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def load_citizen_ids(count: int) -> list[str]:
    """ID numbers of the load-test accounts: Hà Nội (001), women born 1990, serials 8xxxxx,
    skipping any number the register stub's synthetic population uses."""
    from register import seed

    taken = {c.national_id for c in seed.synthetic_citizens()}
    out, serial = [], 800000
    while len(out) < count:
        pid = f"001190{serial:06d}"
        serial += 1
        if pid not in taken:
            out.append(pid)
    return out


def seed_citizens(count: int, password: str = PASSWORD) -> int:
    """Create the load-test accounts that do not exist yet (in the current app's database);
    returns how many were created. One argon2id hash is shared: the accounts are throw-away."""
    from idp import crypto
    from idp.accounts.passwords import hash_password
    from idp.extensions import db
    from idp.models import Account

    hashed = hash_password(password)
    made = 0
    for i, pid in enumerate(load_citizen_ids(count)):
        digest = crypto.keyed_hash("pid", pid)
        if db.session.scalar(db.select(Account.id).filter_by(pid_hash=digest)) is not None:
            continue
        db.session.add(Account(pid_hash=digest, pid_encrypted=crypto.encrypt(pid),
                               password_hash=hashed, level=1, full_name=f"Load Citizen {i}",
                               given_name="Citizen", family_name="Load"))
        made += 1
    db.session.commit()
    return made


def fresh_card_holders(count: int) -> list[str]:
    """ID numbers of register citizens who are alive, hold a card that has not expired and have
    neither an account nor a case in progress (in the current app's database): onboardings of
    new citizens, which run the whole pipeline."""
    import datetime as dt

    from ekyc.models import Case
    from idp import crypto
    from idp.extensions import db
    from idp.models import Account
    from register import seed

    today = dt.date.today()
    out = []
    for citizen in seed.synthetic_citizens()[1:]:
        if citizen.status != "alive" or (citizen.card_expiry_date or today) < today:
            continue
        digest = crypto.keyed_hash("pid", citizen.national_id)
        if db.session.scalar(db.select(Account.id).filter_by(pid_hash=digest)) is not None:
            continue
        if db.session.scalar(db.select(Case.id).filter_by(pid_hash=digest)) is not None:
            continue
        out.append(citizen.national_id)
        if len(out) >= count:
            break
    return out


def render_cards(national_ids: list[str]) -> list[tuple[str, bytes, bytes, list[bytes]]]:
    """Synthetic card photos (front, back) and selfie frames of these register citizens: what a
    citizen's phone sends."""
    from ekyc.document.synth import make_card
    from ekyc.review.demo import selfie_frames
    from register import seed

    people = {c.national_id: c for c in seed.synthetic_citizens()}
    cards = []
    for n, pid in enumerate(national_ids):
        front, back, _truth = make_card(people[pid], seed=1000 + n)
        cards.append((pid, front, back, selfie_frames(people[pid], front)))
    return cards


def setup_target(issuer: str, *, env: dict | None = None, citizens: int = 100,
                 cards: int = 20) -> Target:
    """Register a confidential client and create the load-test citizens in the IdP's database
    (through `flask`, with `env`: the stack's DATABASE_URL, INSTANCE_PATH...), and render cards."""
    venv = ROOT / ".venv" / "bin"
    flask = [str(venv / "flask"), "--app", "wsgi"]
    out = _run([*flask, "clients", "create", "--name", "Load generator",
                "--redirect-uri", REDIRECT_URI, "--grant-type", "authorization_code",
                "--grant-type", "refresh_token", "--auth-method", "client_secret_basic",
                "--scope", "openid profile offline_access", "--first-party", "--json"],
               env, "flask clients create")
    client = json.loads(out[out.index("{"):])
    if citizens:
        _run([str(venv / "python"), "-m", "bench.traffic", "seed-citizens", "--count",
              str(citizens)], env, "seed-citizens")
    holders = []
    if cards:
        out = _run([str(venv / "python"), "-m", "bench.traffic", "card-holders", "--count",
                    str(cards)], env, "card-holders")
        holders = json.loads(out.strip().splitlines()[-1])
    return Target(issuer=issuer.rstrip("/"), client_id=client["client_id"],
                  client_secret=client["client_secret"], citizens=load_citizen_ids(citizens),
                  cards=render_cards(holders))


# --------------------------------------------------------------------------- one citizen
_FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.DOTALL | re.IGNORECASE)
_INPUT = re.compile(r"<(?:input|button)\b([^>]*)>", re.IGNORECASE)
_ATTR = re.compile(r'([\w:-]+)\s*=\s*("([^"]*)"|\'([^\']*)\'|([^\s>]+))')


def _attrs(tag: str) -> dict:
    return {m.group(1).lower(): html.unescape(m.group(3) or m.group(4) or m.group(5) or "")
            for m in _ATTR.finditer(tag)}


def _login_form(page: str, national_id: str, password: str) -> tuple[str, dict]:
    forms = _FORM.findall(page)
    chosen = next((f for f in forms if re.search(r"type\s*=\s*[\"']?password", f[1], re.IGNORECASE)),
                  None)
    if chosen is None:
        raise Unexpected("no login form on the page", 200)
    fields = {}
    for tag in _INPUT.findall(chosen[1]):
        a = _attrs(tag)
        name, kind = a.get("name"), a.get("type", "text").lower()
        if not name:
            continue
        if name == "national_id":
            fields[name] = national_id
        elif kind == "password":
            fields[name] = password
        elif kind == "hidden" or (kind == "submit" and name not in fields):
            fields[name] = a.get("value", "")
    return _attrs(chosen[0]).get("action", ""), fields


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Citizen:
    """A virtual citizen: their browser (cookies), tokens and network address."""

    def __init__(self, national_id: str, address: str):
        self.national_id = national_id
        self.address = address
        self.http = requests.Session()
        self.http.headers["X-Forwarded-For"] = address
        self.access_token: str | None = None
        self.token_time = 0.0
        self.refresh_token: str | None = None
        self.signed_in = False
        self.last_used = time.monotonic()

    def fresh_connections(self) -> None:
        """Drop pooled connections idle for IDLE_CLOSE (the cookies stay)."""
        now = time.monotonic()
        if now - self.last_used > IDLE_CLOSE:
            self.http.close()
        self.last_used = now


class _Ops:
    def __init__(self, target: Target):
        self.t = target
        self.basic = (target.client_id, target.client_secret)
        issuer = target.issuer
        meta = requests.get(issuer + "/.well-known/openid-configuration", timeout=TIMEOUT)
        meta.raise_for_status()
        conf = meta.json()
        self.authz, self.token = conf["authorization_endpoint"], conf["token_endpoint"]
        self.userinfo_url = conf["userinfo_endpoint"]

    # Each returns the last HTTP status; raises Unexpected / requests exceptions.
    def _authorization(self) -> tuple[str, str, str]:
        verifier = secrets.token_urlsafe(32)
        state = secrets.token_urlsafe(12)
        query = urllib.parse.urlencode({
            "response_type": "code", "client_id": self.t.client_id,
            "redirect_uri": self.t.redirect_uri, "scope": "openid profile offline_access",
            "state": state, "nonce": secrets.token_urlsafe(12),
            "code_challenge": _b64(hashlib.sha256(verifier.encode()).digest()),
            "code_challenge_method": "S256"})
        return f"{self.authz}?{query}", verifier, state

    def _code(self, location: str, state: str) -> str:
        if not location.startswith(self.t.redirect_uri):
            raise Unexpected(f"redirect away from the client: {location[:80]}", 302)
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
        if params.get("error") or params.get("state") != [state] or not params.get("code"):
            raise Unexpected(f"authorization answer: {params.get('error')}", 302)
        return params["code"][0]

    def _tokens(self, c: Citizen, data: dict) -> int:
        r = c.http.post(self.token, data=data, auth=self.basic, timeout=TIMEOUT)
        if r.status_code != 200:
            raise Unexpected(f"token endpoint: {r.status_code} {r.text[:120]}", r.status_code)
        body = r.json()
        if not body.get("access_token"):
            raise Unexpected("token endpoint: no access_token", 200)
        c.access_token, c.token_time = body["access_token"], time.monotonic()
        c.refresh_token = body.get("refresh_token") or c.refresh_token
        return r.status_code

    def _exchange(self, c: Citizen, code: str, verifier: str) -> int:
        return self._tokens(c, {"grant_type": "authorization_code", "code": code,
                                "redirect_uri": self.t.redirect_uri, "code_verifier": verifier})

    def password_login(self, c: Citizen) -> int:
        c.http.cookies.clear()
        c.signed_in = False
        url, verifier, state = self._authorization()
        method, data = "GET", None
        for _ in range(MAX_STEPS):
            r = c.http.request(method, url, data=data, allow_redirects=False, timeout=TIMEOUT)
            if r.status_code in (302, 303):
                location = urllib.parse.urljoin(url, r.headers["Location"])
                if location.startswith(self.t.redirect_uri):
                    status = self._exchange(c, self._code(location, state), verifier)
                    c.signed_in = True
                    return status
                method, url, data = "GET", location, None
            elif r.status_code == 200:
                action, data = _login_form(r.text, c.national_id, self.t.password)
                method, url = "POST", urllib.parse.urljoin(url, action or url)
            else:
                raise Unexpected(f"login: {r.status_code} at {urllib.parse.urlsplit(url).path}",
                                 r.status_code)
        raise Unexpected("login: no redirect to the client", None)

    def sso_hop(self, c: Citizen) -> int:
        url, verifier, state = self._authorization()
        r = c.http.get(url, allow_redirects=False, timeout=TIMEOUT)
        if r.status_code not in (302, 303):
            raise Unexpected(f"authorize with session: {r.status_code}", r.status_code)
        return self._exchange(c, self._code(r.headers.get("Location", ""), state), verifier)

    def refresh(self, c: Citizen) -> int:
        old = c.refresh_token
        status = self._tokens(c, {"grant_type": "refresh_token", "refresh_token": old})
        if c.refresh_token == old:
            raise Unexpected("refresh token not rotated", status)
        return status

    def userinfo(self, c: Citizen) -> int:
        r = c.http.get(self.userinfo_url, timeout=TIMEOUT,
                       headers={"Authorization": f"Bearer {c.access_token}"})
        if r.status_code != 200 or "sub" not in r.json():
            raise Unexpected(f"userinfo: {r.status_code}", r.status_code)
        return r.status_code

    def onboarding(self, http: requests.Session, card) -> tuple[int, str]:
        from ekyc.review.demo import send_onboarding

        _pid, front, back, frames = card
        case_id, _token = send_onboarding(http, self.t.issuer, front, back, frames)
        return 202, case_id


# --------------------------------------------------------------------------- the generator
class Traffic:
    """Open-loop arrivals of each op at its rate (per second) until `stop()`."""

    def __init__(self, target: Target, *, rates: dict[str, float], workers: int = 16,
                 seed: int | None = None):
        unknown = set(rates) - set(OPS)
        if unknown:
            raise ValueError(f"unknown ops: {sorted(unknown)}")
        if rates.get("onboarding") and not target.cards:
            raise ValueError("onboarding needs cards (setup_target(cards=N))")
        self.target, self.rates, self.workers = target, dict(rates), workers
        self.random = random.Random(seed)
        self.ops = _Ops(target)
        self.citizens = [Citizen(pid, f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256 or 1}")
                         for i, pid in enumerate(target.citizens, start=1)]
        self._idle = list(self.citizens)
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._cases: list[tuple[str, str]] = []
        self._card_turn = 0
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._slots = threading.BoundedSemaphore(workers)
        self._clocks: list[threading.Thread] = []
        self.started = self.stopped = 0.0

    # -- citizens: each is used by one op at a time
    def _take(self, op: str) -> Citizen | None:
        now = time.monotonic()

        def fits(c: Citizen) -> bool:
            if op == "password_login":
                return True
            if op == "sso_hop":
                return c.signed_in
            if op == "refresh":
                return c.refresh_token is not None
            return c.access_token is not None and now - c.token_time < ACCESS_TOKEN_REUSE

        with self._lock:
            candidates = [i for i, c in enumerate(self._idle) if fits(c)]
            if not candidates:
                return None
            return self._idle.pop(self.random.choice(candidates))

    def _give_back(self, c: Citizen) -> None:
        with self._lock:
            self._idle.append(c)

    def _record(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    def _run_op(self, op: str, arrived: float) -> None:
        start = time.monotonic()
        lag = start - arrived
        citizen = None
        status = None
        try:
            if op == "onboarding":
                with self._lock:
                    card = self.target.cards[self._card_turn % len(self.target.cards)]
                    self._card_turn += 1
                with requests.Session() as http:
                    http.headers["X-Forwarded-For"] = (
                        f"10.200.{self.random.randrange(256)}.{self.random.randrange(1, 255)}")
                    status, case_id = self.ops.onboarding(http, card)
                with self._lock:
                    self._cases.append((case_id, card[0]))
            else:
                citizen = self._take(op)
                if citizen is None and op != "password_login":
                    # nobody is signed in yet (start of a run): sign someone in instead
                    op, citizen = "password_login", self._take("password_login")
                if citizen is None:
                    raise Unexpected("no idle virtual citizen (raise --citizens)", None)
                citizen.fresh_connections()
                status = getattr(self.ops, op)(citizen)
            self._record(Event(start, op, True, status, time.monotonic() - start, None, lag))
        except Unexpected as exc:
            if citizen is not None and exc.status is not None and exc.status < 500:
                citizen.signed_in = False  # a 4xx: start this citizen over with a login
                citizen.refresh_token = citizen.access_token = None
            self._record(Event(start, op, False, exc.status, time.monotonic() - start,
                               str(exc)[:200], lag))
        except requests.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else None
            self._record(Event(start, op, False, code, time.monotonic() - start,
                               f"http: {str(exc)[:180]}", lag))
        except (requests.RequestException, ValueError, KeyError) as exc:
            self._record(Event(start, op, False, None, time.monotonic() - start,
                               f"{type(exc).__name__}: {str(exc)[:160]}", lag))
        finally:
            if citizen is not None:
                self._give_back(citizen)
            self._slots.release()

    def _clock(self, op: str, rate: float) -> None:
        interval = 1.0 / rate
        due = time.monotonic() + self.random.random() * interval
        while not self._stop.is_set():
            wait = due - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                break
            arrived = due
            due += interval
            if not self._slots.acquire(timeout=TIMEOUT):
                self._record(Event(time.monotonic(), op, False, None, 0.0,
                                   "generator: no free worker", time.monotonic() - arrived))
                continue
            if self._stop.is_set():
                self._slots.release()
                break
            self._pool.submit(self._run_op, op, arrived)

    def start(self) -> Traffic:
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="traffic")
        self.started = time.monotonic()
        for op, rate in self.rates.items():
            if rate > 0:
                thread = threading.Thread(target=self._clock, args=(op, rate), daemon=True,
                                          name=f"clock-{op}")
                thread.start()
                self._clocks.append(thread)
        return self

    def stop(self) -> Report:
        self._stop.set()
        for thread in self._clocks:
            thread.join(timeout=TIMEOUT + 5)
        self._pool.shutdown(wait=True)
        self.stopped = time.monotonic()
        with self._lock:
            return Report(list(self._events), list(self._cases), self.started, self.stopped)

    def snapshot(self) -> Report:
        """The events so far, without stopping."""
        with self._lock:
            return Report(list(self._events), list(self._cases), self.started, time.monotonic())


# --------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.traffic", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    seed_cmd = sub.add_parser("seed-citizens", help="create the load-test accounts")
    seed_cmd.add_argument("--count", type=int, default=200)
    holders_cmd = sub.add_parser("card-holders", help="register citizens new to the IdP (JSON)")
    holders_cmd.add_argument("--count", type=int, default=20)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from wsgi import app

    with app.app_context():
        if args.command == "seed-citizens":
            made = seed_citizens(max(1, min(args.count, 100_000)))
            print(f"load-test citizens: {made} created, {args.count} wanted")
        else:
            print(json.dumps(fresh_card_holders(max(1, min(args.count, 5_000)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
