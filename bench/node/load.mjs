// Load generator for bench/oidc_bench.py (undici, one process).
//
//   node load.mjs '<json config>'
//
// Closed loop (default): a fixed number of virtual clients each run one operation
// after another for warmup + seconds; operations completing inside the measured window
// count. Open loop (cfg.rate > 0): operations start at a fixed offered rate whatever
// the server's answers, and each latency is measured from the moment the operation was
// due (so a stalled server is not hidden by fewer requests being sent).
// Prints one JSON document on stdout: throughput, latency percentiles, errors, and
// how much CPU this process itself used (it shares the machine with the server).
//
// People: cfg.users is a list of [username, password]; virtual client i signs in only
// the people at positions i, i + concurrency, ... so no account is ever signed in from
// two clients at once (per-account lockout then never sees concurrent correct attempts).
//
// Scenarios:
//   client_credentials  POST /token grant_type=client_credentials
//   login               authorize -> login form -> POST password -> code -> token (PKCE),
//                       a fresh cookie jar each time: every iteration is a real sign-in
//   code                only POST /token with a fresh authorization code each time; the
//                       codes are minted beforehand (one sign-in per client, then
//                       authorize requests on its SSO session) and not timed
//   refresh             POST /token grant_type=refresh_token, using the rotated refresh
//                       token of the previous answer each time (one chain per client)
//   userinfo            GET userinfo with a bearer token (one sign-in per client first)
//   introspection       POST introspection with an access token (likewise)
//   discovery           GET /.well-known/openid-configuration
//   jwks                GET the jwks_uri

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

// --- sign-in ----------------------------------------------------------------
const steps = {};
function stepTime(name, ms) {
  (steps[name] ||= []).push(ms);
}

const users = cfg.users && cfg.users.length ? cfg.users : [[cfg.username, cfg.password]];
const userCursor = new Map();
// The next of virtual client i's own people.
function userFor(i) {
  const own = [];
  for (let j = i % users.length; j < users.length; j += Math.max(1, cfg.concurrency)) own.push(j);
  const k = userCursor.get(i) || 0;
  userCursor.set(i, k + 1);
  return users[own[k % own.length]];
}

// One authorization request, up to the code. With a jar holding a live SSO session it is
// authorize -> 302 with the code; otherwise the login form is filled in on the way.
async function authorize(jar, user, record) {
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
  for (let hop = 0; hop < 8; hop += 1) {
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
        return { code: q.get('code'), verifier };
      }
      next = loc;
      method = 'GET';
      body = undefined;
    } else if (res.status === 200 && !signedIn) {
      const form = parseForm(res.text);
      if (!form) fail(`no login form at ${next}`, res.status, res.text);
      const data = new URLSearchParams({ ...form.fields, username: user[0], password: user[1] });
      next = new URL(form.action || next, new URL(next, base)).href;
      method = 'POST';
      body = data.toString();
      signedIn = true;
    } else {
      fail(`${method} ${new URL(next, base).pathname}`, res.status, res.text);
    }
  }
  return fail('no code after 8 hops', 0);
}

async function exchange(code, verifier) {
  const res = await call('POST', cfg.endpoints.token, {
    headers: { authorization: basic, 'content-type': FORM },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: cfg.redirectUri,
      code_verifier: verifier,
    }).toString(),
  });
  if (res.status !== 200) fail('token (authorization_code)', res.status, res.text);
  const tokens = JSON.parse(res.text);
  if (!tokens.access_token || !tokens.id_token || !tokens.refresh_token) {
    fail('token response lacks access_token, id_token or refresh_token', res.status, res.text);
  }
  return tokens;
}

