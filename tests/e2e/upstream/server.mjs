// An independent upstream OpenID Connect provider for the upstream-login tests: another
// province's or a department's IdP, played by node-oidc-provider.
//
// Environment:
//   UPSTREAM_PORT          port on 127.0.0.1
//   UPSTREAM_CLIENTS       JSON list of {client_id, client_secret, redirect_uris}
//   UPSTREAM_ACCOUNTS      path of a JSON file {"accounts": [{username, password, sub,
//                          claims: {...}, tamper?}]}; read at every use, so a test can
//                          change a person's claims between two sign-ins
//   UPSTREAM_ID_CLAIM      name of the claim carrying the ID number (scope "idcard")
//   UPSTREAM_CLAIMS_IN_ID_TOKEN  "1": profile/idcard claims go into the ID token;
//                          otherwise only the userinfo endpoint returns them (the default
//                          of OpenID Connect Core §5.4 when an access token is issued)
//
// ``tamper`` makes the token endpoint hand back a spoiled ID token for that account
// ("bad_signature", "wrong_aud", "wrong_iss", "wrong_nonce", "expired", "unknown_key",
// "none"), the way a man in the middle or a broken upstream would, so the tests can see
// the relying party refuse it. Prints "ready <issuer>" once listening.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

const env = (name, fallback) => {
  const value = process.env[name];
  if (value === undefined || value === '') {
    if (fallback === undefined) throw new Error(`missing environment variable ${name}`);
    return fallback;
  }
  return value;
};

const PORT = Number(env('UPSTREAM_PORT'));
const ISSUER = `http://127.0.0.1:${PORT}`;
const CLIENTS = JSON.parse(env('UPSTREAM_CLIENTS'));
const ACCOUNTS = env('UPSTREAM_ACCOUNTS');
const ID_CLAIM = env('UPSTREAM_ID_CLAIM', 'id_number');
const CLAIMS_IN_ID_TOKEN = env('UPSTREAM_CLAIMS_IN_ID_TOKEN', '1') === '1';

function accounts() {
  return JSON.parse(fs.readFileSync(ACCOUNTS, 'utf8')).accounts;
}

const bySub = (sub) => accounts().find((a) => a.sub === sub);

function esKey() {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: `up-${crypto.randomBytes(6).toString('hex')}`,
    alg: 'ES256', use: 'sig' };
}
const signingJwk = esKey();
const signingKey = crypto.createPrivateKey({ key: signingJwk, format: 'jwk' });
const strangerKey = crypto.createPrivateKey({ key: esKey(), format: 'jwk' });

const b64u = (data) => Buffer.from(data).toString('base64url');

function sign(header, payload, key) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
  const sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

function tamper(idToken, mode) {
  const [h, p, s] = idToken.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case 'bad_signature': {
      const raw = Buffer.from(s, 'base64url');
      raw[0] ^= 0x01;
      return `${h}.${p}.${raw.toString('base64url')}`;
    }
    case 'wrong_aud': return sign(header, { ...claims, aud: 'someone-else' }, signingKey);
    case 'wrong_iss': return sign(header, { ...claims, iss: 'https://evil.example' }, signingKey);
    case 'wrong_nonce': return sign(header, { ...claims, nonce: 'replayed-nonce' }, signingKey);
    case 'expired': return sign(header, { ...claims, iat: now - 7200, exp: now - 3600 }, signingKey);
    case 'unknown_key': return sign({ ...header, kid: 'not-published' }, claims, strangerKey);
    case 'none': return `${b64u(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${p}.`;
    default: return idToken;
  }
}

const configuration = {
  clients: CLIENTS.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
  })),
  jwks: { keys: [signingJwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'profile', 'idcard'],
  claims: { openid: ['sub'], profile: ['name'], idcard: [ID_CLAIM] },
  conformIdTokenClaims: !CLAIMS_IN_ID_TOKEN,
  async findAccount(ctx, sub) {
    if (!bySub(sub)) return undefined;
    return {
      accountId: sub,
      async claims() {
        const account = bySub(sub);  // read again: the test may have changed it
        return { sub, ...(account ? account.claims : {}) };
      },
    };
  },
  // The relying parties are the upstream's own partners: no consent page.
  async loadExistingGrant(ctx) {
    const { oidc } = ctx;
    const grant = new oidc.provider.Grant({ clientId: oidc.client.clientId,
      accountId: oidc.session.accountId });
    grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
    for (const claim of ['name', ID_CLAIM]) grant.addOIDCClaims([claim]);
    await grant.save();
    return grant;
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: { devInteractions: { enabled: false }, userinfo: { enabled: true } },
  pkce: { required: () => true },  // so a relying party that forgets PKCE fails
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 600,
    Grant: 600 },
};

const provider = new Provider(ISSUER, configuration);
provider.on('server_error', (ctx, err) => console.error('server_error', err));

provider.use(async (ctx, next) => {
  await next();
  if (ctx.path !== '/token' || !ctx.body || typeof ctx.body.id_token !== 'string') return;
  const payload = JSON.parse(Buffer.from(ctx.body.id_token.split('.')[1], 'base64url'));
  const mode = bySub(payload.sub)?.tamper;
  if (mode === 'no_id_token') delete ctx.body.id_token;
  else if (mode) ctx.body.id_token = tamper(ctx.body.id_token, mode);
});

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

function loginPage(uid, error) {
  return `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>上游登录</title></head>
<body><h1>上游统一身份认证</h1>${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label for="username">用户名</label><input id="username" name="username" required>
<label for="password">密码</label><input id="password" name="password" type="password" required>
<button type="submit">登录</button></form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort"><button type="submit">取消</button></form>
</body></html>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function interaction(req, res, path) {
  const details = await provider.interactionDetails(req, res);
  const base = `/interaction/${details.uid}`;
  if (req.method === 'GET' && path === base) {
    send(res, 200, loginPage(details.uid));
  } else if (req.method === 'POST' && path === `${base}/login`) {
    const form = await readForm(req);
    const account = accounts().find((a) => a.username === form.get('username')
      && a.password === form.get('password'));
    if (!account) {
      send(res, 400, loginPage(details.uid, '用户名或密码错误。'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: account.sub } },
      { mergeWithLastSubmission: false });
  } else if (req.method === 'POST' && path === `${base}/abort`) {
    await provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'The person cancelled the sign-in.',
    }, { mergeWithLastSubmission: false });
  } else {
    send(res, 404, 'not found', 'text/plain');
  }
}

const callback = provider.callback();
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
  callback(req, res);
});
server.listen(PORT, '127.0.0.1', () => console.log(`ready ${ISSUER}`));
const stop = () => { server.close(); setTimeout(() => process.exit(0), 100).unref(); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
