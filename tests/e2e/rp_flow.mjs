// An independent relying party: openid-client (5.x) against a running provider.
//
// The browser part is plain HTTP: fetch with redirects handled here and a small cookie
// jar, so every hop of /authorize -> /login -> /consent -> redirect_uri is visible.
// Everything a relying party must check (state, iss, PKCE, ID-token signature, nonce,
// at_hash, userinfo sub) is left to openid-client.
//
// Config (RP_CONFIG, see oidc_common.mjs):
//   { "scenario": "full" | "private_key_jwt" | "wrong_secret" | "public_revoke" | "silent",
//     "issuer": "http://127.0.0.1:PORT",
//     "username": "...", "password": "...", "scope": "openid profile",
//     "client": { "client_id", "client_secret"?, "redirect_uri",
//                 "token_endpoint_auth_method", "jwk"? (private, for private_key_jwt) },
//     "wrong_secret"?: "...",
//     "login_hint"?: "...",          sent with the authorization request
//     "org_choice"?: "<credit code>", the enterprise to pick on the selection page
//     "follow_refusal"?: true,        on the org refusal page (403), record it and follow
//                                     its link back to the application
//     "pause"?: true }                scenario "org": stop before the after-revocation
//                                     steps (see pause())
// Scenarios for acting for an enterprise (scope "org"): "org" and "org_refused".
// Output: one JSON object on stdout: { scenario, completed, steps: { name: {...} } }.

import { generators } from 'openid-client';

import {
  attempt, ask, config, discover, finish, Halt, isJwt, makeClient as clientOf, must, out,
} from './oidc_common.mjs';

out.scenario = config.scenario;

// ---------------------------------------------------------------- browser part

const jar = new Map(); // hostname -> Map(cookie name -> value); cookies ignore ports