async function login(i, record) {
  const { code, verifier } = await authorize(new Jar(), userFor(i), record);
  const t0 = performance.now();
  const tokens = await exchange(code, verifier);
  if (record) stepTime('token', performance.now() - t0);
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

// --- per-client state made before the window ----------------------------------
let tokenSet = [];     // one token response per client (userinfo, introspection)
let chains = [];       // refresh-token chains: { token, busy }
let codes = [];        // minted { code, verifier }, used once each
let codesExhaustedAt;  // when the first operation found no code left

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

class OutOfCodes extends Error {}

async function codeExchange() {
  const minted = codes.pop();
  if (!minted) {
    codesExhaustedAt ||= performance.now();
    throw new OutOfCodes('minted codes used up');
  }
  await exchange(minted.code, minted.verifier);
}

async function refresh(i) {
  // Closed loop: chain i belongs to client i. Open loop: the first idle chain.
  let chain = chains[i % chains.length];
  if (chain.busy) chain = chains.find((c) => !c.busy);
  if (!chain) throw new Failure('refresh: every chain busy (offered rate too high for --concurrency chains)');
  chain.busy = true;
  try {
    const res = await call('POST', cfg.endpoints.token, {
      headers: { authorization: basic, 'content-type': FORM },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: chain.token })
        .toString(),
    });
    if (res.status !== 200) fail('token (refresh_token)', res.status, res.text);
    const tokens = JSON.parse(res.text);
    if (!tokens.access_token) fail('refresh answer without access_token', res.status, res.text);
    if (!tokens.refresh_token) fail('refresh answer without a rotated refresh_token', res.status, res.text);
    chain.token = tokens.refresh_token;
  } finally {
    chain.busy = false;
  }
}

async function getJson(path, what, check) {
  const res = await call('GET', path);
  if (res.status !== 200) fail(what, res.status, res.text);
  if (!check(JSON.parse(res.text))) fail(`${what}: unexpected document`, res.status, res.text);
}

const scenarios = {
  client_credentials: () => clientCredentials(),
  login: (i, record) => login(i, record),
  code: () => codeExchange(),
  refresh: (i) => refresh(i),
  userinfo: (i) => userinfo(i),
  introspection: (i) => introspection(i),
  discovery: () => getJson('/.well-known/openid-configuration', 'discovery', (d) => !!d.issuer),
  jwks: () => getJson(cfg.endpoints.jwks, 'jwks', (d) => Array.isArray(d.keys) && d.keys.length > 0),
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

const clients = () => Array.from({ length: cfg.concurrency }, (_, i) => i);

// Set-up steps (untimed) retried once when a kept-alive connection was closed by the
// server just as it was reused (gunicorn closes idle ones after 2 s): not an error of
// the provider, and a set-up failure would lose the whole phase.
async function setupStep(fn) {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof Failure) throw err;
    return fn();
  }
}

// Sign each client's first person in once; return its jar and token response.
async function signInEach() {
  return Promise.all(clients().map(async (i) => {
    const jar = new Jar();
    const user = userFor(i);
    const { code, verifier } = await setupStep(() => authorize(jar, user, false));
    return { jar, tokens: await exchange(code, verifier) };
  }));
}

async function setup() {
  const s = cfg.scenario;
  if (s === 'userinfo' || s === 'introspection' || s === 'refresh') {
    const signed = await signInEach();
    tokenSet = signed.map((x) => x.tokens);
    chains = tokenSet.map((t) => ({ token: t.refresh_token, busy: false }));
    if (s === 'refresh' && cfg.rate > 0) {
      // Open loop: requests overlap beyond --concurrency, and one chain carries one
      // refresh at a time; more grants from the same SSO sessions (no more passwords).
      const perClient = Math.max(1, Math.ceil((cfg.chains ?? 8 * cfg.concurrency) / signed.length) - 1);
      await Promise.all(signed.map(async ({ jar }, i) => {
        for (let k = 0; k < perClient; k += 1) {
          const { code, verifier } = await setupStep(() => authorize(jar, userFor(i), false));
          chains.push({ token: (await exchange(code, verifier)).refresh_token, busy: false });
        }
      }));
    }
  } else if (s === 'code') {
    // Codes live 60 s on both servers: mint at most cfg.codes, and no longer than
    // cfg.mintSeconds, so the last ones are still fresh when the window closes.
    const signed = await signInEach();
    const want = Math.max(cfg.concurrency, cfg.codes ?? 2000);
    const until = performance.now() + (cfg.mintSeconds ?? 20) * 1000;
    await Promise.all(signed.map(async ({ jar }, i) => {
      while (codes.length < want && performance.now() < until) {
        codes.push(await setupStep(() => authorize(jar, userFor(i), false)));
      }
    }));
    codes.reverse(); // pop() takes the oldest first
  }
}

