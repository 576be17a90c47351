// A FAPI 2.0-style relying party: openid-client (5.x) with PAR, PKCE, private_key_jwt,
// DPoP, signed request objects and JARM, against a running provider. Every check a
// relying party makes (state, iss, PKCE, ID token, JARM signature/aud/exp, DPoP proofs
// and nonce retries) is openid-client's; the browser part is plain HTTP with a cookie jar.
//
// Config (RP_CONFIG, see oidc_common.mjs):
//   { "scenario": "fapi" | "jar" | "jarm" | "fapi_refusals" | "claims",
//     "issuer", "username", "password", "scope",
//     "client": { "client_id", "redirect_uri", "token_endpoint_auth_method": "private_key_jwt",
//                 "jwk": {private EC JWK with kid} } }
// Output: one JSON object on stdout: { scenario, completed, steps: { name: {...} } }.

import { generateKeyPairSync } from 'node:crypto';

import { custom, generators } from 'openid-client';

import {
  attempt, config, discover, finish, Halt, isJwt, makeClient, must, out,
} from './oidc_common.mjs';

out.scenario = config.scenario;

// ---------------------------------------------------------------- browser part

const cookies = new Map();

async function http(url, { method = 'GET', form } = {}) {
  const headers = { accept: 'text/html' };
  if (cookies.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  let body;
  if (form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(form).toString();
  }
  const res = await fetch(url, { method, headers, body, redirect: 'manual' });
  for (const line of res.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const eq = pair.indexOf('=');
    if (eq > 0) cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  return res;
}

const unescape = (s) => s.replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n)))
  .replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

function form(html, pageUrl) {
  const tag = html.match(/<form\b[^>]*method="post"[^>]*>/i);
  if (!tag) throw new Error(`no form on ${pageUrl}`);
  const action = (tag[0].match(/action="([^"]*)"/) || [])[1];
  const hidden = {};
  for (const m of html.matchAll(/<input\b[^>]*type="hidden"[^>]*>/gi)) {
    const name = (m[0].match(/name="([^"]*)"/) || [])[1];
    const value = (m[0].match(/value="([^"]*)"/) || [])[1];
    if (name) hidden[name] = unescape(value ?? '');
  }
  return { action: new URL(unescape(action || pageUrl), pageUrl).href, hidden };
}

// Follows the authorization request as a browser would: the callback URL, or the error
// page's code when the provider refuses on the person's screen.
async function signIn(authorizationUrl, redirectUri) {
  const trail = [];
  let url = authorizationUrl;
  let method = 'GET';
  let body;
  let claimsShown;
  for (let hop = 0; hop < 15; hop += 1) {
    const res = await http(url, { method, form: body });
    const path = new URL(url).pathname;
    trail.push(`${method} ${path} ${res.status}`);
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location'), url).href;
      if (next.startsWith(redirectUri)) return { callbackUrl: next, trail, claimsShown };
      [url, method, body] = [next, 'GET', undefined];
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) {
      const code = (html.match(/id="error-code">[\s\S]*?<span[^>]*>([a-z_]+)</) || [])[1];
      return { refused: { status: res.status, error: code || null }, trail };
    }
    const f = form(html, url);
    if (/id="oidc-form-post"/.test(html)) {
      // response_mode=form_post(.jwt): the page would POST this form to the client.
      if (!f.action.startsWith(redirectUri)) throw new Error(`form posts to ${f.action}`);
      return { formPost: { action: f.action, fields: f.hidden,
        noscript_button: /<noscript>[\s\S]*<button type="submit"/.test(html) }, trail };
    }
    if (path === '/login') body = { ...f.hidden, username: config.username, password: config.password };
    else if (path === '/consent') {
      body = { ...f.hidden, consent: 'allow' };
      claimsShown = [...html.matchAll(/data-claim="([^"]+)"/g)].map((m) => m[1]);
    }
    else throw new Error(`unexpected page ${path}`);
    [url, method] = [f.action, 'POST'];
  }
  throw new Error(`too many hops: ${trail.join(', ')}`);
}

// ---------------------------------------------------------------- relying party

function client(issuer, extra = {}) {
  const c = config.client;
  return makeClient(issuer, c, {
    redirect_uris: [c.redirect_uri], response_types: ['code'],
    token_endpoint_auth_signing_alg: 'ES256', request_object_signing_alg: 'ES256',
    ...extra,
  }, { keys: [c.jwk] });
}

const dpopKey = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;

function request() {
  const verifier = generators.codeVerifier();
  return {
    params: { scope: config.scope, state: generators.state(), nonce: generators.nonce(),
      code_challenge: generators.codeChallenge(verifier), code_challenge_method: 'S256' },
    verifier,
  };
}

const checksOf = (r) => ({ state: r.params.state, nonce: r.params.nonce,
  code_verifier: r.verifier });

