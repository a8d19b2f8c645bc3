// A relying party for the DinhDanh IdP: npm openid-client v6 on a plain node:http server.
//
// Sign-in is the authorization code flow with PAR (RFC 9126), PKCE S256 (RFC 7636), state and
// nonce, the client authenticating with private_key_jwt (RFC 7523, an ES256 key). Logout is
// RP-initiated (OIDC RP-Initiated Logout 1.0) and back-channel (OIDC Back-Channel Logout 1.0).
// Routes: / /login /callback /me /logout /backchannel-logout (see README.md).
import { createServer } from 'node:http';
import * as client from 'openid-client';

import { logoutTokenVerifier, LogoutTokenError } from './lib/backchannel.mjs';
import { ConfigError, loadConfig } from './lib/config.mjs';
import { errorPage, homePage, LANGS, logoutPage } from './lib/pages.mjs';
import { COOKIE, randomToken, sameToken, SessionStore } from './lib/sessions.mjs';

const SCOPE = 'openid profile email phone address';
const HTTP_TIMEOUT_SECONDS = 10; // every request openid-client makes to the IdP
const MAX_BODY_BYTES = 64 * 1024;
const LANG_COOKIE = 'nodeex_lang';

let settings;
try {
  settings = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`node-example: ${err.message}`);
  process.exit(2);
}
const sessions = new SessionStore();
setInterval(() => sessions.prune(), 60_000).unref();

// -- the IdP, discovered lazily (and again after a failure) so the portal may start first ----
let idp; // Promise<{config, server, verifyLogoutToken}>