async function main() {
  const op = scenarios[cfg.scenario];
  if (!op) throw new Error(`unknown scenario ${cfg.scenario}`);
  const setupStart = performance.now();
  await setup();
  const setupMs = performance.now() - setupStart;
  const minted = codes.length;

  const latencies = [];
  let errors = 0;
  let late = 0;
  const errorSamples = new Map();
  const t0 = performance.now();
  const measureFrom = t0 + cfg.warmup * 1000;
  let measureTo = measureFrom + cfg.seconds * 1000;
  let cpuAtStart;
  let cpuAtEnd;
  let startedAt;
  let endedAt;
  // MARK lines tell the orchestrator when the measured window opens and closes, so
  // it can read the server's CPU counters at the same moments.
  const startTimer = setTimeout(() => {
    cpuAtStart = process.cpuUsage();
    startedAt = performance.now();
    process.stderr.write('MARK start\n');
  }, cfg.warmup * 1000);
  function closeWindow() {
    if (cpuAtEnd) return;
    cpuAtEnd = process.cpuUsage();
    endedAt = performance.now();
    measureTo = Math.min(measureTo, endedAt);
    process.stderr.write('MARK end\n');
  }
  const endTimer = setTimeout(closeWindow, (cfg.warmup + cfg.seconds) * 1000);

  function record(start, end, err) {
    if (err) {
      const key = err instanceof Failure ? err.message : `${err.name}: ${err.message}`;
      if (end >= measureFrom) errorSamples.set(key, (errorSamples.get(key) || 0) + 1);
    }
    // Closed loop: what completes inside the window; open loop: what was due inside it.
    const inWindow = cfg.rate > 0 ? (start >= measureFrom && start < measureTo)
      : (end >= measureFrom && end <= measureTo);
    if (inWindow) {
      if (!err) latencies.push(end - start);
      else errors += 1;
    }
  }

  async function once(i, due) {
    let err;
    try {
      await op(i, due >= measureFrom);
    } catch (e) {
      err = e;
    }
    const end = performance.now();
    if (err instanceof OutOfCodes) {
      // The window closes with the last code: a run that mints too few codes is short,
      // not wrong (its window length is in the output).
      closeWindow();
      return false;
    }
    record(due, end, err);
    if (err && !(err instanceof Failure)) {
      await new Promise((r) => { setTimeout(r, 50); }); // connection trouble: back off
    }
    return true;
  }

  if (cfg.rate > 0) {
    // Open loop: the k-th operation is due at t0 + k / rate, whatever came back.
    const interval = 1000 / cfg.rate;
    const maxInFlight = cfg.maxInFlight ?? 1024;
    const inflight = new Set();
    let k = 0;
    while (!cpuAtEnd) {
      const due = t0 + k * interval;
      const now = performance.now();
      if (due > now) {
        await new Promise((r) => { setTimeout(r, Math.max(0, due - now)); });
        continue;
      }
      k += 1;
      if (due >= measureTo) break;
      if (inflight.size >= maxInFlight) {
        if (due >= measureFrom) late += 1; // could not even be sent: counted, not timed
        continue;
      }
      const p = once(k % Math.max(1, cfg.concurrency), due).finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await Promise.all(inflight);
  } else {
    await Promise.all(clients().map(async (i) => {
      while (performance.now() < measureTo) {
        if (!(await once(i, performance.now()))) break;
      }
    }));
  }
  clearTimeout(startTimer);
  clearTimeout(endTimer);
  closeWindow();
  cpuAtStart ||= { user: 0, system: 0 };
  const cpuUs = (cpuAtEnd.user - cpuAtStart.user) + (cpuAtEnd.system - cpuAtStart.system);
  const windowS = startedAt ? Math.max(1e-3, (endedAt - startedAt) / 1000) : cfg.seconds;

  const stepSummary = {};
  for (const [name, values] of Object.entries(steps)) stepSummary[name] = summary(values);
  const out = {
    scenario: cfg.scenario,
    mode: cfg.rate > 0 ? 'open' : 'closed',
    offered_rate: cfg.rate > 0 ? cfg.rate : undefined,
    concurrency: cfg.concurrency,
    seconds: cfg.seconds,
    window_s: Math.round(windowS * 1000) / 1000,
    warmup: cfg.warmup,
    ok: latencies.length,
    errors,
    late,
    error_samples: Object.fromEntries([...errorSamples.entries()].slice(0, 6)),
    throughput: Math.round((latencies.length / windowS) * 100) / 100,
    latency_ms: summary(latencies),
    steps_ms: Object.keys(stepSummary).length ? stepSummary : undefined,
    setup_ms: Math.round(setupMs),
    codes_minted: cfg.scenario === 'code' ? minted : undefined,
    client_cpu_pct: Math.round((cpuUs / 1e4 / windowS) * 10) / 10,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  await pool.close();
}

main().catch((err) => {
  process.stderr.write(`load generator failed: ${err.stack || err}\n`);
  process.exit(1);
});