async function browse(name, rp, url) {
  let result;
  await must(name, async () => {
    result = await signIn(url, config.client.redirect_uri);
    return { trail: result.trail, refused: result.refused, claims_shown: result.claimsShown,
      form_post: result.formPost ? { fields: Object.keys(result.formPost.fields),
        noscript_button: result.formPost.noscript_button } : undefined,
      callback_query: result.callbackUrl ? [...new URL(result.callbackUrl).searchParams.keys()]
        : undefined };
  });
  return result;
}

function tokenDetail(ts) {
  const claims = ts.claims();
  return { token_type: ts.token_type, access_token_is_jwt: isJwt(ts.access_token),
    has_refresh_token: Boolean(ts.refresh_token), sub: claims.sub, aud: claims.aud,
    nonce: claims.nonce, acr: claims.acr };
}

async function fapi(issuer) {
  // PAR (private_key_jwt at the PAR endpoint) + PKCE, then DPoP at the token endpoint.
  const rp = client(issuer, { dpop_bound_access_tokens: true });
  const key = dpopKey();
  const r = request();
  let pushed;
  await must('par', async () => {
    pushed = await rp.pushedAuthorizationRequest(r.params);
    return { request_uri_prefix: pushed.request_uri.split(':').slice(0, 5).join(':'),
      expires_in: pushed.expires_in };
  });
  const url = rp.authorizationUrl({ request_uri: pushed.request_uri });
  await attempt('authorize_url', async () => ({ params: [...new URL(url).searchParams.keys()] }));
  const b = await browse('authorize', rp, url);
  if (!b.callbackUrl) throw new Halt('authorize');
  let ts;
  await must('callback', async () => {
    ts = await rp.callback(config.client.redirect_uri, rp.callbackParams(b.callbackUrl),
      checksOf(r), { DPoP: key });
    return tokenDetail(ts);
  });
  // Every request openid-client sends to userinfo, and whether its proof had a nonce:
  // the resource server's nonce (RFC 9449 §9) is learnt from a 401 and retried with.
  const sent = [];
  rp[custom.http_options] = (u, options) => {
    if (u.pathname === '/userinfo') {
      const proof = options.headers && options.headers.DPoP;
      const payload = proof ? JSON.parse(Buffer.from(proof.split('.')[1], 'base64url')) : {};
      sent.push({ nonce: Boolean(payload.nonce), ath: Boolean(payload.ath) });
    }
    return {};
  };
  await attempt('userinfo_dpop', async () => {
    const u = await rp.userinfo(ts, { DPoP: key });
    return { sub: u.sub, name: u.name, requests: [...sent] };
  });
  await attempt('userinfo_as_bearer', async () => {
    const u = await rp.userinfo(ts.access_token, { tokenType: 'Bearer' });
    return { sub: u.sub };
  });
  await attempt('userinfo_other_key', async () => {
    const u = await rp.userinfo(ts, { DPoP: dpopKey() });
    return { sub: u.sub };
  });
  await attempt('introspect', async () => {
    const i = await rp.introspect(ts.access_token, 'access_token');
    return { active: i.active, cnf: i.cnf, token_type: i.token_type };
  });
  await attempt('refresh_other_key', async () => {
    await rp.refresh(ts.refresh_token, { DPoP: dpopKey() });
    return {};
  });
  let ts2;
  await attempt('refresh', async () => {
    ts2 = await rp.refresh(ts.refresh_token, { DPoP: key });
    return { ...tokenDetail(ts2), rotated: ts2.refresh_token !== ts.refresh_token };
  });
  if (ts2) {
    await attempt('userinfo_after_refresh', async () => {
      const u = await rp.userinfo(ts2, { DPoP: key });
      return { sub: u.sub };
    });
  }
  // The request_uri again: single use.
  await browse('authorize_replayed_request_uri', rp, url);
}

async function jar(issuer) {
  const rp = client(issuer);
  for (const via of ['by_value', 'by_par']) {
    const r = request();
    const object = await rp.requestObject({ ...r.params, response_type: 'code',
      redirect_uri: config.client.redirect_uri });
    let url;
    if (via === 'by_value') {
      url = rp.authorizationUrl({ request: object, scope: config.scope });
    } else {
      const pushed = await rp.pushedAuthorizationRequest({ request: object });
      url = rp.authorizationUrl({ request_uri: pushed.request_uri });
    }
    const b = await browse(`authorize_${via}`, rp, url);
    if (!b.callbackUrl) continue;
    await attempt(`callback_${via}`, async () => {
      const ts = await rp.callback(config.client.redirect_uri, rp.callbackParams(b.callbackUrl),
        checksOf(r), { DPoP: dpopKey() });
      return tokenDetail(ts);
    });
  }
  // A request object signed with a key the provider does not know.
  const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
    .export({ format: 'jwk' });
  const impostor = makeClient(issuer, config.client, {
    redirect_uris: [config.client.redirect_uri], request_object_signing_alg: 'ES256',
    token_endpoint_auth_signing_alg: 'ES256',
  }, { keys: [{ ...stranger, kid: config.client.jwk.kid, alg: 'ES256' }] });
  const bad = await impostor.requestObject({ ...request().params, response_type: 'code',
    redirect_uri: config.client.redirect_uri });
  await browse('authorize_unregistered_key', rp, rp.authorizationUrl({ request: bad }));
}

