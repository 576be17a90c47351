// An independent relying party (openid-client 5.x) that starts a registration with
// prompt=create ("Initiating User Registration via OpenID Connect 1.0") and receives a
// code and tokens for the new account.
//
// The person's part is plain HTTP with a cookie jar, using only the registration form's
// contract (README): fields id_number, name, phone, sms_code, password, the "send code"
// button as action=send_code, the CSRF token and rid as the page's hidden fields. The
// SMS code is asked of the test ({"waiting": "sms_code"}), which reads the dev outbox.
//
// Config (RP_CONFIG): { issuer, client: { client_id, client_secret, redirect_uri,
//   token_endpoint_auth_method }, person: { id_number, name, phone, password } }
// Output: { completed, steps: { discovery, authorize, send_code, register, callback,
//   userinfo } }.

import { generators } from 'openid-client';

import { ask, config, discover, finish, makeClient, must, out } from './oidc_common.mjs';

out.scenario = 'register';
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
    const pair = line.split(';')[0];
    const eq = pair.indexOf('=');
    if (eq > 0) cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  return res;
}

const unescape = (s) => s.replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n)))
  .replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

function hiddenFields(html) {
  const fields = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
    fields[m[1]] = unescape(m[2]);
  }
  return fields;
}

function formAction(html, pageUrl) {
  const m = html.match(/<form method="post" action="([^"]*)"/);
  return new URL(m ? unescape(m[1]) : pageUrl, pageUrl).href;
}

// GETs and follows redirects until a page (200) or the redirect URI; returns either.
async function follow(url, redirectUri, trail) {
  for (let hop = 0; hop < 10; hop += 1) {
    if (url.startsWith(redirectUri)) return { callback: url };
    const res = await http(url);
    trail.push(`GET ${new URL(url).pathname} ${res.status}`);
    if (res.status >= 300 && res.status < 400) {
      url = new URL(res.headers.get('location'), url).href;
      continue;
    }
    return { url, status: res.status, html: await res.text() };
  }
  throw new Error(`too many redirects: ${trail.join(', ')}`);
}

finish(async () => {
  const issuer = await discover((m) => ({ prompt_values: m.prompt_values_supported }));
  const c = config.client;
  const client = makeClient(issuer, c, { redirect_uris: [c.redirect_uri], response_types: ['code'] });
  const verifier = generators.codeVerifier();
  const state = generators.state();
  const nonce = generators.nonce();
  const trail = [];
  const p = config.person;

  let hidden;
  let action;
  await must('authorize', async () => {
    const url = client.authorizationUrl({
      scope: 'openid profile', prompt: 'create', state, nonce,
      code_challenge: generators.codeChallenge(verifier), code_challenge_method: 'S256',
    });
    const got = await follow(url, c.redirect_uri, trail);
    if (!got.html) throw new Error('no registration page');
    hidden = hiddenFields(got.html);
    action = formAction(got.html, got.url);
    return { path: new URL(got.url).pathname, status: got.status,
      has_csrf_token: Boolean(hidden.csrf_token), has_rid: Boolean(hidden.rid) };
  });
  const fields = { id_number: p.id_number, name: p.name, phone: p.phone };

  await must('send_code', async () => {
    const res = await http(action, { method: 'POST', form: { ...hidden, ...fields, action: 'send_code' } });
    const html = await res.text();
    return { status: res.status, says_sent: html.includes('role="status"') };
  });
  const code = await ask({ waiting: 'sms_code', phone: p.phone });

  const callbackUrl = await must('register', async () => {
    const res = await http(action, {
      method: 'POST',
      form: { ...hidden, ...fields, sms_code: code, password: p.password, action: 'register' },
    });
    trail.push(`POST /register ${res.status}`);
    if (res.status !== 302) throw new Error(`register answered ${res.status}`);
    let got = await follow(new URL(res.headers.get('location'), action).href, c.redirect_uri, trail);
    if (got.html && /name="consent"/.test(got.html)) {
      const res2 = await http(formAction(got.html, got.url), {
        method: 'POST', form: { ...hiddenFields(got.html), consent: 'allow' } });
      trail.push(`POST /consent ${res2.status}`);
      got = await follow(new URL(res2.headers.get('location'), got.url).href, c.redirect_uri, trail);
    }
    if (!got.callback) throw new Error(`ended at ${got.url} (${got.status}): ${trail.join(', ')}`);
    out.steps.trail = trail;
    return { callback: got.callback };
  });

  const tokens = await must('callback', async () => {
    const params = client.callbackParams(callbackUrl.callback);
    const set = await client.callback(c.redirect_uri, params, { code_verifier: verifier, state, nonce });
    const claims = set.claims();
    return { set, claims: { sub: claims.sub, acr: claims.acr, amr: claims.amr, name: claims.name,
      id_number_masked: claims.id_number_masked } };
  });
  const { set } = tokens;
  delete tokens.set;
  await must('userinfo', async () => {
    const info = await client.userinfo(set.access_token);
    return { sub: info.sub, name: info.name };
  });
});
