/**
 * `npm run chaos`: a bounded fault-injection run over the whole system as `npm start` runs it
 * (3 RabbitMQ nodes, app servers, the TLS proxy, Postgres, Redis), with ~200 headless room
 * clients built on the web page's client library and posters at a steady rate. Faults follow a
 * schedule; at the end every POST, every stored row and every client's view are checked.
 * Exit code 0 only on PASS.
 *
 *   npm run chaos -- [--duration 120] [--rooms 8] [--viewers 24] [--rate 20] [--processes 4]
 */
import { parseCli } from '../../runtime/cli-args';
import { loadConfig } from '../../runtime/config';
import type { Logger } from '../../infra/index';
import { ensureSystem, stopFrontEnds } from '../../infra/system';
import { createLogger } from '../../server/src/logger';
import { buildServices } from '../../server/src/services';
import { makeBenchRooms } from '../../testkit/roomcast-fixtures';
import { summarize } from '../../testkit/stats';
import { startWorker } from '../../testkit/workers';
import type { ChaosClientSpec, ChaosClientsParams, ChaosClientsResult } from '../../testkit/room-clients-worker';
import type { ChaosPosterParams, ChaosPosterResult } from './chaos-poster';
import { faultSchedule } from './faults';
import { convergenceAfter, explainMissing, verify, type StoredMessage } from './verify';

const USAGE = `
npm run chaos -- [options]

A bounded fault-injection run over the whole system; exit code 0 only on PASS.

  --duration S    seconds of posting while faults are injected (20-3600, default 120)
  --rooms N       rooms (1-50, default 8)
  --viewers N     headless clients per room (1-200, default 24)
  --rate N        posts per second over all rooms (1-500, default 20)
  --processes N   child processes the clients and posters run in (1-16, default 4)
`;
const cli = parseCli(
  {
    duration: { type: 'string', default: '120' },
    rooms: { type: 'string', default: '8' },
    viewers: { type: 'string', default: '24' },
    rate: { type: 'string', default: '20' },
    processes: { type: 'string', default: '4' },
  },
  USAGE,
);
const durationMs = cli.integer('duration', 20, 3600) * 1000;
const rooms = cli.integer('rooms', 1, 50);
const viewers = cli.integer('viewers', 1, 200);
const rate = cli.integer('rate', 1, 500);
const processes = cli.integer('processes', 1, 16);

