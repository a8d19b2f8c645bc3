// The one load generator bench/ uses for BOTH OpenID Providers (ours and oidc-provider).
//
//   node loadgen.mjs --issuer http://127.0.0.1:8401 --client-id ID --client-secret SECRET \
//     --scenario client_credentials|sso_hop|refresh|userinfo \
//     [--connections 16] [--duration 10] [--warmup 3] [--pids 123,456]
//
// Closed loop: --connections virtual users, each with its own keep-alive connection (one undici
// Pool of that many connections, no pipelining), each sending its next request as soon as the
// previous one is answered. A warm-up of --warmup seconds is run and thrown away, then
// --duration seconds are measured. Everything is discovered from
// /.well-known/openid-configuration. Prints one JSON object on stdout.
//
// Set-up (not measured): one browser-like login through the real authorization endpoint (follow
// redirects, fill the login form's national id and password, keep every cookie), which gives
// the SSO session cookie(s). The refresh and userinfo scenarios then give each virtual user its
// own refresh token / access token through one SSO hop each.
//
// Every answer is checked; a non-2xx or otherwise unexpected answer is an error (counted,
// first few kept as samples) and is not counted as a completed operation.
//
// Bounded: every request has a timeout, each virtual user stops at the deadline, and the whole
// process exits on its own at warmup + duration + 60 s whatever happens.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { parseArgs } from 'node:util';

import { Pool } from 'undici';

const { values: args } = parseArgs({
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string', default: 'http://127.0.0.1:9999/cb' },
    'national-id': { type: 'string', default: '001199000001' },
    password: { type: 'string', default: 'Citizen-Demo-1' },
    scenario: { type: 'string' },
    connections: { type: 'string', default: '16' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    pids: { type: 'string', default: '' },
    'infra-pids': { type: 'string', default: '' },
    'request-timeout': { type: 'string', default: '10' },
  },
});

const SCENARIOS = ['client_credentials', 'sso_hop', 'refresh', 'userinfo'];
for (const required of ['issuer', 'client-id', 'client-secret', 'scenario']) {
  if (!args[required]) {
    console.error(`missing --${required}`);
    process.exit(2);
  }
}
if (!SCENARIOS.includes(args.scenario)) {
  console.error(`--scenario must be one of ${SCENARIOS.join(', ')}`);
  process.exit(2);
}

const CONNECTIONS = Number(args.connections);
const DURATION_MS = Number(args.duration) * 1000;
const WARMUP_MS = Number(args.warmup) * 1000;
const TIMEOUT_MS = Number(args['request-timeout']) * 1000;
const PIDS = args.pids ? args.pids.split(',').filter(Boolean).map(Number) : [];
const INFRA_PIDS = args['infra-pids'] ? args['infra-pids'].split(',').filter(Boolean).map(Number) : [];
const REDIRECT_URI = args['redirect-uri'];
const MAX_SETUP_STEPS = 12;
const MAX_ERROR_SAMPLES = 5;

// Hard stop, whatever happens.
const hardStop = setTimeout(() => {
  console.error('loadgen: hard time limit reached, exiting');
  process.exit(3);
}, WARMUP_MS + DURATION_MS + 60_000 + CONNECTIONS * 5_000);
hardStop.unref();

const issuerUrl = new URL(args.issuer);
const ORIGIN = issuerUrl.origin;
const pool = new Pool(ORIGIN, {
  connections: CONNECTIONS,
  pipelining: 1,
  headersTimeout: TIMEOUT_MS,
  bodyTimeout: TIMEOUT_MS,
  keepAliveTimeout: 30_000,
});

const BASIC = `Basic ${Buffer.from(
  `${encodeURIComponent(args['client-id'])}:${encodeURIComponent(args['client-secret'])}`,
).toString('base64')}`;

class Unexpected extends Error {}

function pathOf(url) {
  const u = new URL(url, ORIGIN);
  if (u.origin !== ORIGIN) throw new Unexpected(`refusing to leave ${ORIGIN}: ${u.href}`);
  return u.pathname + u.search;
}

