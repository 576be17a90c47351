// node-oidc-provider configured like our provider, for bench/oidc_bench.py.
//
// One confidential first-party client (client_secret_basic; authorization_code,
// refresh_token, client_credentials), one citizen whose password is checked with
// Argon2id at the same parameters as ours, ES256 signing, PKCE (S256), JWT access
// tokens for the resource server through resource indicators, introspection, and a
// minimal login form in place of devInteractions (off in production).
//
// Configuration comes from the environment (see bench/_servers.py); it prints
// "ready <url>" on stdout once listening.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import argon2 from 'argon2';
import Provider, { errors } from 'oidc-provider';

import RedisAdapter from './redis_adapter.mjs';

const env = (name, fallback) => {
  const value = process.env[name];
  if (value === undefined || value === '') {
    if (fallback === undefined) throw new Error(`missing environment variable ${name}`);
    return fallback;
  }
  return value;
};

const PORT = Number(env('BENCH_PORT'));
const ISSUER = env('BENCH_ISSUER', `http://127.0.0.1:${PORT}`);
const CLIENT_ID = env('BENCH_CLIENT_ID');
const CLIENT_SECRET = env('BENCH_CLIENT_SECRET');
const REDIRECT_URI = env('BENCH_REDIRECT_URI', 'https://rp.example/cb');
const ADAPTER = env('BENCH_ADAPTER', 'memory');
// The resource server that client-credentials tokens are for (JWT access tokens).
const API_RESOURCE = env('BENCH_API_RESOURCE', 'https://api.bench.example');

const ARGON2 = {
  type: argon2.argon2id,
  timeCost: Number(env('BENCH_ARGON2_TIME_COST', '3')),
  memoryCost: Number(env('BENCH_ARGON2_MEMORY_COST', String(64 * 1024))),
  parallelism: Number(env('BENCH_ARGON2_PARALLELISM', '1')),
  hashLength: 32,
  saltLength: 16,
};

// --- accounts: in process memory, keyed by ID number --------------------------
const accounts = new Map();
const accountsById = new Map();

const hashes = new Map(); // password -> its Argon2id hash: many bench people share one
async function addAccount(idNumber, name, password) {
  if (!hashes.has(password)) hashes.set(password, await argon2.hash(password, ARGON2));
  const account = {
    id: crypto.randomBytes(16).toString('hex'),
    idNumber,
    name,
    passwordHash: hashes.get(password),
  };
  accounts.set(idNumber, account);
  accountsById.set(account.id, account);
  return account;
}

// Argon2 needs a hash to compare with even for an unknown user, so an unknown ID
// number costs as much as a known one (ours does the same).
const dummyHash = await argon2.hash('not-a-password-of-anyone', ARGON2);

async function checkPassword(idNumber, password) {
  const account = accounts.get(idNumber.trim().toUpperCase());
  const ok = await argon2.verify(account ? account.passwordHash : dummyHash, password);
  return ok && account ? account : undefined;
}

function maskIdNumber(number) {
  return number.length >= 14 ? number.slice(0, 6) + '*'.repeat(number.length - 10) + number.slice(-4)
    : '*'.repeat(number.length);
}

// --- keys ------------------------------------------------------------------
function es256Jwk() {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `es256-${crypto.randomBytes(8).toString('hex')}`, alg: 'ES256', use: 'sig' };
}

