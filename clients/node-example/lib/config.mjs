// Configuration: client.json + key.jwk written by `python -m clients setup`, with environment
// overrides. Everything is validated here, at start-up, so a misconfiguration stops the server
// with one clear message instead of failing on the first citizen's request.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const PROFILE = 'node_example'; // directory name under $PORTAL_INSTANCE/clients/
const DEFAULT_PORT = 8203;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

export class ConfigError extends Error {}

function readJson(path, what) {
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${what} ${path} (${err.code ?? err.message}); ` +
      'run `uv run python -m clients setup` first');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ConfigError(`${what} ${path} is not valid JSON`);
  }
}

function httpUrl(value, what) {
  let url;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${what} is not a URL: ${JSON.stringify(value)}`);
  }
  if (!['http:', 'https:'].includes(url.protocol) || url.search || url.hash) {
    throw new ConfigError(`${what} must be an http(s) URL without query or fragment: ${value}`);
  }
  return url;
}

export const isLoopback = (url) => LOOPBACK_HOSTS.has(url.hostname);

/** Reads and checks the configuration; throws ConfigError with a message meant for a person. */
export function loadConfig(env = process.env) {
  const instance = resolve(env.PORTAL_INSTANCE || resolve(HERE, '..', '..', '..', 'instance'));
  const dir = resolve(instance, 'clients', PROFILE);
  const registered = readJson(resolve(dir, 'client.json'), 'client file');
  if (typeof registered.client_id !== 'string' || !registered.client_id) {
    throw new ConfigError(`${dir}/client.json has no client_id`);
  }

  const port = Number(env.PORT || DEFAULT_PORT);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigError(`PORT must be a TCP port number, got ${JSON.stringify(env.PORT)}`);
  }
  const issuer = httpUrl(env.PORTAL_ISSUER || registered.issuer, 'issuer');
  // openid-client refuses plain http unless told otherwise: allow it only on this machine.
  if (issuer.protocol === 'http:' && !isLoopback(issuer)) {
    throw new ConfigError(`an http issuer is allowed only on loopback, got ${issuer.href}`);
  }
  const baseUrl = httpUrl(env.PORTAL_BASE_URL || registered.base_url ||
    `http://127.0.0.1:${port}`, 'base URL');
  const base = baseUrl.href.replace(/\/+$/, '');

  const keyFile = registered.key_file || 'key.jwk';
  const keyPath = isAbsolute(keyFile) ? keyFile : resolve(dir, keyFile);
  const jwk = readJson(keyPath, 'private key');
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.d || !jwk.kid) {
    throw new ConfigError(`${keyPath} must be a private EC P-256 JWK with a kid (ES256)`);
  }

  // `python -m clients setup` registers ES256 for the ID tokens (and so the logout tokens).
  const idTokenAlg = registered.id_token_signed_response_alg || 'ES256';

  return {
    port,
    idTokenAlg,
    host: env.HOST || '127.0.0.1',
    issuer,
    insecureIssuer: issuer.protocol === 'http:',
    clientId: registered.client_id,
    name: registered.name || 'Node example',
    jwk,
    baseUrl: base,
    secureCookies: baseUrl.protocol === 'https:',
    redirectUri: `${base}/callback`,
    postLogoutRedirectUri: `${base}/`,
  };
}
