// An independent device client (RFC 8628) with openid-client 5.x against a running
// provider: a kiosk or TV screen that shows a user code and polls for tokens.
//
// Input: a JSON object in the RP_CONFIG environment variable:
//   { "issuer": "http://127.0.0.1:PORT", "scope": "openid profile",
//     "client": { "client_id", "client_secret"?, "token_endpoint_auth_method" } }
// Output, one JSON object per line on stdout:
//   1. {"device": {user_code, verification_uri, verification_uri_complete, expires_in}}
//      as soon as the codes are there: the caller then has the person approve or deny;
//   2. {completed, steps: {name: {outcome: "ok" | "error", ...}}}: what openid-client
//      saw. The caller decides which outcome each step should have had.

import { custom, errors, Issuer } from 'openid-client';

const config = JSON.parse(process.env.RP_CONFIG || '{}');
custom.setHttpOptionsDefaults({ timeout: 15000 });

const out = { completed: false, steps: {} };

function describe(err) {
  const d = { name: err && err.constructor ? err.constructor.name : typeof err };
  if (err instanceof errors.OPError) {
    d.error = err.error;
    d.error_description = err.error_description;
    if (err.response) d.status = err.response.statusCode;
  } else {
    d.message = String(err && err.message ? err.message : err);
  }
  return d;
}

async function attempt(name, fn) {
  try {
    const detail = await fn();
    out.steps[name] = { outcome: 'ok', ...(detail || {}) };
    return detail;
  } catch (err) {
    out.steps[name] = { outcome: 'error', error: describe(err) };
    return undefined;
  }
}

async function main() {
  const issuer = await Issuer.discover(config.issuer);
  out.steps.discovery = {
    outcome: 'ok',
    device_authorization_endpoint: issuer.metadata.device_authorization_endpoint,
    grant_types_supported: issuer.metadata.grant_types_supported,
  };
  const c = config.client;
  const metadata = {
    client_id: c.client_id,
    token_endpoint_auth_method: c.token_endpoint_auth_method,
    // The provider's default; openid-client would otherwise insist on RS256.
    id_token_signed_response_alg: 'ES256',
  };
  if (c.client_secret) metadata.client_secret = c.client_secret;
  const client = new issuer.Client(metadata);

  const handle = await client.deviceAuthorization({ scope: config.scope });
  // Before anyone approved: the token endpoint must say authorization_pending.
  await attempt('early_poll', async () => {
    await client.grant({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
      device_code: handle.device_code });
  });
  process.stdout.write(`${JSON.stringify({ device: {
    user_code: handle.user_code,
    verification_uri: handle.verification_uri,
    verification_uri_complete: handle.verification_uri_complete,
    expires_in: handle.expires_in,
  } })}\n`);

  // openid-client waits the interval, polls, and validates the ID token (signature,
  // iss, aud, exp, iat) before handing the tokens over.
  const polled = await attempt('poll', async () => {
    const ts = await handle.poll();
    const claims = ts.claims();
    return {
      tokenSet: ts,
      token_type: ts.token_type,
      scope: ts.scope,
      has_refresh_token: Boolean(ts.refresh_token),
      id_token_claims: {
        iss: claims.iss, aud: claims.aud, sub: claims.sub, acr: claims.acr, amr: claims.amr,
        channel: claims.channel, name: claims.name, sid: claims.sid,
      },
      access_token_is_jwt: ts.access_token.split('.').length === 3,
    };
  });
  if (polled) {
    delete out.steps.poll.tokenSet;
    await attempt('userinfo', async () => {
      const u = await client.userinfo(polled.tokenSet.access_token);
      return { sub: u.sub, name: u.name };
    });
    // The device code is spent: a second exchange is refused.
    await attempt('replay', async () => {
      await client.grant({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
        device_code: handle.device_code });
    });
  }
  out.completed = true;
}

try {
  await main();
} catch (err) {
  out.crash = describe(err);
}
process.stdout.write(`${JSON.stringify(out)}\n`);
