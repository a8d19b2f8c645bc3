// An independent relying party: npm openid-client v6 against a running DinhDanh IdP.
//
// Registers itself (RFC 7591), then does what a portal does: discovery, authorization code flow
// with PKCE S256 + state + nonce (a citizen's browser is simulated with fetch and a cookie jar,
// submitting the IdP's login and consent forms), token, userinfo, refresh (and a replay of the
// old refresh token), RP-initiated logout, and prompt=none afterwards. openid-client validates
// every response as its spec says (RFC 9207 iss, ID token claims and, with non-repudiation
// checks, signatures against the JWKS); any failure throws and this process exits non-zero.
//
// Input (environment): ISSUER, REDIRECT_URI, POST_LOGOUT_REDIRECT_URI, BACKCHANNEL_LOGOUT_URI,
// CITIZEN_PID, CITIZEN_PASSWORD. Output: one JSON summary on stdout for the pytest test to check.
import * as client from 'openid-client';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const ISSUER = new URL(env('ISSUER'));
const REDIRECT_URI = env('REDIRECT_URI');
const POST_LOGOUT_REDIRECT_URI = env('POST_LOGOUT_REDIRECT_URI');
const SCOPE = 'openid profile email offline_access';
const insecure = { execute: [client.allowInsecureRequests] }; // http issuer on loopback only

// -- the citizen's browser: fetch without following redirects, plus a cookie jar ------------
class Browser {
  constructor(origin) {
    this.origin = origin;
    this.cookies = new Map();
    this.visited = [];
  }

  remember(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a)) ||
        attrs.some((a) => /^\s*expires\s*=/i.test(a) &&
          Date.parse(a.split('=').slice(1).join('=')) < Date.now());
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async request(url, init = {}) {
    const target = new URL(url);
    const headers = new Headers(init.headers);
    if (target.origin === this.origin && this.cookies.size) {
      headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const response = await fetch(target, { ...init, headers, redirect: 'manual' });
    if (target.origin === this.origin) this.remember(response);
    return response;
  }

  async postForm(url, fields) {
    return this.request(url, {
      method: 'POST',
      body: new URLSearchParams(fields),
      headers: { 'content-type': 'application/x-www-form-urlencoded', referer: url },
    });
  }

  // Open `url`, sign in and consent when asked; return the redirect to the client (not followed).
  async runToClient(url, redirectUri, { pid, password }) {
    let response = await this.request(url);
    let current = new URL(url);
    for (let hop = 0; hop < 12; hop += 1) {
      if ([301, 302, 303, 307, 308].includes(response.status)) {
        const location = new URL(response.headers.get('location'), current);
        if (`${location.origin}${location.pathname}` === redirectUri.split('?')[0]) {
          return location;
        }
        if (location.origin !== this.origin) throw new Error(`unexpected redirect to ${location}`);
        this.visited.push(location.pathname);
        current = location;
        response = await this.request(location);
        continue;
      }
      const html = await response.text();
      if (response.status !== 200) {
        throw new Error(`${current} answered ${response.status}: ${html.slice(0, 500)}`);
      }
      if (current.pathname === '/login') {
        current = new URL('/login', this.origin);
        response = await this.postForm(current, {
          csrf_token: hidden(html, 'csrf_token'), interaction: hidden(html, 'interaction'),
          national_id: pid, password,
        });
      } else if (current.pathname === '/consent') {
        response = await this.postForm(current, {
          csrf_token: hidden(html, 'csrf_token'), interaction: hidden(html, 'interaction'),
          decision: 'allow',
        });
      } else {
        throw new Error(`stuck on ${current}: ${html.slice(0, 500)}`);
      }
    }
    throw new Error('too many redirects before reaching the client');
  }
}

