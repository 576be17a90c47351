// What the independent Node clients (rp_flow.mjs, device_flow.mjs, ciba_flow.mjs) share:
// their config, openid-client's settings, discovery and client construction, how a step's
// outcome is recorded, the conversation with the test, and the result line.
//
// Config: a JSON object in the RP_CONFIG environment variable (or a file named by the
// first argument). Output: JSON lines on stdout; while the script waits for the test, a
// line such as {"paused": ...} (the test answers with a line on stdin); last of all
// { completed, steps: { name: { outcome: "ok" | "error", ... } }, crash? }. Each script
// only records what happened: the test decides which outcome each step should have had.

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

import { custom, errors, Issuer } from 'openid-client';

export const config = JSON.parse(
  process.argv[2] ? readFileSync(process.argv[2], 'utf8') : process.env.RP_CONFIG || '{}',
);
custom.setHttpOptionsDefaults({ timeout: 15000 });

export const out = { completed: false, steps: {} };

// Thrown by must(): the failed step is recorded already, and nothing after it can run.
export class Halt extends Error {}

// An error as the test reads it: the OAuth error code and HTTP status of a provider's
// refusal (openid-client's OPError), else the error's class and message.
export function describe(err) {
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

// A step that may be meant to fail (the test asserts which): its detail, or undefined.
export async function attempt(name, fn) {
  try {
    const detail = await fn();
    out.steps[name] = { outcome: 'ok', ...(detail || {}) };
    return detail;
  } catch (err) {
    out.steps[name] = { outcome: 'error', error: describe(err) };
    return undefined;
  }
}

// A step whose failure leaves nothing for later steps to work with.
export async function must(name, fn) {
  const detail = await attempt(name, fn);
  if (out.steps[name].outcome !== 'ok') throw new Halt(name);
  return detail;
}

export const isJwt = (s) => typeof s === 'string' && s.split('.').length === 3;

// Step "discovery" at config.issuer, recording what pick(metadata) returns; the Issuer.
export async function discover(pick) {
  let issuer;
  await must('discovery', async () => {
    issuer = await Issuer.discover(config.issuer);
    return pick(issuer.metadata);
  });
  return issuer;
}

// The client `c` (client_id, client_secret?, token_endpoint_auth_method) as registered
// at the provider, with any further metadata.
export function makeClient(issuer, c, metadata = {}, jwks = undefined) {
  const m = {
    client_id: c.client_id,
    token_endpoint_auth_method: c.token_endpoint_auth_method,
    // The provider's default; openid-client would otherwise insist on RS256.
    id_token_signed_response_alg: 'ES256',
    ...metadata,
  };
  if (c.client_secret) m.client_secret = c.client_secret;
  return new issuer.Client(m, jwks);
}

export function emit(message) {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

let stdin; // the readline interface, opened on the first ask()
let lines;

// Tells the test what the script waits for (`message`); the line it answers with.
export async function ask(message) {
  emit(message);
  if (!stdin) {
    stdin = createInterface({ input: process.stdin });
    lines = stdin[Symbol.asyncIterator]();
  }
  const { value, done } = await lines.next();
  if (done) throw new Error(`no answer to ${JSON.stringify(message)}`);
  return value.trim();
}

// Runs the scenario and prints the result line. `completed` only if main() returned;
// anything thrown but a Halt (whose step says what failed) is reported as `crash`.
export async function finish(main) {
  try {
    await main();
    out.completed = true;
  } catch (err) {
    if (!(err instanceof Halt)) out.crash = describe(err);
  }
  if (stdin) stdin.close(); // else stdin, still open, keeps the process alive
  emit(out);
}