const t0 = Date.now();
const say = (line: string): void => void process.stdout.write(`[chaos ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);
const log: Logger = { info: say, warn: (m) => say(`warning: ${m}`) };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  const config = loadConfig({ ...process.env, ROOMCAST_LOG_LEVEL: process.env.ROOMCAST_LOG_LEVEL ?? 'warn' });
  say(`system: ${config.rabbitmq.nodes.length} broker nodes, ${config.app.servers} app servers, proxy; ${rooms} rooms × (${viewers} learners + 1 instructor), ${rate} msg/s, ${durationMs / 1000} s of faults`);
  // What this run started, it stops at the end; a system already running (npm start) stays up.
  const { proxy, ca, started: stopAfter } = await ensureSystem(config, log);
  // The run's own broker connection sees every fault; its warnings would only drown the report.
  const services = buildServices(config, createLogger({ logLevel: 'silent' }, 'chaos'));
  await services.broker.ready(10_000);

  // Two extra learners per room post; the viewers only watch, so their views come from the broker and resync alone.
  const made = await makeBenchRooms(services, rooms, viewers + 2);
  const clientSpecs: ChaosClientSpec[] = made.flatMap((r) => [
    { userId: r.instructor.id, roomId: r.id, token: r.instructor.token, role: 'instructor' as const },
    ...r.learners.slice(0, viewers).map((l) => ({ userId: l.id, roomId: r.id, token: l.token, role: 'learner' as const })),
  ]);
  const shares: ChaosClientSpec[][] = Array.from({ length: processes }, () => []);
  clientSpecs.forEach((c, i) => shares[i % processes]?.push(c));
  const clients = shares.map((share) =>
    startWorker<ChaosClientsParams, ChaosClientsResult>(
      new URL('../../testkit/room-clients-worker.ts', import.meta.url),
      { proxyUrl: proxy.url, ca, clients: share, silenceResyncMs: 5000 },
      // The client library uses the global fetch, which trusts only what Node was started with.
      { env: { NODE_EXTRA_CA_CERTS: proxy.certFile } },
    ),
  );
  await Promise.all(clients.map((c) => c.ready));
  const states = async (): Promise<Record<string, number>> => {
    const all: Record<string, number> = {};
    for (const r of await Promise.all(clients.map((c) => c.request({ type: 'states' })))) {
      for (const [k, v] of Object.entries(r as Record<string, number>)) all[k] = (all[k] ?? 0) + v;
    }
    return all;
  };
  const waitAllLive = async (what: string, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await states();
      if ((s.live ?? 0) === clientSpecs.length) return;
      if (Date.now() > deadline) throw new Error(`${what}: not all clients live after ${timeoutMs / 1000} s: ${JSON.stringify(s)}`);
      await sleep(500);
    }
  };
  await waitAllLive('start', 60_000);
  say(`${clientSpecs.length} clients live in ${processes} processes`);

  const poster = startWorker<ChaosPosterParams, ChaosPosterResult>(new URL('./chaos-poster.ts', import.meta.url), {
    proxyUrl: proxy.url,
    ca,
    rooms: made.map((r) => ({
      roomId: r.id,
      instructor: { userId: r.instructor.id, token: r.instructor.token },
      learners: r.learners.slice(viewers).map((l) => ({ userId: l.id, token: l.token })),
    })),
    ratePerSecond: rate,
    retryForMs: 60_000,
  });
  await poster.ready;
  const postStart = Date.now();
  const faults = faultSchedule(config, log);
  const faultTimes: { name: string; at: number; tookMs: number }[] = [];
  let faultFailures = 0;
  const ticker = setInterval(() => {
    void states().then((s) => say(`clients ${JSON.stringify(s)}`));
  }, 5000);
  const cutter = setInterval(() => {
    for (const c of clients) void c.request({ type: 'cut', count: 1 }).catch(() => undefined);
  }, 4000);
  try {
    for (const f of faults) {
      const due = postStart + f.at * durationMs;
      if (due > Date.now()) await sleep(due - Date.now());
      say(`FAULT ${f.name}`);
      const at = Date.now();
      try {
        await f.run();
        say(`      ${f.name}: done in ${((Date.now() - at) / 1000).toFixed(1)} s`);
      } catch (err) {
        say(`      ${f.name}: FAILED: ${(err as Error).message}`);
        faultFailures++;
      }
      faultTimes.push({ name: f.name, at, tookMs: Date.now() - at });
    }
    const end = postStart + durationMs;
    if (end > Date.now()) await sleep(end - Date.now());
  } finally {
    clearInterval(cutter);
  }
  say('stopping posters; waiting for retries to settle');
  const posted = await poster.stop();
  clearInterval(ticker);
  // Whatever a fault left broken is repaired before the final check (it reuses what runs).
  await ensureSystem(config, log);

  // Every client reconnects once more, which resyncs it, then the views are final.
  say('final resync: cutting every client socket once');
  await sleep(2000);
  for (const c of clients) await c.request({ type: 'cut', count: 1_000_000 });
  await sleep(1000);
  await waitAllLive('final resync', 90_000);
  await sleep(3000);
  const results = await Promise.all(clients.map((c) => c.stop()));
  const views = results.flatMap((r) => r.views);

  const { rows } = await services.pool.query<{
    id: string; room_id: string; seq: number; sender_id: string; audience: string; recipient_id: string | null; client_msg_id: string; created_at: Date;
    published_at: Date | null; attempts: number | null;
  }>(
    // A publish job's first attempt is the send request's; every later one is a relay's claim.
    `SELECT m.id, m.room_id, m.seq, m.sender_id, m.audience, m.recipient_id, m.client_msg_id, m.created_at,
            CASE WHEN j.state = 'done' THEN j.finished_at END AS published_at, greatest(j.attempts - 1, 0) AS attempts
       FROM messages m LEFT JOIN jobs j ON j.queue = 'publish' AND j.ref = m.id::text WHERE m.room_id = ANY($1::uuid[])`,
    [made.map((r) => r.id)],
  );
  const stored: StoredMessage[] = rows.map((r) => ({
    id: r.id, roomId: r.room_id, seq: r.seq, senderId: r.sender_id, audience: r.audience, recipientId: r.recipient_id, clientMsgId: r.client_msg_id, createdAt: r.created_at.getTime(),
    publishedAt: r.published_at?.getTime() ?? null, relayAttempts: r.attempts ?? 0,
  }));
  const lateRelayed = stored.filter((m) => m.relayAttempts > 0).length;
  await services.close();

  const verdict = verify(posted.posts, stored, views);
  const convergence = faultTimes.map((f) => ({ ...f, worstDelayMs: convergenceAfter(f.at, 5000, stored, views) }));
  const conv = summarize(convergence.map((c) => c.worstDelayMs ?? 0));
  const lines = [
    '',
    `posts: ${verdict.posts}, accepted (201): ${verdict.accepted}, never accepted: ${verdict.neverAccepted}, retried errors: ${JSON.stringify(posted.retriedErrors)}`,
    `stored rows: ${stored.length}; 201s missing from Postgres: ${verdict.acceptedMissingInDb}; 201s that differ from the row: ${verdict.acceptedMismatched}; rows no POST asked for: ${verdict.storedNotAsked}`,
    `clients: ${verdict.clientsExact}/${verdict.clients} hold exactly what they may see, in order; missing ${verdict.missing}, extra ${verdict.extra}, duplicates ${verdict.duplicates}, out of order ${verdict.outOfOrder}`,
    `instructors complete (queue + resync): ${verdict.instructorsComplete}; socket cuts: ${results.reduce((n, r) => n + r.cuts, 0)}`,
    `published late by an outbox relay: ${lateRelayed} message(s)`,
    'faults (worst commit→shown delay of messages committed in the 5 s after each):',
    ...convergence.map((c) => `  ${c.name.padEnd(30)} ${c.worstDelayMs === null ? 'no messages' : `${(c.worstDelayMs / 1000).toFixed(2)} s`}`),
    `convergence after faults: p50 ${(conv.p50 / 1000).toFixed(2)} s, max ${(conv.max / 1000).toFixed(2)} s`,
    ...verdict.problems.map((p) => `  problem: ${p}`),
    ...explainMissing(stored, views).map((l) => `  missing: ${l}`),
    '',
    faultFailures > 0 ? `${faultFailures} fault(s) could not be injected` : 'every fault was injected',
    verdict.pass && faultFailures === 0 ? 'PASS' : 'FAIL',
  ];
  for (const l of lines) say(l);
  if (stopAfter) {
    await stopFrontEnds(config, log);
  }
  return verdict.pass && faultFailures === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    say(`error: ${(err as Error).stack ?? String(err)}`);
    process.exit(2);
  },
);