// --- provider ----------------------------------------------------------------
const configuration = {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    client_name: 'bench relying party (first party)',
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    id_token_signed_response_alg: 'ES256',
    scope: 'openid profile phone offline_access',
  }],
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  jwks: { keys: [es256Jwk()] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'profile', 'phone', 'offline_access'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'id_number_masked', 'id_type'],
    acr: null,
    auth_time: null,
    sid: null,
  },
  async findAccount(ctx, sub) {
    const account = accountsById.get(sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          name: account.name,
          id_number_masked: maskIdNumber(account.idNumber),
          id_type: 'resident',
        };
      },
    };
  },
  // First-party client: no consent page. A grant covering what was asked for is
  // made on the spot (ours skips consent for --first-party clients the same way).
  async loadExistingGrant(ctx) {
    const { oidc } = ctx;
    const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
    if (grantId) {
      const found = await oidc.provider.Grant.find(grantId);
      if (found) return found;
    }
    if (oidc.client.clientId !== CLIENT_ID) return undefined;
    const grant = new oidc.provider.Grant({
      clientId: oidc.client.clientId,
      accountId: oidc.session.accountId,
    });
    grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
    await grant.save();
    return grant;
  },
  // Ours issues a refresh token to every client allowed the refresh_token grant;
  // node-oidc-provider by default only with offline_access. Made alike.
  async issueRefreshToken(ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  // Ours rotates the refresh token at every use; node-oidc-provider by default only for
  // public or sender-constrained clients. Made alike.
  rotateRefreshToken: true,
  interactions: {
    url(ctx, interaction) {
      return `/interaction/${interaction.uid}`;
    },
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Client-credentials tokens are for the API (a JWT); tokens from the code flow
      // stay audience-less (opaque) so that they work at userinfo, which
      // node-oidc-provider only allows for tokens without an audience.
      async defaultResource(ctx, client, oneOf) {
        if (oneOf) return oneOf;
        if (ctx.oidc.params?.grant_type === 'client_credentials') return API_RESOURCE;
        return undefined;
      },
      async useGrantedResource() {
        return false;
      },
      async getResourceServerInfo(ctx, resourceIndicator) {
        if (resourceIndicator !== API_RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: 'api:read',
          audience: API_RESOURCE,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  pkce: { required: () => false }, // as ours: required of public clients only (we send it anyway)
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    ClientCredentials: 3600,
    IdToken: 3600,
    RefreshToken: 30 * 24 * 3600,
    Interaction: 15 * 60,
    Session: 8 * 3600,
    Grant: 30 * 24 * 3600,
  },
};

if (ADAPTER === 'redis') {
  RedisAdapter.connect(env('BENCH_REDIS_URL', 'redis://127.0.0.1:6379/0'),
    env('BENCH_REDIS_PREFIX', 'oidcbench:'));
  configuration.adapter = RedisAdapter;
} else if (ADAPTER !== 'memory') {
  throw new Error(`unknown BENCH_ADAPTER ${ADAPTER}`);
}

const provider = new Provider(ISSUER, configuration);
provider.on('server_error', (ctx, err) => {
  console.error('server_error', err);
});

// BENCH_USERS: a JSON list of [ID number, name, password], the people the load signs in.
for (const [idNumber, name, password] of JSON.parse(env('BENCH_USERS'))) {
  await addAccount(idNumber, name, password);
}

// --- the interaction pages ---------------------------------------------------
const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

function loginPage(uid, error) {
  return `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>登录</title></head>
<body><h1>登录</h1>${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="on">
<label for="username">身份证号码</label><input id="username" name="username" required maxlength="40">
<label for="password">密码</label><input id="password" name="password" type="password" required maxlength="256">
<button type="submit">登录</button></form></body></html>`;
}

async function readForm(req, limit = 16 * 1024) {
  let size = 0;
  const chunks = [];
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function interaction(req, res, path) {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name !== 'login') {
    // The grant is made in loadExistingGrant, so only the login prompt is expected.
    send(res, 400, `unexpected prompt ${escapeHtml(details.prompt.name)}`, 'text/plain');
    return;
  }
  if (req.method === 'GET' && path === `/interaction/${details.uid}`) {
    send(res, 200, loginPage(details.uid));
    return;
  }
  if (req.method === 'POST' && path === `/interaction/${details.uid}/login`) {
    const form = await readForm(req);
    const account = await checkPassword(form.get('username') || '', form.get('password') || '');
    if (!account) {
      send(res, 400, loginPage(details.uid, '证件号码与密码不匹配。'));
      return;
    }
    await provider.interactionFinished(req, res, {
      login: { accountId: account.id, amr: ['pwd'], acr: 'L2' },
    }, { mergeWithLastSubmission: false });
    return;
  }
  send(res, 404, 'not found', 'text/plain');
}

const providerCallback = provider.callback();

const server = http.createServer((req, res) => {
  const path = req.url.split('?', 1)[0];
  if (path.startsWith('/interaction/')) {
    interaction(req, res, path).catch((err) => {
      const known = err instanceof errors.SessionNotFound;
      if (!known) console.error('interaction error', err);
      if (!res.headersSent) send(res, known ? 400 : 500, String(err.message), 'text/plain');
    });
    return;
  }
  providerCallback(req, res);
});
server.keepAliveTimeout = 5000;
server.listen(PORT, '127.0.0.1', () => {
  console.log(`ready ${ISSUER} adapter=${ADAPTER}`);
});

const stop = () => {
  server.close();
  RedisAdapter.disconnect();
  setTimeout(() => process.exit(0), 200).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
