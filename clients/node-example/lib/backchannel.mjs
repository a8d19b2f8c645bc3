// Logout token validation (OpenID Connect Back-Channel Logout 1.0, section 2.6), with `jose`,
// the JOSE library openid-client itself is built on. Each check is one line of the spec.
import { createRemoteJWKSet, errors, jwtVerify } from 'jose';

export const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const LEEWAY_SECONDS = 30; // clock skew tolerated, the same as the IdP's JWT_LEEWAY
const MAX_AGE_SECONDS = 300; // older tokens are refused even if exp says otherwise
const JWKS_TIMEOUT_MS = 5000;
const MAX_TOKEN_LENGTH = 16 * 1024;

export class LogoutTokenError extends Error {}

/** Returns verify(token) -> {sid, sub}, throwing LogoutTokenError on any failed check. */
export function logoutTokenVerifier({ issuer, clientId, jwksUri, algorithms }) {
  const jwks = createRemoteJWKSet(new URL(jwksUri), { timeoutDuration: JWKS_TIMEOUT_MS });
  const seen = new Map(); // jti -> expiry (ms): a logout token is accepted once

  return async function verify(token) {
    if (typeof token !== 'string' || !token || token.length > MAX_TOKEN_LENGTH) {
      throw new LogoutTokenError('logout_token is missing');
    }
    let payload;
    try {
      // 2.6 steps 3-5: signature against the IdP's JWKS, alg it may use, iss, aud, iat and exp.
      ({ payload } = await jwtVerify(token, jwks, {
        issuer,
        audience: clientId,
        algorithms,
        typ: 'logout+jwt', // explicit typing (2.4): an ID token is never taken for a logout token
        requiredClaims: ['iat', 'exp', 'jti', 'events'],
        clockTolerance: LEEWAY_SECONDS,
        maxTokenAge: MAX_AGE_SECONDS + LEEWAY_SECONDS,
      }));
    } catch (err) {
      if (err instanceof errors.JOSEError) {
        throw new LogoutTokenError(`logout_token is invalid: ${err.code}`);
      }
      throw err;
    }
    // 2.6 step 6: sub, sid or both.
    const { sid, sub, events, jti, exp } = payload;
    if (sid === undefined && sub === undefined) throw new LogoutTokenError('no sid and no sub');
    if (sid !== undefined && (typeof sid !== 'string' || !sid)) throw new LogoutTokenError('bad sid');
    if (sub !== undefined && (typeof sub !== 'string' || !sub)) throw new LogoutTokenError('bad sub');
    // 2.6 step 7: the back-channel logout event, whose value is a JSON object.
    const event = events && typeof events === 'object' ? events[BACKCHANNEL_EVENT] : undefined;
    if (!event || typeof event !== 'object' || Array.isArray(event)) {
      throw new LogoutTokenError('events has no back-channel logout event');
    }
    // 2.6 step 8: no nonce, so an ID token can never be replayed as a logout token.
    if ('nonce' in payload) throw new LogoutTokenError('a logout token has no nonce');
    // 2.6 step 10 (optional, done): the same jti is not accepted twice.
    if (typeof jti !== 'string' || !jti) throw new LogoutTokenError('bad jti');
    const now = Date.now();
    for (const [key, expiry] of seen) if (expiry < now) seen.delete(key);
    if (seen.has(jti)) throw new LogoutTokenError('logout_token was already used');
    seen.set(jti, (exp + LEEWAY_SECONDS) * 1000);
    return { sid, sub };
  };
}
