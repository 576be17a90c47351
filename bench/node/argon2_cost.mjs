// Argon2id verifications per second in Node (the npm `argon2` package, which hashes
// on libuv's thread pool), one at a time and with several in flight.
//
//   node argon2_cost.mjs '{"timeCost":3,"memoryCost":65536,"parallelism":1,"seconds":3,
//                          "inflight":[1,2,4]}'

import { performance } from 'node:perf_hooks';

import argon2 from 'argon2';

const cfg = JSON.parse(process.argv[2] || '{}');
const options = {
  type: argon2.argon2id,
  timeCost: cfg.timeCost ?? 3,
  memoryCost: cfg.memoryCost ?? 64 * 1024,
  parallelism: cfg.parallelism ?? 1,
  hashLength: 32,
  saltLength: 16,
};
const seconds = cfg.seconds ?? 3;
const hash = await argon2.hash('Correct-Horse-9', options);

async function rate(inflight) {
  let done = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: inflight }, async () => {
    while (performance.now() < end) {
      if (!(await argon2.verify(hash, 'Correct-Horse-9'))) throw new Error('verify failed');
      done += 1;
    }
  }));
  const wall = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    inflight,
    verifies: done,
    per_second: Math.round((done / wall) * 100) / 100,
    cpu_ms_per_verify: Math.round(((cpu.user + cpu.system) / 1000 / done) * 10) / 10,
  };
}

const results = [];
await argon2.verify(hash, 'Correct-Horse-9'); // warm the thread pool
for (const n of cfg.inflight ?? [1, 4]) results.push(await rate(n));
process.stdout.write(`${JSON.stringify({
  library: `argon2 (npm) ${JSON.stringify({ t: options.timeCost, m: options.memoryCost, p: options.parallelism })}`,
  uv_threadpool_size: Number(process.env.UV_THREADPOOL_SIZE || 4),
  results,
})}\n`);