function hidden(html, name) {
  const match = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  if (!match) throw new Error(`the page has no hidden ${name} field`);
  return match[1].replace(/&amp;/g, '&').replace(/&#34;|&quot;/g, '"').replace(/&#39;/g, "'");
}

async function expectError(promise) {
  try {
    await promise;
  } catch (err) {
    return { name: err.name, error: err.error ?? err.code ?? err.message, status: err.status };
  }
  return null;
}

// -- the relying party ----------------------------------------------------------------------
const registered = await client.dynamicClientRegistration(ISSUER, {
  client_name: 'openid-client e2e portal',
  redirect_uris: [REDIRECT_URI],
  post_logout_redirect_uris: [POST_LOGOUT_REDIRECT_URI],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: SCOPE,
  backchannel_logout_uri: env('BACKCHANNEL_LOGOUT_URI'),
  backchannel_logout_session_required: true,
}, client.ClientSecretBasic(), insecure);
const { client_id: clientId, client_secret: clientSecret } = registered.clientMetadata();

// What a portal does at start-up with its stored credentials: discovery from the issuer.
const config = await client.discovery(ISSUER, clientId, clientSecret,
  client.ClientSecretBasic(clientSecret), insecure);
client.enableNonRepudiationChecks(config); // verify ID token signatures against the JWKS
const server = config.serverMetadata();

const browser = new Browser(ISSUER.origin);
const citizen = { pid: env('CITIZEN_PID'), password: env('CITIZEN_PASSWORD') };

// login
const codeVerifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const authorizationUrl = client.buildAuthorizationUrl(config, {
  redirect_uri: REDIRECT_URI,
  scope: SCOPE,
  code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
  code_challenge_method: 'S256',
  state,
  nonce,
  prompt: 'consent',
});
const callback = await browser.runToClient(authorizationUrl, REDIRECT_URI, citizen);

// token
const tokens = await client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce,
  idTokenExpected: true,
});
const claims = tokens.claims();

// userinfo (openid-client checks that its sub equals the ID token's)
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);

// refresh, then replay the rotated-out refresh token
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
const refreshedClaims = refreshed.claims();
const userinfoAfterRefresh = await client.fetchUserInfo(config, refreshed.access_token,
  claims.sub);
const replay = await expectError(client.refreshTokenGrant(config, tokens.refresh_token));

// RP-initiated logout
const logoutState = `st-${client.randomState()}._~!$'()*+,;=:@/?`;
const endSessionUrl = client.buildEndSessionUrl(config, {
  id_token_hint: tokens.id_token,
  post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI,
  state: logoutState,
});
const logout = await browser.request(endSessionUrl);
const logoutLocation = logout.headers.get('location');
const back = logoutLocation ? new URL(logoutLocation, ISSUER) : null;

// prompt=none after logout: the callback carries an error the library must surface
const silentState = client.randomState();
const silentVerifier = client.randomPKCECodeVerifier();
const silentUrl = client.buildAuthorizationUrl(config, {
  redirect_uri: REDIRECT_URI, scope: 'openid', prompt: 'none', state: silentState,
  nonce: client.randomNonce(), code_challenge_method: 'S256',
  code_challenge: await client.calculatePKCECodeChallenge(silentVerifier),
});
const silentCallback = await browser.runToClient(silentUrl, REDIRECT_URI, citizen);
const silent = await expectError(client.authorizationCodeGrant(config, silentCallback, {
  pkceCodeVerifier: silentVerifier, expectedState: silentState,
}));

process.stdout.write(`${JSON.stringify({
  issuer: server.issuer,
  client_id: clientId,
  visited: browser.visited,
  callback_iss: callback.searchParams.get('iss'),
  token_type: tokens.token_type,
  expires_in: tokens.expires_in,
  scope: tokens.scope ?? null,
  id_token: tokens.id_token,
  claims,
  userinfo,
  refreshed: {
    access_token_changed: refreshed.access_token !== tokens.access_token,
    refresh_token_rotated: Boolean(refreshed.refresh_token) &&
      refreshed.refresh_token !== tokens.refresh_token,
    id_token_sub: refreshedClaims?.sub ?? null,
    userinfo_sub: userinfoAfterRefresh.sub,
  },
  replayed_refresh: replay,
  logout: {
    status: logout.status,
    location: back ? `${back.origin}${back.pathname}` : null,
    params: back ? Object.fromEntries(back.searchParams) : null,
    sent_state: logoutState,
  },
  prompt_none_after_logout: silent,
}, null, 2)}\n`);