async function jarm(issuer) {
  const rp = client(issuer, { authorization_signed_response_alg: 'ES256' });
  const r = request();
  const pushed = await rp.pushedAuthorizationRequest({ ...r.params, response_mode: 'jwt' });
  const b = await browse('authorize', rp, rp.authorizationUrl({ request_uri: pushed.request_uri }));
  if (!b.callbackUrl) throw new Halt('authorize');
  await attempt('callback_jarm', async () => {
    // openid-client verifies the response JWT: our signature, iss, aud, exp.
    const ts = await rp.callback(config.client.redirect_uri, rp.callbackParams(b.callbackUrl),
      checksOf(r), { DPoP: dpopKey() });
    return tokenDetail(ts);
  });
  // form_post.jwt: the same, POSTed by the page's form; openid-client reads the body.
  const r2 = request();
  const pushed2 = await rp.pushedAuthorizationRequest({ ...r2.params,
    response_mode: 'form_post.jwt' });
  const b2 = await browse('authorize_form_post_jwt', rp,
    rp.authorizationUrl({ request_uri: pushed2.request_uri }));
  if (b2.formPost) {
    await attempt('callback_form_post_jwt', async () => {
      const posted = { method: 'POST', url: b2.formPost.action,
        body: new URLSearchParams(b2.formPost.fields).toString() };
      const ts = await rp.callback(config.client.redirect_uri, rp.callbackParams(posted),
        checksOf(r2), { DPoP: dpopKey() });
      return tokenDetail(ts);
    });
  }
  // A response JWT changed on the way is refused by the client.
  const tampered = new URL(b.callbackUrl);
  const parts = tampered.searchParams.get('response').split('.');
  parts[1] = Buffer.from(JSON.stringify({ code: 'forged', state: r.params.state,
    iss: config.issuer, aud: config.client.client_id, exp: 9999999999 })).toString('base64url');
  tampered.searchParams.set('response', parts.join('.'));
  await attempt('callback_tampered', async () => {
    await rp.callback(config.client.redirect_uri, rp.callbackParams(tampered.href), checksOf(r));
    return {};
  });
}

async function refusals(issuer) {
  // The FAPI 2.0 client skipping PAR: refused on the person's screen.
  const rp = client(issuer);
  const r = request();
  await browse('authorize_without_par', rp, rp.authorizationUrl(r.params));
  // ...and skipping DPoP: the code is refused at the token endpoint.
  const pushed = await rp.pushedAuthorizationRequest(r.params);
  const b = await browse('authorize', rp, rp.authorizationUrl({ request_uri: pushed.request_uri }));
  if (!b.callbackUrl) throw new Halt('authorize');
  await attempt('callback_without_dpop', async () => {
    await rp.callback(config.client.redirect_uri, rp.callbackParams(b.callbackUrl), checksOf(r));
    return {};
  });
}

async function claims(issuer) {
  // The claims request parameter (OIDC Core §5.5) in a pushed request: a claim for the
  // ID token, others for userinfo, with only the openid scope.
  const rp = client(issuer, { dpop_bound_access_tokens: true });
  const key = dpopKey();
  const r = request();
  const wanted = { id_token: { phone_number: { essential: true } },
    userinfo: { name: null, phone_number_verified: null } };
  const pushed = await rp.pushedAuthorizationRequest({ ...r.params, scope: 'openid',
    claims: JSON.stringify(wanted) });
  const b = await browse('authorize', rp, rp.authorizationUrl({ request_uri: pushed.request_uri }));
  if (!b.callbackUrl) throw new Halt('authorize');
  let ts;
  await must('callback', async () => {
    ts = await rp.callback(config.client.redirect_uri, rp.callbackParams(b.callbackUrl),
      checksOf(r), { DPoP: key });
    const c = ts.claims();
    return { ...tokenDetail(ts), phone_number: c.phone_number, name: c.name ?? null };
  });
  await attempt('userinfo', async () => {
    const u = await rp.userinfo(ts, { DPoP: key });
    return { sub: u.sub, name: u.name, phone_number_verified: u.phone_number_verified,
      phone_number: u.phone_number ?? null };
  });
}

const SCENARIOS = { fapi, jar, jarm, fapi_refusals: refusals, claims };

await finish(async () => {
  const issuer = await discover((m) => ({
    par: m.pushed_authorization_request_endpoint,
    dpop_algs: m.dpop_signing_alg_values_supported,
    request_object_algs: m.request_object_signing_alg_values_supported,
    response_modes: m.response_modes_supported,
  }));
  await SCENARIOS[config.scenario](issuer);
});