function cookieHeader(url) {
  const cookies = jar.get(new URL(url).hostname);
  if (!cookies || cookies.size === 0) return undefined;
  return [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
}

function storeCookies(url, res) {
  const host = new URL(url).hostname;
  if (!jar.has(host)) jar.set(host, new Map());
  const cookies = jar.get(host);
  for (const line of res.headers.getSetCookie()) {
    const [pair, ...attrs] = line.split(';');
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    let expired = false;
    for (const attr of attrs) {
      const i = attr.indexOf('=');
      const key = (i < 0 ? attr : attr.slice(0, i)).trim().toLowerCase();
      const val = i < 0 ? '' : attr.slice(i + 1).trim();
      if (key === 'max-age' && Number(val) <= 0) expired = true;
      if (key === 'expires' && Date.parse(val) < Date.now()) expired = true;
    }
    if (expired) cookies.delete(name);
    else cookies.set(name, value);
  }
}

async function http(url, { method = 'GET', form } = {}) {
  const headers = { accept: 'text/html,application/xhtml+xml' };
  const cookie = cookieHeader(url);
  if (cookie) headers.cookie = cookie;
  let body;
  if (form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(form).toString();
  }
  const res = await fetch(url, { method, headers, body, redirect: 'manual' });
  storeCookies(url, res);
  return res;
}

function unescapeHtml(s) {
  return s
    .replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_, n) => String.fromCodePoint(parseInt(n, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attributes(tag) {
  const attrs = {};
  for (const m of tag.matchAll(/([a-zA-Z_:-]+)\s*=\s*"([^"]*)"/g)) {
    attrs[m[1].toLowerCase()] = unescapeHtml(m[2]);
  }
  return attrs;
}

// The first POST form of a page: its action (absolute) and hidden fields.
function parseForm(html, pageUrl) {
  const formTag = html.match(/<form\b[^>]*method="post"[^>]*>/i);
  if (!formTag) throw new Error(`no POST form on ${pageUrl}`);
  const action = new URL(attributes(formTag[0]).action || pageUrl, pageUrl).href;
  const hidden = {};
  for (const m of html.matchAll(/<input\b[^>]*>/gi)) {
    const a = attributes(m[0]);
    if (a.type === 'hidden' && a.name) hidden[a.name] = a.value ?? '';
  }
  return { action, hidden };
}

const textOf = (s) => unescapeHtml(s.replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim();

// The refusal page of /authorize: title, message and the link back to the application.
function refusalPage(html, pageUrl) {
  const h1 = html.match(/<h1[^>]*>([\s\S]*?)<\/h1>/i);
  const err = html.match(/<p class="error"[^>]*>([\s\S]*?)<\/p>/i);
  const link = html.match(/<a\b[^>]*class="button"[^>]*>/i);
  if (!link) throw new Error(`no link back on the refusal page: ${pageSummary(html)}`);
  return { title: h1 ? textOf(h1[1]) : null, text: err ? textOf(err[1]) : null,
    back: new URL(attributes(link[0]).href, pageUrl).href };
}

function pageSummary(html) {
  const h1 = html.match(/<h1[^>]*>([\s\S]*?)<\/h1>/i);
  const err = html.match(/<p class="error"[^>]*>([\s\S]*?)<\/p>/i);
  return [h1 && h1[1].trim(), err && err[1].trim()].filter(Boolean).join(' / ');
}

// Follows the authorization request as a browser would; returns the callback URL.
async function signIn(authorizationUrl, redirectUri) {
  const trail = [];
  let loginForm = null;
  let loginShown = false;
  let consentShown = false;
  let orgSelect = null;
  let url = authorizationUrl;
  let method = 'GET';
  let form;
  for (let hop = 0; hop < 20; hop += 1) {
    const res = await http(url, { method, form });
    const path = new URL(url).pathname;
    trail.push(`${method} ${path} ${res.status}`);
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location'), url).href;
      if (next.startsWith(redirectUri)) {
        return { callbackUrl: next, trail, loginShown, consentShown, loginForm, orgSelect };
      }
      url = next;
      method = 'GET';
      form = undefined;
      continue;
    }
    const html = await res.text();
    if (res.status === 403 && path === '/authorize' && config.follow_refusal) {
      // The person cannot act for the organisation: the page says so and links back.
      const refusal = refusalPage(html, url);
      trail.push(`GET ${new URL(refusal.back).pathname} (back link)`);
      return { callbackUrl: refusal.back, trail, loginShown, consentShown, loginForm, orgSelect,
        refusal: { status: res.status, title: refusal.title, text: refusal.text,
          back_to_redirect_uri: refusal.back.startsWith(redirectUri) } };
    }
    if (res.status !== 200) throw new Error(`${path} answered ${res.status}: ${pageSummary(html)}`);
    if (/name="password"/.test(html) && path === '/login') {
      if (loginShown) throw new Error(`login refused: ${pageSummary(html)}`);
      loginShown = true;
      const f = parseForm(html, url);
      loginForm = { has_csrf_token: Boolean(f.hidden.csrf_token), has_rid: Boolean(f.hidden.rid) };
      url = f.action;
      method = 'POST';
      form = { ...f.hidden, username: config.username, password: config.password };
    } else if (/name="consent"/.test(html) && path === '/consent') {
      if (consentShown) throw new Error('consent page shown twice');
      consentShown = true;
      const f = parseForm(html, url);
      url = f.action;
      method = 'POST';
      form = { ...f.hidden, consent: 'allow' };
    } else if (/name="membership_id"/.test(html) && path === '/org/select') {
      if (orgSelect) throw new Error('organisation selection shown twice');
      const f = parseForm(html, url);
      const options = [...html.matchAll(/<button\b[^>]*name="membership_id"[^>]*>/gi)]
        .map((m) => attributes(m[0]));
      orgSelect = { options: options.map((o) => o['data-uscc']) };
      const pick = options.find((o) => o['data-uscc'] === config.org_choice);
      if (!pick) {
        throw new Error(`no option ${config.org_choice} on the selection page: ${orgSelect.options}`);
      }
      url = f.action;
      method = 'POST';
      form = { ...f.hidden, membership_id: pick.value };
    } else {
      throw new Error(`unexpected page at ${path}: ${pageSummary(html)}`);
    }
  }
  throw new Error(`too many hops: ${trail.join(', ')}`);
}

// ---------------------------------------------------------------- relying party

function makeClient(issuer, c, secretOverride) {
  const metadata = { redirect_uris: [c.redirect_uri], response_types: ['code'] };
  if (c.jwk) metadata.token_endpoint_auth_signing_alg = c.jwk.alg || 'ES256';
  return clientOf(issuer, { ...c, client_secret: secretOverride ?? c.client_secret }, metadata,
    c.jwk ? { keys: [c.jwk] } : undefined);
}

async function authorizeAndCallback(client, rp, stepName = 'authorize', extra = {}) {
  const codeVerifier = generators.codeVerifier();
  const state = generators.state();
  const nonce = generators.nonce();
  const authUrl = client.authorizationUrl({
    scope: config.scope || 'openid profile',
    code_challenge: generators.codeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...(config.login_hint ? { login_hint: config.login_hint } : {}),
    ...extra,
  });
  let callbackUrl;
  await must(stepName, async () => {
    const r = await signIn(authUrl, rp.redirect_uri);
    ({ callbackUrl } = r);
    const q = new URL(callbackUrl).searchParams;
    return {
      trail: r.trail,
      login_shown: r.loginShown,
      consent_shown: r.consentShown,
      login_form: r.loginForm,
      has_code: q.has('code'),
      error_param: q.get('error'),
      iss_param: q.get('iss'),
      state_echoed: q.get('state') === state,
      org_select: r.orgSelect || undefined,
      refusal: r.refusal,
    };
  });
  return { params: client.callbackParams(callbackUrl),
    checks: { state, nonce, code_verifier: codeVerifier } };
}

// The token steps record what the test checks; the caller also gets the TokenSet.
async function callbackStep(name, client, rp, params, checks) {
  let ts;
  const detail = await must(name, async () => {
    ts = await client.callback(rp.redirect_uri, params, checks);
    const claims = ts.claims();
    return {
      token_type: ts.token_type,
      access_token_is_jwt: isJwt(ts.access_token),
      has_refresh_token: Boolean(ts.refresh_token),
      expires_in: ts.expires_in,
      scope: ts.scope,
      id_token_claims: {
        iss: claims.iss,
        aud: claims.aud,
        sub: claims.sub,
        nonce_matches: claims.nonce === checks.nonce,
        sid: Boolean(claims.sid),
        amr: claims.amr,
        acr: claims.acr,
        name: claims.name,
        id_number_masked: claims.id_number_masked,
        at_hash: Boolean(claims.at_hash),
        org: claims.org,
      },
    };
  });
  return { ...detail, tokenSet: ts };
}

async function introspect(name, client, token, hint) {
  return attempt(name, async () => {
    const r = await client.introspect(token, hint);
    return { active: r.active, client_id: r.client_id, sub: r.sub, token_type: r.token_type };
  });
}

async function userinfo(name, client, tokenSetOrToken) {
  return attempt(name, async () => {
    const u = await client.userinfo(tokenSetOrToken);
    return { sub: u.sub, name: u.name, id_number_masked: u.id_number_masked,
      phone_number: u.phone_number, org: u.org };
  });
}

async function refresh(name, client, refreshToken) {
  let ts;
  const detail = await attempt(name, async () => {
    ts = await client.refresh(refreshToken);
    return {
      refresh_token_rotated: Boolean(ts.refresh_token) && ts.refresh_token !== refreshToken,
      has_id_token: Boolean(ts.id_token),
      id_token_sub: ts.id_token ? ts.claims().sub : null,
      id_token_sid: ts.id_token ? ts.claims().sid : null,
    };
  });
  return detail && { ...detail, tokenSet: ts };
}

// The code flow up to the tokens (steps "authorize" and "callback").
async function signedIn(issuer) {
  const rp = config.client;
  const client = makeClient(issuer, rp);
  const { params, checks } = await authorizeAndCallback(client, rp);
  const first = await callbackStep('callback', client, rp, params, checks);
  return { rp, client, first, t1: first.tokenSet };
}

// ---------------------------------------------------------------- scenarios

async function full(issuer) {
  const { rp, client, first, t1 } = await signedIn(issuer);
  const sid1 = t1.claims().sid;

  await userinfo('userinfo', client, t1);
  await introspect('introspect_access', client, t1.access_token, 'access_token');
  await introspect('introspect_refresh', client, t1.refresh_token, 'refresh_token');

  // Rotation: a new refresh token, and the spent one is refused when shown again.
  const second = await refresh('refresh', client, t1.refresh_token);
  if (!second) throw new Halt('refresh');
  const t2 = second.tokenSet;
  out.steps.refresh.access_token_changed = t2.access_token !== t1.access_token;
  out.steps.refresh.same_sub = second.id_token_sub === first.id_token_claims.sub;
  out.steps.refresh.same_sid = second.id_token_sid === sid1;
  await userinfo('userinfo_after_refresh', client, t2.access_token);
  await refresh('refresh_reuse', client, t1.refresh_token);
  // Reuse means someone holds a copy: the newer refresh token of the grant dies too.
  await introspect('introspect_rotated_after_reuse', client, t2.refresh_token, 'refresh_token');

  // A second authorization in the same browser: single sign-on and remembered consent.
  const again = await authorizeAndCallback(client, rp, 'authorize_again');
  const third = await callbackStep('callback_again', client, rp, again.params, again.checks);
  const t3 = third.tokenSet;
  out.steps.callback_again.same_sid = t3.claims().sid === sid1;

  // Revocation (RFC 7009) of the access token, seen by introspection and userinfo.
  await attempt('revoke_access', async () => {
    await client.revoke(t3.access_token, 'access_token');
  });
  await introspect('introspect_access_after_revoke', client, t3.access_token, 'access_token');
  await userinfo('userinfo_after_revoke', client, t3.access_token);
  await introspect('introspect_refresh_before_revoke', client, t3.refresh_token,
    'refresh_token');
  // Revocation of the refresh token.
  await attempt('revoke_refresh', async () => {
    await client.revoke(t3.refresh_token, 'refresh_token');
  });
  await introspect('introspect_refresh_after_revoke', client, t3.refresh_token, 'refresh_token');
  await refresh('refresh_after_revoke', client, t3.refresh_token);
}

async function privateKeyJwt(issuer) {
  // private_key_jwt at every endpoint that authenticates the client: token (code and
  // refresh), introspection and revocation.
  const { client, t1 } = await signedIn(issuer);
  await userinfo('userinfo', client, t1);
  await introspect('introspect_access', client, t1.access_token, 'access_token');
  const second = await refresh('refresh', client, t1.refresh_token);
  if (!second) throw new Halt('refresh');
  const t2 = second.tokenSet;
  await attempt('revoke_refresh', async () => {
    await client.revoke(t2.refresh_token, 'refresh_token');
  });
  // Revoking a refresh token ends its grant, access tokens included (RFC 7009 §2.1).
  await introspect('introspect_access_after_revoke', client, t2.access_token, 'access_token');
  await refresh('refresh_after_revoke', client, t2.refresh_token);
}

async function wrongSecret(issuer) {
  const rp = config.client;
  const good = makeClient(issuer, rp);
  const bad = makeClient(issuer, rp, config.wrong_secret);
  const { params, checks } = await authorizeAndCallback(good, rp);
  await attempt('callback_wrong_secret', async () => {
    await bad.callback(rp.redirect_uri, params, checks);
  });
  // The same code still works with the right secret: the refusal was about the
  // client's credentials, and it did not use up the code.
  await attempt('callback_right_secret', async () => {
    const ts = await good.callback(rp.redirect_uri, params, checks);
    return { sub: ts.claims().sub };
  });
}

async function publicRevoke(issuer) {
  const { client, t1 } = await signedIn(issuer);
  await attempt('revoke_refresh', async () => {
    await client.revoke(t1.refresh_token, 'refresh_token');
  });
  await refresh('refresh_after_revoke', client, t1.refresh_token);
}

// prompt=none without a session: the provider must answer login_required, and
// openid-client must be able to read that answer (RFC 9207: iss on errors too).
async function silentWithoutSession(issuer) {
  const rp = config.client;
  const client = makeClient(issuer, rp);
  const { params, checks } = await authorizeAndCallback(client, rp, 'authorize',
    { prompt: 'none' });
  out.steps.authorize.iss_present = 'iss' in params;
  await attempt('callback', async () => {
    await client.callback(rp.redirect_uri, params, checks);
  });
}

// The caller acts (e.g. revokes an appointment) while the relying party waits: a line
// {"paused": name} on stdout, then the caller writes "continue" on stdin.
async function pause(name) {
  if ((await ask({ paused: name })) !== 'continue') throw new Error(`not resumed after ${name}`);
}

// Acting for an enterprise: selection (or login_hint), the org claim in the ID token and
// userinfo; then, with "pause", what the tokens are worth once the appointment has ended.
async function org(issuer) {
  const { client, t1 } = await signedIn(issuer);
  await userinfo('userinfo', client, t1);
  await introspect('introspect_access', client, t1.access_token, 'access_token');
  await introspect('introspect_refresh', client, t1.refresh_token, 'refresh_token');
  if (!config.pause) return;
  await pause('revoke');
  await refresh('refresh_after_revoke', client, t1.refresh_token);
  await introspect('introspect_access_after_revoke', client, t1.access_token, 'access_token');
  await introspect('introspect_refresh_after_revoke', client, t1.refresh_token, 'refresh_token');
  await userinfo('userinfo_after_revoke', client, t1.access_token);
}

// Refused at the provider (cannot act for the organisation): the person follows the
// page's link back, and openid-client reads the error the application receives.
async function orgRefused(issuer) {
  const rp = config.client;
  const client = makeClient(issuer, rp);
  const { params, checks } = await authorizeAndCallback(client, rp);
  await attempt('callback', async () => {
    await client.callback(rp.redirect_uri, params, checks);
  });
}

const SCENARIOS = {
  org,
  org_refused: orgRefused,
  silent: silentWithoutSession,
  full,
  private_key_jwt: privateKeyJwt,
  wrong_secret: wrongSecret,
  public_revoke: publicRevoke,
};

await finish(async () => {
  const run = SCENARIOS[config.scenario];
  if (!run) throw new Error(`unknown scenario ${config.scenario}`);
  await run(await discover((m) => ({
    issuer_url: m.issuer,
    code_challenge_methods: m.code_challenge_methods_supported,
    iss_parameter: m.authorization_response_iss_parameter_supported,
  })));
});
