// Server-side sessions in memory, keyed by a random cookie value. A real portal with more than
// one process would keep them in Redis or a database; the shape would stay the same.
import { randomBytes, timingSafeEqual } from 'node:crypto';

export const COOKIE = 'nodeex_session';
const IDLE_MS = 8 * 60 * 60 * 1000; // a session unused for this long is forgotten
const LOGIN_MS = 10 * 60 * 1000; // a sign-in started but not finished within this is dropped
const MAX_PENDING = 5; // sign-ins in progress per browser (several tabs), oldest dropped
const MAX_SESSIONS = 50_000; // bound memory: the oldest sessions go first

export const randomToken = () => randomBytes(32).toString('base64url');

export function sameToken(a, b) {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class SessionStore {
  #sessions = new Map(); // id -> {seen, csrf, pending: Map(state -> login), user}

  /** The session for a cookie value, or undefined (expired ones are removed). */
  get(id) {
    const session = id ? this.#sessions.get(id) : undefined;
    if (!session) return undefined;
    if (Date.now() - session.seen > IDLE_MS) {
      this.#sessions.delete(id);
      return undefined;
    }
    session.seen = Date.now();
    return session;
  }

  create() {
    if (this.#sessions.size >= MAX_SESSIONS) {
      this.#sessions.delete(this.#sessions.keys().next().value); // Map keeps insertion order
    }
    const id = randomToken();
    const session = { id, seen: Date.now(), csrf: randomToken(), pending: new Map(), user: null };
    this.#sessions.set(id, session);
    return session;
  }

  destroy(id) {
    this.#sessions.delete(id);
  }

  /** Remember a sign-in in progress (state, nonce, PKCE verifier...) under its state. */
  addPending(session, state, login) {
    if (session.pending.size >= MAX_PENDING) {
      session.pending.delete(session.pending.keys().next().value);
    }
    session.pending.set(state, { ...login, expires: Date.now() + LOGIN_MS });
  }

  /** Take (one-shot) the sign-in in progress for `state`, if it has not expired. */
  takePending(session, state) {
    const login = session?.pending.get(state);
    if (!login) return undefined;
    session.pending.delete(state);
    return login.expires > Date.now() ? login : undefined;
  }

  /** End every session of the IdP session `sid` (and of `sub` when given); returns how many.
   *  With no sid, every session of `sub` ends (Back-Channel Logout 1.0, 2.4). */
  destroyByIdpSession({ sid, sub }) {
    if (sid === undefined && sub === undefined) return 0;
    let ended = 0;
    for (const [id, session] of this.#sessions) {
      const user = session.user;
      if (!user) continue;
      if ((sid === undefined || user.sid === sid) && (sub === undefined || user.sub === sub)) {
        this.#sessions.delete(id);
        ended += 1;
      }
    }
    return ended;
  }

  prune() {
    const now = Date.now();
    for (const [id, session] of this.#sessions) {
      if (now - session.seen > IDLE_MS) this.#sessions.delete(id);
    }
  }
}
