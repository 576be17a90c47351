// A small Redis storage adapter for node-oidc-provider (bench only), so that the
// comparison can also be made with the provider's state outside process memory,
// as ours keeps it (Redis + PostgreSQL).
//
// Each record is a hash {payload, consumed?} with a time to live. Grant-bound
// records are listed in a set per grant so a grant can be revoked in one go, and
// sessions are indexed by uid.

import Redis from 'ioredis';

let client;
let prefix = 'oidcbench:';

const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

export default class RedisAdapter {
  static connect(url, keyPrefix) {
    client = new Redis(url, { enableAutoPipelining: true, lazyConnect: false });
    prefix = keyPrefix;
  }

  static disconnect() {
    client?.disconnect();
  }

  constructor(name) {
    this.name = name;
  }

  key(id) {
    return `${prefix}${this.name}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const tx = client.multi();
    tx.del(key);
    tx.hset(key, 'payload', JSON.stringify(payload));
    if (expiresIn) tx.expire(key, expiresIn);
    if (GRANTABLE.has(this.name) && payload.grantId) {
      const grantKey = `${prefix}grant:${payload.grantId}`;
      tx.sadd(grantKey, key);
      if (expiresIn) tx.expire(grantKey, expiresIn, 'GT');
      if (expiresIn) tx.expire(grantKey, expiresIn, 'NX');
    }
    if (payload.uid && this.name === 'Session') {
      tx.set(`${prefix}sessionUid:${payload.uid}`, id, 'EX', expiresIn || 3600);
    }
    await tx.exec();
  }

  async find(id) {
    const data = await client.hgetall(this.key(id));
    if (!data || !data.payload) return undefined;
    const payload = JSON.parse(data.payload);
    if (data.consumed) payload.consumed = Number(data.consumed);
    return payload;
  }

  async findByUid(uid) {
    const id = await client.get(`${prefix}sessionUid:${uid}`);
    return id ? this.find(id) : undefined;
  }

  async findByUserCode() {
    return undefined; // device flow is not configured
  }

  async consume(id) {
    await client.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
  }

  async destroy(id) {
    await client.del(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const grantKey = `${prefix}grant:${grantId}`;
    const members = await client.smembers(grantKey);
    if (members.length) await client.del(...members);
    await client.del(grantKey);
  }
}
