// An independent hall/hotline system driving CIBA (poll mode) against a running provider.
//
// openid-client 5.x has no CIBA helper: the backchannel authentication request is a
// plain fetch with client_secret_basic; polling is openid-client's client.grant() (its
// own client authentication and error parsing), and the ID token is checked with its
// validateIdToken (signature from the JWKS, iss, aud, exp, at_hash).
//
// Config (RP_CONFIG, see oidc_common.mjs): { issuer, hall: {client_id, client_secret},
//   other: {client_id, client_secret}, hotline: {client_id, client_secret},
//   login_hint, unknown_hint, binding_message, acting_party, agent }
// The caller takes part through stdin/stdout: each {"waiting": name, ...} line on stdout
// waits for one line on stdin ("continue", or "code NNNNNN" for the SMS read-back).
// Output: last line { completed, steps: { name: { outcome: "ok"|"error", ... } } }.

import { errors } from 'openid-client';

import {
  ask, attempt, config, discover, finish, makeClient as clientOf, out,
} from './oidc_common.mjs';

const CIBA = 'urn:openid:params:grant-type:ciba';

const waitFor = (name, info) => ask({ waiting: name, ...info });

function basic(c) {
  // RFC 6749 §2.3.1: form-encode id and secret before joining them.
  const enc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(c.client_id)}:${enc(c.client_secret)}`).toString('base64')}`;
}

// The backchannel authentication request: a plain authenticated POST.
async function bcAuthorize(endpoint, c, params) {
  const resp = await fetch(endpoint, {
    method: 'POST',
    headers: { Authorization: basic(c), 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params).toString(),
  });
  const body = await resp.json();
  // The provider's refusal, shaped like openid-client's own (error code and status).
  if (resp.status !== 200) throw new errors.OPError(body, { statusCode: resp.status });
  return body;
}

function payload(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

function makeClient(issuer, c) {
  return clientOf(issuer, c, { token_endpoint_auth_method: 'client_secret_basic',
    grant_types: [CIBA], response_types: [] });
}

async function start(name, endpoint, c, params) {
  const r = await attempt(name, async () => {
    const body = await bcAuthorize(endpoint, c, params);
    return { has_id: typeof body.auth_req_id === 'string' && body.auth_req_id.length >= 32,
             expires_in: body.expires_in, interval: body.interval, auth_req_id: body.auth_req_id };
  });
  if (r) delete out.steps[name].auth_req_id;
  return r && r.auth_req_id;
}

async function poll(name, client, aid) {
  await attempt(name, async () => {
    const tokenSet = await client.grant({ grant_type: CIBA, auth_req_id: aid });
    await client.validateIdToken(tokenSet, undefined, 'token');
    const at = payload(tokenSet.access_token);
    return {
      id_token: tokenSet.claims(),
      access_token: { sub: at.sub, client_id: at.client_id, act: at.act, channel: at.channel,
                      acr: at.acr, amr: at.amr },
      has_refresh_token: Boolean(tokenSet.refresh_token),
      token_type: tokenSet.token_type,
    };
  });
}

await finish(async () => {
  const issuer = await discover((m) => ({
    endpoint: m.backchannel_authentication_endpoint,
    modes: m.backchannel_token_delivery_modes_supported,
    user_code: m.backchannel_user_code_parameter_supported,
    grant_listed: (m.grant_types_supported || []).includes(CIBA),
  }));
  const endpoint = issuer.metadata.backchannel_authentication_endpoint;
  const hall = makeClient(issuer, config.hall);
  const other = makeClient(issuer, config.other);
  const hotline = makeClient(issuer, config.hotline);
  const base = { scope: 'openid profile', binding_message: config.binding_message,
                 acting_party: config.acting_party };

  await start('unknown_user', endpoint, config.hall, { ...base, login_hint: config.unknown_hint });

  // Approved on the app.
  const aid = await start('bc_authorize', endpoint, config.hall,
                          { ...base, login_hint: config.login_hint });
  if (!aid) return;
  await poll('poll_pending', hall, aid);
  await poll('poll_too_fast', hall, aid);
  await waitFor('approve', { auth_req_id: aid });
  await poll('poll_other_client', other, aid);
  await poll('poll_approved', hall, aid);
  await poll('poll_replayed', hall, aid);

  // Denied on the app.
  const denied = await start('bc_authorize_deny', endpoint, config.hall,
                             { ...base, login_hint: config.login_hint });
  await waitFor('deny', { auth_req_id: denied });
  await poll('poll_denied', hall, denied);

  // Hotline, SMS read-back.
  const sms = await start('bc_authorize_hotline', endpoint, config.hotline,
                          { ...base, acting_party: config.agent, login_hint: config.login_hint });
  const url = `${endpoint}/${encodeURIComponent(sms)}/sms-code`;
  const post = (params) => fetch(url, {
    method: 'POST',
    headers: { Authorization: basic(config.hotline),
               'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params).toString(),
  }).then(async (r) => ({ status: r.status, body: await r.json() }));
  const sent = await post({});
  out.steps.sms_sent = { outcome: sent.status === 200 ? 'ok' : 'error', ...sent };
  const answer = await waitFor('sms_code', { sms_sent: sent.status === 200 });
  const checked = await post({ code: answer.replace(/^code\s+/, '') });
  out.steps.sms_checked = { outcome: checked.status === 200 ? 'ok' : 'error', ...checked };
  await poll('poll_sms', hotline, sms);
});
