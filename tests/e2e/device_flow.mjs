// An independent device client (RFC 8628) with openid-client 5.x against a running
// provider: a kiosk or TV screen that shows a user code and polls for tokens.
//
// Config (RP_CONFIG, see oidc_common.mjs):
//   { "issuer": "http://127.0.0.1:PORT", "scope": "openid profile",
//     "client": { "client_id", "client_secret"?, "token_endpoint_auth_method" } }
// Output, one JSON object per line on stdout:
//   1. {"device": {user_code, verification_uri, verification_uri_complete, expires_in}}
//      as soon as the codes are there: the caller then has the person approve or deny;
//   2. {completed, steps: {name: {outcome: "ok" | "error", ...}}}: what openid-client
//      saw. The caller decides which outcome each step should have had.

import {
  attempt, config, discover, emit, finish, isJwt, makeClient, out,
} from './oidc_common.mjs';

await finish(async () => {
  const issuer = await discover((m) => ({
    device_authorization_endpoint: m.device_authorization_endpoint,
    grant_types_supported: m.grant_types_supported,
  }));
  const client = makeClient(issuer, config.client);

  const handle = await client.deviceAuthorization({ scope: config.scope });
  // Before anyone approved: the token endpoint must say authorization_pending.
  await attempt('early_poll', async () => {
    await client.grant({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
      device_code: handle.device_code });
  });
  emit({ device: {
    user_code: handle.user_code,
    verification_uri: handle.verification_uri,
    verification_uri_complete: handle.verification_uri_complete,
    expires_in: handle.expires_in,
  } });

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
      access_token_is_jwt: isJwt(ts.access_token),
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
});
