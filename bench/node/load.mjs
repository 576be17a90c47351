// Closed-loop load generator for bench/oidc_bench.py (undici, one process).
//
//   node load.mjs '<json config>'
//
// A fixed number of virtual clients each run one operation after another for
// warmup + seconds; operations completing inside the measured window count.
// Prints one JSON document on stdout: throughput, latency percentiles, errors, and
// how much CPU this process itself used (it shares the machine with the server).
//
// Scenarios: client_credentials, login (authorize -> login form -> code -> token,
// with PKCE; a fresh cookie jar each time, so every iteration is a real sign-in),
// userinfo and introspection (on access tokens from a few logins made first).

import * as crypto from 'node:crypto';
import { performance } from 'node:perf_hooks';

import { Pool } from 'undici';

const cfg = JSON.parse(process.argv[2]);
const base = new URL(cfg.base);
const pool = new Pool(base.origin, {
  connections: cfg.concurrency,
  pipelining: 1,
  keepAliveTimeout: 30_000,
  headersTimeout: 30_000,
  bodyTimeout: 30_000,
});
const basic = 'Basic ' + Buffer.from(
  `${encodeURIComponent(cfg.clientId)}:${encodeURIComponent(cfg.clientSecret)}`,
).toString('base64');
const FORM = 'application/x-www-form-urlencoded';

class Failure extends Error {}

function fail(what, status, body) {
  const text = typeof body === 'string' ? body.replace(/\s+/g, ' ').slice(0, 160) : '';
  throw new Failure(`${what}: HTTP ${status}${text ? ` ${text}` : ''}`);
}

// --- cookies: just enough of RFC 6265 for two servers on one origin ----------
class Jar {
  constructor() {
    this.cookies = new Map();
  }

  take(headers) {
    let raw = headers['set-cookie'];
    if (!raw) return;
    if (!Array.isArray(raw)) raw = [raw];
    for (const line of raw) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = '/';
      let expired = value === '';
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        const key = k.trim().toLowerCase();
        if (key === 'path') path = v.trim() || '/';
        else if (key === 'max-age' && Number(v) <= 0) expired = true;
        else if (key === 'expires' && Date.parse(v) < Date.now()) expired = true;
      }
      const id = `${name};${path}`;
      if (expired) this.cookies.delete(id);
      else this.cookies.set(id, { name, value, path });
    }
  }

  header(path) {
    const out = [];
    for (const c of this.cookies.values()) {
      if (path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)) {
        out.push(`${c.name}=${c.value}`);
      }
    }
    return out.join('; ');
  }
}

async function call(method, target, { headers = {}, body, jar } = {}) {
  const url = new URL(target, base);
  const h = { ...headers };
  if (jar) {
    const cookie = jar.header(url.pathname);
    if (cookie) h.cookie = cookie;
  }
  const res = await pool.request({ method, path: url.pathname + url.search, headers: h, body });
  const text = await res.body.text();
  if (jar) jar.take(res.headers);
  return { status: res.statusCode, headers: res.headers, text };
}

const b64url = (buf) => buf.toString('base64url');

const unescapeHtml = (s) => s.replace(/&(#\d+|#x[0-9a-f]+|amp|lt|gt|quot|apos);/gi, (m, e) => {
  const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
  if (e[0] !== '#') return named[e.toLowerCase()];
  return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1)));
});

function attr(tag, name) {
  const m = tag.match(new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)')`, 'i'));
  return m ? unescapeHtml(m[2] ?? m[3]) : undefined;
}

function parseForm(html) {
  const form = html.match(/<form\b[^>]*>/i);
  if (!form) return undefined;
  const fields = {};
  for (const tag of html.match(/<input\b[^>]*>/gi) || []) {
    if ((attr(tag, 'type') || '').toLowerCase() === 'hidden') {
      fields[attr(tag, 'name')] = attr(tag, 'value') ?? '';
    }
  }
  return { action: attr(form[0], 'action') || '', fields };
}

// --- one sign-in, start to tokens ----------------------------------------------
const steps = {};
function stepTime(name, ms) {
  (steps[name] ||= []).push(ms);
}