async function discover() {
  const privateKey = await crypto.subtle.importKey('jwk', settings.jwk,
    { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const config = await client.discovery(settings.issuer, settings.clientId,
    { token_endpoint_auth_method: 'private_key_jwt',
      id_token_signed_response_alg: settings.idTokenAlg },
    client.PrivateKeyJwt({ key: privateKey, kid: settings.jwk.kid }),
    {
      timeout: HTTP_TIMEOUT_SECONDS,
      // http is accepted for an issuer on this machine only (checked in lib/config.mjs).
      execute: settings.insecureIssuer ? [client.allowInsecureRequests] : [],
    });
  client.enableNonRepudiationChecks(config); // check ID token signatures against the JWKS too
  const server = config.serverMetadata();
  // The IdP signs logout tokens with the client's ID token algorithm: accept only that one.
  const verifyLogoutToken = logoutTokenVerifier({
    issuer: server.issuer, clientId: settings.clientId, jwksUri: server.jwks_uri,
    algorithms: [settings.idTokenAlg],
  });
  return { config, server, verifyLogoutToken };
}

function getIdp() {
  idp ??= discover().catch((err) => {
    idp = undefined;
    throw err;
  });
  return idp;
}

// -- small HTTP helpers ---------------------------------------------------------------------
class HttpError extends Error {
  constructor(status, code) {
    super(code);
    this.status = status;
    this.code = code;
  }
}

function parseCookies(header = '') {
  const cookies = {};
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) cookies[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return cookies;
}

function cookie(name, value, { maxAge, httpOnly = true } = {}) {
  let line = `${name}=${value}; Path=/; SameSite=Lax`;
  if (httpOnly) line += '; HttpOnly';
  if (settings.secureCookies) line += '; Secure';
  if (maxAge !== undefined) line += `; Max-Age=${maxAge}`;
  return line;
}

/** Adds a Set-Cookie line to the response (several may accumulate). */
function setCookie(res, line) {
  res.setHeader('Set-Cookie', [...[res.getHeader('Set-Cookie') ?? []].flat(), line]);
}

function send(res, status, body, type, headers = {}) {
  res.writeHead(status, {
    'Content-Type': type,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    // The logout form redirects to the IdP: form-action must allow its origin too.
    'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; " +
      `base-uri 'none'; frame-ancestors 'none'; form-action 'self' ${settings.issuer.origin}`,
    ...headers,
  });
  res.end(body);
}

const sendHtml = (res, status, html, headers) =>
  send(res, status, html, 'text/html; charset=utf-8', headers);
const sendJson = (res, status, data, headers) =>
  send(res, status, JSON.stringify(data), 'application/json', headers);
const redirect = (res, location, headers = {}) =>
  send(res, 303, '', 'text/plain', { Location: location, ...headers });

async function readForm(req) {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new HttpError(400, 'bad_request');
  }
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'bad_request');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** A local path to return to after sign-in; anything else (another site) becomes "/". */
function localPath(value) {
  return typeof value === 'string' && /^\/(?![/\\])[^\s\\]*$/.test(value) ? value : '/';
}

// -- routes ---------------------------------------------------------------------------------
function home({ res, lang, session }) {
  sendHtml(res, 200, homePage(lang, session));
}

function me({ res, session }) {
  if (!session?.user) return sendJson(res, 401, { error: 'not_signed_in' });
  const { sub, acr, amr, sid, claims } = session.user;
  return sendJson(res, 200, { ...claims, sub, acr, amr, sid });
}

async function login({ res, url, lang, session }) {
  const { config, server } = await getIdp();
  const acr = url.searchParams.get('acr');
  const acrValues = acr ? acr.split(' ').filter(Boolean) : [];
  if (acrValues.some((value) => !(server.acr_values_supported ?? []).includes(value))) {
    throw new HttpError(400, 'bad_request');
  }
  if (!session) {
    session = sessions.create();
    setCookie(res, cookie(COOKIE, session.id));
  }
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const parameters = {
    redirect_uri: settings.redirectUri,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ui_locales: lang,
  };
  if (acrValues.length) parameters.acr_values = acrValues.join(' ');
  // PAR: the parameters go to the IdP over the back channel, signed in with private_key_jwt;
  // the browser only carries client_id and the request_uri it got back.
  const authorizationUrl = await client.buildAuthorizationUrlWithPAR(config, parameters);
  sessions.addPending(session, state, {
    codeVerifier, nonce, acrValues, next: localPath(url.searchParams.get('next')),
  });
  redirect(res, authorizationUrl.href);
}

async function callback({ res, url, lang, session }) {
  const state = url.searchParams.get('state');
  const pending = state ? sessions.takePending(session, state) : undefined;
  if (!pending) throw new HttpError(400, 'login_expired'); // unknown state: not this browser's
  const { config, server } = await getIdp();
  let tokens;
  try {
    // Checks iss (RFC 9207) and state, then redeems the code with the PKCE verifier, and checks
    // the ID token: signature, iss, aud, azp, exp, iat, nonce (OIDC Core 3.1.3.7).
    tokens = await client.authorizationCodeGrant(config,
      new URL(`${settings.redirectUri}${url.search}`),
      { pkceCodeVerifier: pending.codeVerifier, expectedState: state,
        expectedNonce: pending.nonce, idTokenExpected: true });
  } catch (err) {
    if (err instanceof client.AuthorizationResponseError) {
      const code = String(err.error);
      const status = code === 'access_denied' ? 403 : 400;
      return sendHtml(res, status, errorPage(lang, code, { retry: true }));
    }
    throw err;
  }
  const claims = tokens.claims();
  // What this portal relies on, checked once more by hand: who issued the token, the session
  // it belongs to (for back-channel logout) and the assurance level it states.
  const requestedAcr = pending.acrValues.length ? pending.acrValues
    : server.acr_values_supported ?? [];
  const checks = [
    ['iss', claims.iss === server.issuer],
    ['sid', typeof claims.sid === 'string' && claims.sid.length > 0],
    ['acr', typeof claims.acr === 'string' && requestedAcr.includes(claims.acr)],
    ['amr', Array.isArray(claims.amr) && claims.amr.every((m) => typeof m === 'string')],
  ];
  const failed = checks.filter(([, ok]) => !ok).map(([name]) => name);
  if (failed.length) {
    console.error(`node-example: ID token refused, failed checks: ${failed.join(', ')}`);
    throw new HttpError(400, 'sign_in_failed');
  }
  // The userinfo answer must be about the same subject (openid-client compares sub).
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  // A fresh cookie value after sign-in: a value planted before it is worth nothing (fixation).
  sessions.destroy(session.id);
  const signedIn = sessions.create();
  signedIn.user = {
    sub: claims.sub, sid: claims.sid, acr: claims.acr, amr: claims.amr,
    idToken: tokens.id_token,
    claims: { ...userinfo, sub: claims.sub, acr: claims.acr, amr: claims.amr,
      auth_time: claims.auth_time },
  };
  setCookie(res, cookie(COOKIE, signedIn.id));
  redirect(res, pending.next);
}

function logoutForm({ res, lang, session }) {
  sendHtml(res, 200, logoutPage(lang, session));
}

async function logout({ req, res, session }) {
  const form = await readForm(req);
  if (!session?.user) return redirect(res, '/'); // nothing to end here
  if (!sameToken(form.get('csrf_token'), session.csrf)) throw new HttpError(400, 'csrf');
  const idToken = session.user.idToken;
  sessions.destroy(session.id);
  setCookie(res, cookie(COOKIE, '', { maxAge: 0 }));
  let config;
  try {
    ({ config } = await getIdp());
  } catch (err) {
    console.error(`node-example: IdP unavailable at logout: ${err.message}`);
    return redirect(res, '/'); // the local session is gone anyway
  }
  const endSession = client.buildEndSessionUrl(config, {
    id_token_hint: idToken,
    post_logout_redirect_uri: settings.postLogoutRedirectUri,
    state: randomToken(),
  });
  redirect(res, endSession.href);
}

async function backchannelLogout({ req, res }) {
  let form;
  try {
    form = await readForm(req);
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    return sendJson(res, 400, { error: 'invalid_request',
      error_description: 'expected an application/x-www-form-urlencoded logout_token' });
  }
  let claims;
  try {
    const { verifyLogoutToken } = await getIdp();
    claims = await verifyLogoutToken(form.get('logout_token'));
  } catch (err) {
    const description = err instanceof LogoutTokenError ? err.message
      : 'logout_token could not be verified';
    if (!(err instanceof LogoutTokenError)) console.error(`node-example: ${err.message}`);
    return sendJson(res, 400, { error: 'invalid_request', error_description: description });
  }
  const ended = sessions.destroyByIdpSession(claims);
  console.log(`node-example: back-channel logout ended ${ended} session(s)`);
  send(res, 200, '', 'text/plain');
}

const ROUTES = {
  '/': { GET: home },
  '/login': { GET: login },
  '/callback': { GET: callback },
  '/me': { GET: me },
  '/logout': { GET: logoutForm, POST: logout },
  '/backchannel-logout': { POST: backchannelLogout },
};

// -- the server -----------------------------------------------------------------------------
function languageOf(res, url, cookies) {
  const asked = url.searchParams.get('lang');
  if (LANGS.includes(asked)) {
    setCookie(res, cookie(LANG_COOKIE, asked, { maxAge: 365 * 24 * 3600 }));
    return asked;
  }
  return LANGS.includes(cookies[LANG_COOKIE]) ? cookies[LANG_COOKIE] : 'vi';
}

async function handle(req, res) {
  let lang = 'vi';
  const isJson = req.url?.startsWith('/me') || req.url?.startsWith('/backchannel-logout');
  try {
    if (!req.url?.startsWith('/')) throw new HttpError(400, 'bad_request');
    const url = new URL(`http://portal${req.url}`); // only path and query are used
    const cookies = parseCookies(req.headers.cookie);
    lang = languageOf(res, url, cookies);
    const session = sessions.get(cookies[COOKIE]);
    const route = ROUTES[url.pathname];
    if (!route) throw new HttpError(404, 'not_found');
    // HEAD is answered like GET (node:http leaves the body out), but only where GET is safe.
    const handler = route[req.method] ??
      (req.method === 'HEAD' && ['/', '/me'].includes(url.pathname) ? route.GET : undefined);
    if (!handler) {
      res.setHeader('Allow', Object.keys(route).join(', '));
      throw new HttpError(405, 'method_not_allowed');
    }
    await handler({ req, res, url, lang, session });
  } catch (err) {
    let status = 500;
    let code = 'server_error';
    if (err instanceof HttpError) {
      ({ status, code } = err);
    } else if (err instanceof client.ResponseBodyError || err instanceof client.ClientError) {
      // The IdP refused a request (a replayed code...) or its answer failed a check.
      console.error(`node-example: ${err.name}: ${err.message}` +
        `${err.error ? ` (${err.error})` : ''}${err.code ? ` [${err.code}]` : ''}`);
      status = 400;
      code = 'sign_in_failed';
    } else if (err?.name === 'TimeoutError' || err?.name === 'AbortError' ||
               (err instanceof TypeError && err.message === 'fetch failed')) {
      console.error(`node-example: the IdP is unreachable: ${err.message}`);
      status = 502;
      code = 'idp_unavailable';
    } else {
      console.error('node-example: unexpected error', err);
    }
    if (res.headersSent) return res.destroy();
    if (isJson) return sendJson(res, status, { error: code });
    return sendHtml(res, status, errorPage(lang, code, { retry: status === 502 ||
      ['sign_in_failed', 'login_expired'].includes(code) }));
  }
}

const server = createServer({ requestTimeout: 30_000, headersTimeout: 20_000 }, (req, res) => {
  handle(req, res);
});
server.listen(settings.port, settings.host, () => {
  console.log(`node-example: ${settings.baseUrl} (client ${settings.clientId}, ` +
    `issuer ${settings.issuer.href})`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)).closeAllConnections());
}
