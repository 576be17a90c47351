// A trusted self-service kiosk (RFC 7523 §2.1) with openid-client 5.x and the jose 4.x it
// ships with: it read the card's chip, matched the face in front of it, and signs what it
// saw as a JWT that it exchanges at the token endpoint for the card holder's tokens.
//
// Config (RP_CONFIG, see oidc_common.mjs):
//   { "issuer": "http://127.0.0.1:PORT", "scope": "openid profile", "id_number": "…",
//     "client": { "client_id", "token_endpoint_auth_method": "private_key_jwt" } }
// Output, one JSON object per line on stdout:
//   1. {"paused": "register", "jwks": {keys: [public JWK]}}: the caller registers the
//      kiosk with these keys, then answers with a line on stdin;
//   2. {completed, steps: {name: {outcome: "ok" | "error", ...}}}: what openid-client
//      saw. The caller decides which outcome each step should have had.

import { randomUUID } from 'node:crypto';

import { exportJWK, generateKeyPair, SignJWT } from 'jose';

import {
  ask, attempt, config, discover, finish, isJwt, makeClient, must, out,
} from './oidc_common.mjs';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const KID = 'e2e-kiosk-key-1';

async function newKey(kid) {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const meta = { kid, alg: 'ES256', use: 'sig' };
  return {
    privateKey,
    kid,
    publicJwk: { ...(await exportJWK(publicKey)), ...meta },
    privateJwk: { ...(await exportJWK(privateKey)), ...meta },
  };
}

await finish(async () => {
  const kiosk = await newKey(KID);
  // Another device's key under the kiosk's kid: only the signature itself can tell.
  const impostor = await newKey(KID);
  await ask({ paused: 'register', jwks: { keys: [kiosk.publicJwk] } });

  const issuer = await discover((m) => ({
    token_endpoint: m.token_endpoint,
    grant_types_supported: m.grant_types_supported,
  }));
  // The private key also signs openid-client's own client_assertion (private_key_jwt).
  // The alg is named because discovery lists private_key_jwt for introspection and
  // revocation without their *_auth_signing_alg_values_supported (RFC 8414 §2 says it
  // must), and openid-client then refuses to build the client.
  const client = makeClient(issuer, config.client, { token_endpoint_auth_signing_alg: 'ES256' },
    { keys: [kiosk.privateJwk] });

  // What the kiosk asserts after a good chip read and face match; `changes` spoil it.
  const sign = (key, changes = {}) => {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: config.client.client_id,
      sub: config.id_number,
      aud: issuer.metadata.token_endpoint,
      iat: now,
      exp: now + 120,
      jti: randomUUID(),
      check: { chip: true, face_match: true, score: 0.95 },
      ...changes,
    };
    return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: key.kid })
      .sign(key.privateKey);
  };
  const exchange = (assertion) => client.grant({
    grant_type: JWT_BEARER, assertion, scope: config.scope,
  });

  const assertion = await sign(kiosk);
  const granted = await must('grant', async () => {
    const ts = await exchange(assertion);
    return {
      tokenSet: ts,
      token_type: ts.token_type,
      scope: ts.scope,
      has_id_token: Boolean(ts.id_token),
      has_refresh_token: Boolean(ts.refresh_token),
      access_token_is_jwt: isJwt(ts.access_token),
    };
  });
  delete out.steps.grant.tokenSet;
  const ts = granted.tokenSet;

  // grant() hands over whatever the token endpoint said; validateIdToken checks the
  // signature against the provider's jwks_uri, iss, aud, azp, exp and iat.
  await attempt('id_token', async () => {
    await client.validateIdToken(ts);
    const c = ts.claims();
    return {
      claims: {
        iss: c.iss, aud: c.aud, sub: c.sub, acr: c.acr, amr: c.amr, channel: c.channel,
        name: c.name, auth_time: c.auth_time, nonce: c.nonce,
      },
    };
  });
  // The same validation by a client the ID token was not issued to must fail.
  await attempt('id_token_for_another_client', async () => {
    const other = makeClient(issuer, { client_id: 'e2e-someone-else',
      token_endpoint_auth_method: 'none' });
    await other.validateIdToken(ts);
  });
  // With the TokenSet, openid-client also checks userinfo's sub against the ID token's.
  await attempt('userinfo', async () => {
    const u = await client.userinfo(ts);
    return { sub: u.sub, name: u.name };
  });

  await attempt('replay', async () => { await exchange(assertion); });
  await attempt('wrong_audience', async () => {
    await exchange(await sign(kiosk, { aud: 'https://other-idp.example/token' }));
  });
  await attempt('other_key', async () => { await exchange(await sign(impostor)); });
  await attempt('face_mismatch', async () => {
    await exchange(await sign(kiosk, { check: { chip: true, face_match: false, score: 0.95 } }));
  });
});