async function login(record) {
  const jar = new Jar();
  const verifier = b64url(crypto.randomBytes(48));
  const challenge = b64url(crypto.createHash('sha256').update(verifier).digest());
  const state = b64url(crypto.randomBytes(12));
  const params = new URLSearchParams({
    response_type: 'code',
    client_id: cfg.clientId,
    redirect_uri: cfg.redirectUri,
    scope: cfg.scope,
    state,
    nonce: b64url(crypto.randomBytes(12)),
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  let next = `${cfg.endpoints.authorization}?${params}`;
  let method = 'GET';
  let body;
  let signedIn = false;
  let code;
  for (let hop = 0; hop < 8 && code === undefined; hop += 1) {
    const t0 = performance.now();
    const res = await call(method, next, {
      jar,
      body,
      headers: method === 'POST' ? { 'content-type': FORM } : {},
    });
    const label = method === 'POST' ? 'login_post' : (hop === 0 ? 'authorize'
      : (res.status === 200 ? 'login_page' : 'resume'));
    if (record) stepTime(label, performance.now() - t0);
    if (res.status >= 300 && res.status < 400) {
      const loc = res.headers.location;
      if (loc.startsWith(cfg.redirectUri)) {
        const q = new URL(loc).searchParams;
        if (q.get('error')) fail(`authorization error ${q.get('error')}`, res.status, q.get('error_description'));
        if (q.get('state') !== state) fail('state mismatch', res.status);
        code = q.get('code');
        break;
      }
      next = loc;
      method = 'GET';
      body = undefined;
    } else if (res.status === 200 && !signedIn) {
      const form = parseForm(res.text);
      if (!form) fail(`no login form at ${next}`, res.status, res.text);
      const data = new URLSearchParams({
        ...form.fields,
        username: cfg.username,
        password: cfg.password,
      });
      next = new URL(form.action || next, new URL(next, base)).href;
      method = 'POST';
      body = data.toString();
      signedIn = true;
    } else {
      fail(`${method} ${new URL(next, base).pathname}`, res.status, res.text);
    }
  }
  if (!code) fail('no code after 8 hops', 0);
  const t0 = performance.now();
  const res = await call('POST', cfg.endpoints.token, {
    headers: { authorization: basic, 'content-type': FORM },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: cfg.redirectUri,
      code_verifier: verifier,
    }).toString(),
  });
  if (record) stepTime('token', performance.now() - t0);
  if (res.status !== 200) fail('token (authorization_code)', res.status, res.text);
  const tokens = JSON.parse(res.text);
  if (!tokens.access_token || !tokens.id_token || !tokens.refresh_token) {
    fail('token response lacks access_token, id_token or refresh_token', res.status, res.text);
  }
  return tokens;
}

async function clientCredentials() {
  const res = await call('POST', cfg.endpoints.token, {
    headers: { authorization: basic, 'content-type': FORM },
    body: 'grant_type=client_credentials',
  });
  if (res.status !== 200) fail('token (client_credentials)', res.status, res.text);
  if (!JSON.parse(res.text).access_token) fail('no access_token', res.status, res.text);
}

let tokenSet = [];

async function userinfo(i) {
  const token = tokenSet[i % tokenSet.length];
  const res = await call('GET', cfg.endpoints.userinfo, {
    headers: { authorization: `Bearer ${token.access_token}` },
  });
  if (res.status !== 200) fail('userinfo', res.status, res.text);
  if (!JSON.parse(res.text).sub) fail('userinfo without sub', res.status, res.text);
}

async function introspection(i) {
  const token = tokenSet[i % tokenSet.length];
  const res = await call('POST', cfg.endpoints.introspection, {
    headers: { authorization: basic, 'content-type': FORM },
    body: new URLSearchParams({ token: token.access_token, token_type_hint: 'access_token' })
      .toString(),
  });
  if (res.status !== 200) fail('introspection', res.status, res.text);
  if (JSON.parse(res.text).active !== true) fail('token not active', res.status, res.text);
}