async function request(method, url, { headers = {}, body } = {}) {
  const res = await pool.request({ method, path: pathOf(url), headers, body });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

function header(res, name) {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function form(obj) {
  return new URLSearchParams(obj).toString();
}

const FORM_HEADERS = { 'content-type': 'application/x-www-form-urlencoded' };

function parseJson(res, what) {
  try {
    return JSON.parse(res.text);
  } catch {
    throw new Unexpected(`${what}: HTTP ${res.status}, body is not JSON: ${res.text.slice(0, 200)}`);
  }
}

// ---------------------------------------------------------------- cookie jar (one host)
class CookieJar {
  constructor() {
    this.cookies = new Map();
  }

  take(res) {
    let set = res.headers['set-cookie'];
    if (!set) return;
    if (!Array.isArray(set)) set = [set];
    for (const line of set) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let expired = value === '';
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        const key = k.trim().toLowerCase();
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v.trim()) < Date.now()) expired = true;
      }
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

// ---------------------------------------------------------------- tiny HTML form reader
function attrs(tag) {
  const out = {};
  for (const m of tag.matchAll(/([\w:-]+)\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+))/g)) {
    out[m[1].toLowerCase()] = (m[3] ?? m[4] ?? m[5] ?? '')
      .replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'")
      .replace(/&#(\d+);/g, (_, d) => String.fromCharCode(Number(d)))
      .replace(/&lt;/g, '<').replace(/&gt;/g, '>');
  }
  return out;
}

