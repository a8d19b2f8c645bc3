// Closed-loop load on one URL, for bench/ceiling.py: the same undici Pool settings as
// loadgen.mjs (16 keep-alive connections, no pipelining), POST /token with a form body, every
// answer checked for 200. Prints one JSON object {rate, errors}.
//
//   node ceiling.mjs --url http://127.0.0.1:PORT [--connections 16] [--duration 10] [--warmup 3]
import { parseArgs } from 'node:util';

import { Pool } from 'undici';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    connections: { type: 'string', default: '16' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
  },
});
const CONNECTIONS = Number(args.connections);
const DURATION_MS = Number(args.duration) * 1000;
const WARMUP_MS = Number(args.warmup) * 1000;
setTimeout(() => process.exit(3), WARMUP_MS + DURATION_MS + 60000).unref();

const pool = new Pool(args.url, { connections: CONNECTIONS, pipelining: 1 });
const start = Date.now();
const measureFrom = start + WARMUP_MS;
const end = measureFrom + DURATION_MS;
let done = 0;
let errors = 0;

async function virtualUser() {
  while (Date.now() < end) {
    const res = await pool.request({
      path: '/token',
      method: 'POST',
      body: 'grant_type=client_credentials',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      headersTimeout: 10000,
      bodyTimeout: 10000,
    });
    await res.body.text();
    const now = Date.now();
    if (now >= measureFrom && now < end) {
      if (res.statusCode === 200) done += 1;
      else errors += 1;
    }
  }
}

await Promise.all(Array.from({ length: CONNECTIONS }, virtualUser));
await pool.close();
process.stdout.write(`${JSON.stringify({ rate: done / (DURATION_MS / 1000), errors })}\n`);