const scenarios = {
  client_credentials: () => clientCredentials(),
  login: (i, record) => login(record),
  userinfo: (i) => userinfo(i),
  introspection: (i) => introspection(i),
};

function summary(values) {
  if (!values.length) return null;
  const v = Float64Array.from(values).sort();
  const at = (q) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))];
  const sum = v.reduce((a, b) => a + b, 0);
  const r = (x) => Math.round(x * 100) / 100;
  return { n: v.length, mean: r(sum / v.length), p50: r(at(0.5)), p90: r(at(0.9)),
    p99: r(at(0.99)), max: r(v[v.length - 1]) };
}

async function main() {
  const op = scenarios[cfg.scenario];
  if (!op) throw new Error(`unknown scenario ${cfg.scenario}`);
  const setupStart = performance.now();
  if (cfg.scenario === 'userinfo' || cfg.scenario === 'introspection') {
    const n = Math.max(1, Math.min(cfg.tokens ?? 4, cfg.concurrency));
    tokenSet = await Promise.all(Array.from({ length: n }, () => login(false)));
  }
  const setupMs = performance.now() - setupStart;

  const latencies = [];
  let errors = 0;
  const errorSamples = new Map();
  const t0 = performance.now();
  const measureFrom = t0 + cfg.warmup * 1000;
  const measureTo = measureFrom + cfg.seconds * 1000;
  let cpuAtStart;
  let cpuAtEnd;
  // MARK lines tell the orchestrator when the measured window opens and closes, so
  // it can read the server's CPU counters at the same moments.
  const startTimer = setTimeout(() => {
    cpuAtStart = process.cpuUsage();
    process.stderr.write('MARK start\n');
  }, cfg.warmup * 1000);
  const endTimer = setTimeout(() => {
    cpuAtEnd = process.cpuUsage();
    process.stderr.write('MARK end\n');
  }, (cfg.warmup + cfg.seconds) * 1000);

  async function virtualClient(i) {
    while (performance.now() < measureTo) {
      const start = performance.now();
      const inWindow = start >= measureFrom;
      let ok = true;
      try {
        await op(i, inWindow);
      } catch (err) {
        ok = false;
        const key = err instanceof Failure ? err.message : `${err.name}: ${err.message}`;
        if (performance.now() >= measureFrom) {
          errorSamples.set(key, (errorSamples.get(key) || 0) + 1);
        }
        if (!(err instanceof Failure)) {
          await new Promise((r) => { setTimeout(r, 50); }); // connection trouble: back off
        }
      }
      const end = performance.now();
      if (end >= measureFrom && end <= measureTo) {
        if (ok) latencies.push(end - start);
        else errors += 1;
      }
    }
  }

  await Promise.all(Array.from({ length: cfg.concurrency }, (_, i) => virtualClient(i)));
  clearTimeout(startTimer);
  clearTimeout(endTimer);
  if (!cpuAtEnd) {
    cpuAtEnd = process.cpuUsage();
    process.stderr.write('MARK end\n');
  }
  cpuAtStart ||= { user: 0, system: 0 };
  const cpuUs = (cpuAtEnd.user - cpuAtStart.user) + (cpuAtEnd.system - cpuAtStart.system);

  const stepSummary = {};
  for (const [name, values] of Object.entries(steps)) stepSummary[name] = summary(values);
  const out = {
    scenario: cfg.scenario,
    concurrency: cfg.concurrency,
    seconds: cfg.seconds,
    warmup: cfg.warmup,
    ok: latencies.length,
    errors,
    error_samples: Object.fromEntries([...errorSamples.entries()].slice(0, 6)),
    throughput: Math.round((latencies.length / cfg.seconds) * 100) / 100,
    latency_ms: summary(latencies),
    steps_ms: Object.keys(stepSummary).length ? stepSummary : undefined,
    setup_ms: Math.round(setupMs),
    client_cpu_pct: Math.round((cpuUs / 1e4 / cfg.seconds) * 10) / 10,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  await pool.close();
}

main().catch((err) => {
  process.stderr.write(`load generator failed: ${err.stack || err}\n`);
  process.exit(1);
});