// Finds the login form (the one with a password field, else the first form) and fills it.
function fillLoginForm(html, pageUrl) {
  const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)];
  if (!forms.length) return undefined;
  const chosen = forms.find((f) => /type\s*=\s*["']?password/i.test(f[2])) || forms[0];
  const formAttrs = attrs(chosen[1]);
  const fields = new URLSearchParams();
  for (const m of chosen[2].matchAll(/<(input|button)\b([^>]*)>/gi)) {
    const a = attrs(m[2]);
    if (!a.name) continue;
    const type = (a.type || (m[1].toLowerCase() === 'button' ? 'submit' : 'text')).toLowerCase();
    if (a.name === 'national_id' || a.name === 'username' || a.name === 'login') {
      fields.set(a.name, args['national-id']);
    } else if (a.name === 'password' || type === 'password') {
      fields.set(a.name, args.password);
    } else if (type === 'hidden' || (type === 'submit' && !fields.has(a.name))) {
      fields.set(a.name, a.value ?? '');
    } else if ((type === 'checkbox' || type === 'radio') && 'checked' in a) {
      fields.set(a.name, a.value ?? 'on');
    }
  }
  const action = new URL(formAttrs.action || pageUrl, pageUrl).href;
  return { method: (formAttrs.method || 'get').toUpperCase(), action, body: fields.toString() };
}

// ---------------------------------------------------------------- OIDC pieces
const discovery = await (async () => {
  const res = await request('GET', '/.well-known/openid-configuration');
  if (res.status !== 200) throw new Error(`discovery: HTTP ${res.status}`);
  return JSON.parse(res.text);
})();
for (const k of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint']) {
  if (!discovery[k]) throw new Error(`discovery has no ${k}`);
}
const AUTHZ = discovery.authorization_endpoint;
const TOKEN = discovery.token_endpoint;
const USERINFO = discovery.userinfo_endpoint;

function rand() {
  return crypto.randomBytes(16).toString('base64url');
}

function authorizationRequest(scope, prompt) {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const state = rand();
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: args['client-id'],
    redirect_uri: REDIRECT_URI,
    scope,
    state,
    nonce: rand(),
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  if (prompt) q.set('prompt', prompt);
  const u = new URL(AUTHZ);
  u.search = q.toString();
  return { url: u.href, verifier, state };
}

function codeFromRedirect(location, state) {
  if (!location || !location.startsWith(REDIRECT_URI)) {
    throw new Unexpected(`authorization did not redirect to the client: ${location}`);
  }
  const p = new URL(location).searchParams;
  if (p.get('error')) throw new Unexpected(`authorization error: ${p.get('error')} ${p.get('error_description') || ''}`);
  if (p.get('state') !== state) throw new Unexpected('state mismatch');
  const code = p.get('code');
  if (!code) throw new Unexpected(`no code in ${location}`);
  return code;
}

async function exchangeCode(code, verifier) {
  const res = await request('POST', TOKEN, {
    headers: { ...FORM_HEADERS, authorization: BASIC },
    body: form({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier }),
  });
  if (res.status !== 200) throw new Unexpected(`token (code): HTTP ${res.status} ${res.text.slice(0, 200)}`);
  const tok = parseJson(res, 'token (code)');
  if (!tok.access_token) throw new Unexpected('token (code): no access_token');
  return tok;
}

// Browser-like log-in: authorization request (without a session the first time), follow
// redirects, fill the login form, until the redirect to the client; then exchange the code.
// Returns the jar, the trail of requests and the token response.
async function login({ scope = 'openid', prompt, jar = new CookieJar() } = {}) {
  const authz = authorizationRequest(scope, prompt);
  let method = 'GET';
  let url = authz.url;
  let body;
  const trail = [];
  for (let step = 0; step < MAX_SETUP_STEPS; step += 1) {
    const headers = { cookie: jar.header() };
    if (body !== undefined) Object.assign(headers, FORM_HEADERS);
    const res = await request(method, url, { headers, body });
    jar.take(res);
    trail.push(`${method} ${pathOf(url)} -> ${res.status}`);
    if (res.status >= 300 && res.status < 400) {
      const loc = new URL(header(res, 'location'), url).href;
      if (loc.startsWith(REDIRECT_URI)) {
        const code = codeFromRedirect(loc, authz.state);
        const tok = await exchangeCode(code, authz.verifier);
        return { jar, trail, tokenResponse: tok };
      }
      method = 'GET';
      url = loc;
      body = undefined;
      continue;
    }
    if (res.status === 200 && /<form/i.test(res.text)) {
      const f = fillLoginForm(res.text, url);
      if (f.method === 'GET') {
        const u = new URL(f.action);
        u.search = f.body;
        method = 'GET';
        url = u.href;
        body = undefined;
      } else {
        method = 'POST';
        url = f.action;
        body = f.body;
      }
      continue;
    }
    throw new Error(`login: unexpected HTTP ${res.status} at ${url}: ${res.text.slice(0, 300)}\n${trail.join('\n')}`);
  }
  throw new Error(`login: no redirect to the client after ${MAX_SETUP_STEPS} steps\n${trail.join('\n')}`);
}

// ---------------------------------------------------------------- operations
let sessionJar;
let sessionCookie = '';

async function ssoHop(scope = 'openid') {
  const authz = authorizationRequest(scope);
  const res = await request('GET', authz.url, { headers: { cookie: sessionCookie } });
  if (res.status < 300 || res.status >= 400) {
    throw new Unexpected(`authorize: HTTP ${res.status} (expected a redirect) ${res.text.slice(0, 200)}`);
  }
  const code = codeFromRedirect(header(res, 'location'), authz.state);
  return exchangeCode(code, authz.verifier);
}

async function clientCredentials() {
  const res = await request('POST', TOKEN, {
    headers: { ...FORM_HEADERS, authorization: BASIC },
    body: 'grant_type=client_credentials',
  });
  if (res.status !== 200) throw new Unexpected(`token (client_credentials): HTTP ${res.status} ${res.text.slice(0, 200)}`);
  const tok = parseJson(res, 'token (client_credentials)');
  if (!tok.access_token) throw new Unexpected('token (client_credentials): no access_token');
}

async function refresh(vu) {
  const res = await request('POST', TOKEN, {
    headers: { ...FORM_HEADERS, authorization: BASIC },
    body: form({ grant_type: 'refresh_token', refresh_token: vu.refreshToken }),
  });
  if (res.status !== 200) {
    vu.broken = true;
    throw new Unexpected(`token (refresh): HTTP ${res.status} ${res.text.slice(0, 200)}`);
  }
  const tok = parseJson(res, 'token (refresh)');
  if (!tok.access_token) throw new Unexpected('token (refresh): no access_token');
  if (!tok.refresh_token || tok.refresh_token === vu.refreshToken) {
    vu.broken = true;
    throw new Unexpected('token (refresh): refresh token was not rotated');
  }
  vu.refreshToken = tok.refresh_token;
}

async function userinfo(vu) {
  const res = await request('GET', USERINFO, { headers: { authorization: `Bearer ${vu.accessToken}` } });
  if (res.status !== 200) throw new Unexpected(`userinfo: HTTP ${res.status} ${res.text.slice(0, 200)}`);
  const claims = parseJson(res, 'userinfo');
  if (!claims.sub) throw new Unexpected('userinfo: no sub');
}

// A refresh token of its own for one virtual user. First an SSO hop asking for offline_access;
// a provider that follows OIDC Core 11 to the letter (oidc-provider does) drops offline_access
// unless prompt=consent, so if no refresh token came back, go once through the browser flow
// with prompt=consent (consent screen / login form filled in by login()). Set-up only.
let refreshSetupPath;
async function newRefreshChain(jar) {
  const tok = await ssoHop('openid offline_access');
  if (tok.refresh_token) {
    refreshSetupPath ||= 'sso hop, scope openid offline_access';
    return tok.refresh_token;
  }
  const again = await login({ scope: 'openid offline_access', prompt: 'consent', jar });
  sessionCookie = jar.header(); // a new log-in may have rotated the session cookie
  if (!again.tokenResponse.refresh_token) {
    throw new Error('refresh set-up: no refresh_token, even with prompt=consent');
  }
  refreshSetupPath = 'browser flow, scope openid offline_access, prompt=consent';
  return again.tokenResponse.refresh_token;
}

// ---------------------------------------------------------------- /proc sampling
const CLK_TCK = 100; // Linux USER_HZ; true on every Linux this runs on

function procSample(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number((status.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) || [0, 0])[1]);
    const threads = Number((status.match(/^Threads:\s+(\d+)/m) || [0, 0])[1]);
    return { cpu_s: ticks / CLK_TCK, rss_kb: kb('VmRSS'), hwm_kb: kb('VmHWM'), threads };
  } catch {
    return undefined;
  }
}

