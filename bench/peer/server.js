// Peer OpenID Provider for bench/: npm oidc-provider 9.x (OpenID-certified), configured with the
// same features as DinhDanh's IdP and run as ONE Node process on loopback.
//
//   node server.js --port 8402 [--client-id bench --client-secret ... --redirect-uri ...]
//
// Prints one JSON line {"ready": true, ...} on stdout once it listens.
//
// What is configured (kept in step with bench/README.md):
// - signing keys: one RS256 (RSA 2048) and one ES256 (P-256) key, generated at start-up;
// - features: clientCredentials on, PKCE required (S256 is the only method oidc-provider 9 has),
//   refresh tokens rotated on every use (rotateRefreshToken => true), pairwise subjects,
//   opaque access tokens (oidc-provider's default when no resource indicator is asked for);
// - one confidential client (client_secret_basic) with authorization_code, refresh_token and
//   client_credentials, subject_type pairwise;
// - one account (the bench citizen); the interaction is a minimal login form that checks the
//   national id and password, then records login AND consent for every requested scope, so that
//   an authorization request with a live session cookie goes straight to the code redirect;
// - storage: oidc-provider's default in-memory adapter.
import crypto from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '8402' },
    host: { type: 'string', default: '127.0.0.1' },
    'client-id': { type: 'string', default: 'bench' },
    'client-secret': { type: 'string', default: 'bench-secret-0123456789abcdef0123456789abcdef' },
    'redirect-uri': { type: 'string', default: 'http://127.0.0.1:9999/cb' },
    'national-id': { type: 'string', default: '001199000001' },
    password: { type: 'string', default: 'Citizen-Demo-1' },
  },
});

const port = Number(args.port);
const issuer = `http://${args.host}:${port}`;

function signingKey(type, opts, alg) {
  const { privateKey } = crypto.generateKeyPairSync(type, opts);
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${crypto.randomUUID().slice(0, 8)}` };
}

const jwks = {
  keys: [
    signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
    signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
  ],
};

// The single demo account (the bench citizen). The id is what our IdP calls a citizen id.
const ACCOUNT_ID = 'citizen-001199000001';
const ACCOUNT = {
  accountId: ACCOUNT_ID,
  async claims() {
    return {
      sub: ACCOUNT_ID,
      name: 'Nguyen Van Demo',
      given_name: 'Demo',
      family_name: 'Nguyen',
      birthdate: '1990-01-01',
      locale: 'vi',
    };
  },
};

const pairwiseSalt = crypto.randomBytes(32);

const configuration = {
  clients: [
    {
      client_id: args['client-id'],
      client_secret: args['client-secret'],
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      redirect_uris: [args['redirect-uri']],
      subject_type: 'pairwise',
      scope: 'openid profile offline_access',
    },
  ],
  jwks,
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name', 'birthdate', 'locale'],
  },
  scopes: ['openid', 'profile', 'offline_access'],
  responseTypes: ['code'],
  subjectTypes: ['public', 'pairwise'],
  async pairwiseIdentifier(ctx, accountId, client) {
    return crypto
      .createHmac('sha256', pairwiseSalt)
      .update(`${client.sectorIdentifier}|${accountId}`)
      .digest('base64url');
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    userinfo: { enabled: true },
    revocation: { enabled: true },
  },
  pkce: { required: () => true },
  rotateRefreshToken: () => true,
  async findAccount(ctx, id) {
    return id === ACCOUNT_ID ? ACCOUNT : undefined;
  },
  interactions: {
    url(ctx, interaction) {
      return `/interaction/${interaction.uid}`;
    },
  },
  // the same lifetimes as DinhDanh's defaults (idp/settings.py)
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    ClientCredentials: 600,
    IdToken: 600,
    Interaction: 900,
    Grant: 14 * 24 * 3600,
    Session: 12 * 3600,
    RefreshToken: 14 * 24 * 3600,
  },
  renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
};

const provider = new Provider(issuer, configuration);
// no reverse proxy in front: the bench talks to the socket directly
provider.proxy = false;

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 16384) reject(new Error('form too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

function loginPage(res, uid, message = '') {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html><head><title>Sign in</title></head><body>
<p>${escapeHtml(message)}</p>
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<input type="text" name="national_id" autocomplete="username">
<input type="password" name="password" autocomplete="current-password">
<button type="submit">Sign in</button>
</form></body></html>`);
}

// Minimal interaction: GET shows the login form, POST checks the credentials and finishes the
// interaction with login + consent (a grant holding every requested scope and claim).
async function interaction(req, res) {
  const url = new URL(req.url, issuer);
  const m = url.pathname.match(/^\/interaction\/([\w-]+)(\/login)?$/);
  if (!m) {
    res.writeHead(404).end();
    return;
  }
  const details = await provider.interactionDetails(req, res);
  if (m[1] !== details.uid) {
    res.writeHead(400).end();
    return;
  }
  if (req.method === 'GET' && !m[2]) {
    loginPage(res, details.uid);
    return;
  }
  if (req.method !== 'POST' || !m[2]) {
    res.writeHead(405).end();
    return;
  }
  const form = await readForm(req);
  const nationalId = form.get('national_id') || '';
  const password = form.get('password') || '';
  const okId = crypto.timingSafeEqual(
    crypto.createHash('sha256').update(nationalId).digest(),
    crypto.createHash('sha256').update(args['national-id']).digest(),
  );
  const okPw = crypto.timingSafeEqual(
    crypto.createHash('sha256').update(password).digest(),
    crypto.createHash('sha256').update(args.password).digest(),
  );
  if (!(okId && okPw)) {
    loginPage(res, details.uid, 'Invalid credentials');
    return;
  }
  const { params } = details;
  const grant = new provider.Grant({ accountId: ACCOUNT_ID, clientId: params.client_id });
  grant.addOIDCScope('openid profile offline_access');
  const grantId = await grant.save();
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId: ACCOUNT_ID }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(String(err?.message || err));
    });
    return;
  }
  callback(req, res);
});
server.keepAliveTimeout = 65_000;

provider.on('server_error', (ctx, err) => {
  console.error('server_error', err);
});

server.listen(port, args.host, () => {
  process.stdout.write(
    `${JSON.stringify({ ready: true, issuer, pid: process.pid, client_id: args['client-id'], client_secret: args['client-secret'] })}\n`,
  );
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