// --infra-pids are roots: their descendants at sampling time count too (PostgreSQL forks a
// backend per connection, possibly during the run; one that appears mid-window counts whole).
function descendantsOf(roots) {
  const children = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  const out = new Set();
  const todo = [...roots];
  while (todo.length) {
    const p = todo.pop();
    if (out.has(p)) continue;
    out.add(p);
    todo.push(...(children.get(p) || []));
  }
  return [...out];
}

function procAll() {
  const out = {};
  const infra = INFRA_PIDS.length ? descendantsOf(INFRA_PIDS) : [];
  for (const pid of [...PIDS, ...infra]) out[pid] = procSample(pid);
  out.infraPids = infra;
  return out;
}

// Busy CPU of the whole machine (all cores), to see load that is neither server nor us.
function machineTicks() {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = v[3] + (v[4] || 0);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- run
function percentile(sorted, p) {
  if (!sorted.length) return null;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

async function main() {
  const setupStart = performance.now();
  const session = await login();
  sessionJar = session.jar;
  sessionCookie = session.jar.header();

  const vus = [];
  for (let i = 0; i < CONNECTIONS; i += 1) vus.push({ id: i });
  let refreshSetup;
  if (args.scenario === 'refresh') {
    for (const vu of vus) {
      vu.refreshToken = await newRefreshChain(session.jar);
    }
    refreshSetup = refreshSetupPath;
    sessionCookie = session.jar.header();
  } else if (args.scenario === 'userinfo') {
    for (const vu of vus) {
      vu.accessToken = (await ssoHop('openid profile')).access_token;
    }
  }
  const setupMs = performance.now() - setupStart;

  const op = {
    client_credentials: () => clientCredentials(),
    sso_hop: () => ssoHop('openid'),
    refresh: (vu) => refresh(vu),
    userinfo: (vu) => userinfo(vu),
  }[args.scenario];

  const lat = [];
  let ok = 0;
  let errors = 0;
  let warmErrors = 0;
  const errorSamples = [];
  let recording = false;
  const t0 = performance.now();
  const measureStart = t0 + WARMUP_MS;
  const deadline = measureStart + DURATION_MS;
  let procBefore;
  let cpuBefore;
  let wallStart;
  let machineBefore;
  const startTimer = setTimeout(() => {
    machineBefore = machineTicks();
    procBefore = procAll();
    cpuBefore = process.cpuUsage();
    wallStart = performance.now();
    recording = true;
  }, WARMUP_MS);

  async function loop(vu) {
    while (performance.now() < deadline) {
      if (vu.broken && args.scenario === 'refresh') {
        // the chain is gone (an error broke it): start a new one, counted as an error already
        try {
          vu.refreshToken = await newRefreshChain(sessionJar);
          vu.broken = false;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
      }
      const start = performance.now();
      const wasRecording = recording;
      try {
        await op(vu);
        const end = performance.now();
        if (wasRecording && end <= deadline) {
          ok += 1;
          lat.push(end - start);
        }
      } catch (err) {
        if (wasRecording) {
          errors += 1;
          if (errorSamples.length < MAX_ERROR_SAMPLES) errorSamples.push(String(err?.message || err).slice(0, 300));
        } else {
          warmErrors += 1;
          if (errorSamples.length < MAX_ERROR_SAMPLES) errorSamples.push(`(warm-up) ${String(err?.message || err).slice(0, 300)}`);
        }
        if (!(err instanceof Unexpected)) await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  await Promise.all(vus.map(loop));
  clearTimeout(startTimer);
  const wallEnd = performance.now();
  const procAfter = procAll();
  const machineAfter = machineTicks();
  const cpu = process.cpuUsage(cpuBefore);
  const measuredS = (Math.min(wallEnd, deadline) - wallStart) / 1000;
  lat.sort((a, b) => a - b);

  const server = {};
  const infra = {};
  for (const pid of procAfter.infraPids) {
    const a = procBefore?.[pid];
    const b = procAfter[pid];
    if (b) infra[pid] = +(b.cpu_s - (a ? a.cpu_s : 0)).toFixed(2);
  }
  const infraCpu = Object.values(infra).reduce((s, v) => s + (v || 0), 0);
  for (const pid of PIDS) {
    const a = procBefore?.[pid];
    const b = procAfter[pid];
    server[pid] = b
      ? { cpu_s: a ? +(b.cpu_s - a.cpu_s).toFixed(2) : null, rss_kb: b.rss_kb, hwm_kb: b.hwm_kb, threads: b.threads }
      : null;
  }
  const serverCpu = Object.values(server).reduce((s, v) => s + (v?.cpu_s || 0), 0);

  const result = {
    scenario: args.scenario,
    issuer: args.issuer,
    connections: CONNECTIONS,
    warmup_s: WARMUP_MS / 1000,
    duration_s: +measuredS.toFixed(3),
    setup_s: +(setupMs / 1000).toFixed(3),
    login_trail: session.trail,
    refresh_setup: refreshSetup,
    ops: ok,
    rate: +(ok / measuredS).toFixed(1),
    errors,
    warmup_errors: warmErrors,
    error_samples: errorSamples,
    latency_ms: {
      p50: lat.length ? +percentile(lat, 50).toFixed(2) : null,
      p90: lat.length ? +percentile(lat, 90).toFixed(2) : null,
      p99: lat.length ? +percentile(lat, 99).toFixed(2) : null,
      max: lat.length ? +lat[lat.length - 1].toFixed(2) : null,
    },
    server,
    server_cpu_cores: +(serverCpu / measuredS).toFixed(3),
    loadgen_cpu_cores: +((cpu.user + cpu.system) / 1e6 / measuredS).toFixed(3),
    infra_cpu_cores: +(infraCpu / measuredS).toFixed(3),
    machine_busy_cores: machineBefore && machineAfter
      ? +((machineAfter.busy - machineBefore.busy) / CLK_TCK / measuredS).toFixed(3) : null,
  };
  // CPU used by anything else on the machine during the window (other people's jobs)
  if (result.machine_busy_cores !== null) {
    result.other_cpu_cores = +Math.max(0, result.machine_busy_cores - result.server_cpu_cores
      - result.loadgen_cpu_cores - result.infra_cpu_cores).toFixed(3);
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

try {
  await main();
} catch (err) {
  process.stdout.write(`${JSON.stringify({ scenario: args.scenario, fatal: String(err?.stack || err) })}\n`);
  process.exitCode = 1;
} finally {
  await pool.close().catch(() => {});
}
