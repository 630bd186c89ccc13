/**
 * `npm run bench:webhooks`: webhook delivery to a local receiver (testkit/webhook-receiver.ts,
 * node:http on loopback, each delivery verified with the `standardwebhooks` package).
 *
 * 1. Throughput: R rooms, one endpoint each, paused while M messages per room are sent; then all
 *    are resumed at once, and deliveries per second are counted from the resume until the
 *    receiver holds every event (each stream sends in order, one at a time; the streams run side
 *    by side, up to ROOMCAST_WEBHOOK_CONCURRENCY per app server).
 * 2. Latency: messages posted at a steady rate into one room with E endpoints; per delivery, the
 *    time from the message's commit (`createdAt`, Postgres's clock, the transaction's time) to
 *    its arrival at the receiver: the hop webhooks add, p50/p95/p99.
 *
 * Uses the services of `npm start` (started if needed) and one app server of its own on a free
 * port, with ROOMCAST_WEBHOOK_ALLOW_PRIVATE=true (the receiver is on loopback). Writes
 * bench/results/webhooks-<time>.json and .md.
 */
import { randomBytes } from 'node:crypto';
import { parseCli } from '../runtime/cli-args';
import { loadConfig } from '../runtime/config';
import type { EventType } from '../shared/protocol/events';
import { ensureServices } from '../infra/index';
import { startAppServer } from '../server/src/app';
import { dropBenchQueues, makeBenchRooms } from '../testkit/roomcast-fixtures';
import { roundSummary, summarize, type LatencySummary } from '../testkit/stats';
import { WebhookReceiver } from '../testkit/webhook-receiver';
import { machineFacts } from './lib/machine';
import { writeBenchResults } from './lib/results-file';
import { progress, sleep } from './lib/progress';

const USAGE = `
npm run bench:webhooks -- [options]

  --rooms N      rooms (one endpoint each) for the throughput run (default 20, quick 5)
  --messages N   messages per room for the throughput run (default 250, quick 60)
  --endpoints N  endpoints on the one room of the latency run (default 5)
  --posts N      messages posted in the latency run (default 300, quick 100)
  --rate R       messages per second in the latency run (default 20)
  --quick        smaller runs
`;
const cli = parseCli(
  {
    rooms: { type: 'string' },
    messages: { type: 'string' },
    endpoints: { type: 'string' },
    posts: { type: 'string' },
    rate: { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
  USAGE,
);
const q = cli.values.quick;
const roomCount = cli.values.rooms === undefined ? (q ? 5 : 20) : cli.integer('rooms', 1, 1000);
const perRoom = cli.values.messages === undefined ? (q ? 60 : 250) : cli.integer('messages', 1, 100_000);
const endpointCount = cli.values.endpoints === undefined ? 5 : cli.integer('endpoints', 1, 100);
const postCount = cli.values.posts === undefined ? (q ? 100 : 300) : cli.integer('posts', 1, 100_000);
const rate = cli.values.rate === undefined ? 20 : cli.integer('rate', 1, 1000);

const { say, log } = progress();
const MESSAGES: EventType[] = ['message.created'];

interface WebhookBench {
  machine: Record<string, string | number>;
  startedAt: string;
  concurrency: number;
  throughput: { rooms: number; deliveries: number; seconds: number; deliveriesPerSecond: number; unverified: number };
  latency: { endpoints: number; posts: number; ratePerSecond: number; commitToReceiptMs: LatencySummary; unverified: number };
}

async function main(): Promise<void> {
  const config = loadConfig({ ...process.env, ROOMCAST_LOG_LEVEL: process.env.ROOMCAST_LOG_LEVEL ?? 'warn', ROOMCAST_WEBHOOK_ALLOW_PRIVATE: 'true' });
  await ensureServices(config, log);
  const rx = await WebhookReceiver.start();
  const app = await startAppServer(config, { port: 0 });
  const { services, webhooks } = app;
  const run = randomBytes(4).toString('hex');
  const startedAt = new Date().toISOString();
  const rooms = [];
  try {
    // 1. Throughput.
    say(`throughput: ${roomCount} rooms, one paused endpoint each, ${perRoom} messages per room`);
    const tRooms = await makeBenchRooms(services, roomCount, 0);
    rooms.push(...tRooms);
    const hooks: { room: (typeof tRooms)[number]; id: string; path: string }[] = [];
    for (const [i, room] of tRooms.entries()) {
      const p = `/t-${run}-${i}`;
      const e = await webhooks.create(room.id, room.instructor.id, { url: rx.url(p), eventTypes: MESSAGES, description: 'bench' });
      rx.secret(p, e.secret);
      await webhooks.update(room.id, e.id, room.instructor.id, { enabled: false });
      hooks.push({ room, id: e.id, path: p });
    }
    await Promise.all(
      tRooms.map(async (room) => {
        for (let i = 0; i < perRoom; i++) {
          await services.sendMessage.send(room.id, room.instructor.id, { clientMsgId: `wb-${run}-${i}`, audience: 'everyone', kind: 'chat', body: { text: `event ${i}` } });
        }
      }),
    );
    const total = roomCount * perRoom;
    const start = Date.now();
    await Promise.all(hooks.map((h) => webhooks.update(h.room.id, h.id, h.room.instructor.id, { enabled: true })));
    // Only this run's endpoints deliver to this receiver: a count is enough (and costs nothing per delivery).
    await rx.until(() => rx.deliveries.length >= total, 'every throughput delivery', 10 * 60_000);
    const seconds = (Date.now() - start) / 1000;
    const tDeliveries = hooks.flatMap((h) => rx.to(h.path));
    const throughput = {
      rooms: roomCount,
      deliveries: total,
      seconds: Number(seconds.toFixed(2)),
      deliveriesPerSecond: Number((total / seconds).toFixed(1)),
      unverified: tDeliveries.filter((d) => d.verified !== true).length,
    };
    say(`throughput: ${throughput.deliveriesPerSecond} deliveries/s (${total} in ${throughput.seconds} s)`);

    // 2. Latency: one room, several endpoints, a steady rate.
    const [room] = await makeBenchRooms(services, 1, 0);
    if (!room) throw new Error('no bench room');
    rooms.push(room);
    const paths: string[] = [];
    for (let i = 0; i < endpointCount; i++) {
      const p = `/l-${run}-${i}`;
      const e = await webhooks.create(room.id, room.instructor.id, { url: rx.url(p), eventTypes: MESSAGES, description: 'bench' });
      rx.secret(p, e.secret);
      paths.push(p);
    }
    say(`latency: ${postCount} messages at ${rate}/s into one room with ${endpointCount} endpoints`);
    const committed = new Map<string, number>();
    for (let i = 0; i < postCount; i++) {
      const { message } = await services.sendMessage.send(room.id, room.instructor.id, { clientMsgId: `wl-${run}-${i}`, audience: 'everyone', kind: 'chat', body: { text: `latency ${i}` } });
      committed.set(message.id, Date.parse(message.createdAt));
      await sleep(1000 / rate);
    }
    await rx.until(() => rx.deliveries.length >= total + postCount * endpointCount, 'every latency delivery', 5 * 60_000);
    const lDeliveries = paths.flatMap((p) => rx.to(p));
    const samples = lDeliveries.map((d) => d.at - (committed.get(d.id) ?? NaN));
    const latency = {
      endpoints: endpointCount,
      posts: postCount,
      ratePerSecond: rate,
      commitToReceiptMs: roundSummary(summarize(samples)),
      unverified: lDeliveries.filter((d) => d.verified !== true).length,
    };
    const l = latency.commitToReceiptMs;
    say(`latency: commit → receipt p50 ${l.p50} ms, p95 ${l.p95} ms, p99 ${l.p99} ms`);

    const results: WebhookBench = { machine: machineFacts(), startedAt, concurrency: config.webhooks.concurrency, throughput, latency };
    writeBenchResults(
      {
        name: 'webhooks',
        title: 'roomcast webhook benchmark',
        startedAt,
        machine: results.machine,
        rows: [
          [
            `deliveries to a local receiver, ${roomCount} streams side by side (concurrency ${results.concurrency}), backlog of ${perRoom} per stream`,
            `${throughput.deliveriesPerSecond} deliveries/s (${total} in ${throughput.seconds} s)`,
          ],
          [`commit → receipt, ${postCount} messages at ${rate}/s, ${endpointCount} endpoints on the room`, `p50 ${l.p50} ms, p95 ${l.p95} ms, p99 ${l.p99} ms, max ${l.max} ms`],
          ['deliveries that failed the standardwebhooks check', `${throughput.unverified + latency.unverified}`],
        ],
      },
      results,
    );
  } finally {
    // The endpoints go with their streams; the rooms' instructor queues would linger a day.
    for (const room of rooms) for (const e of await webhooks.list(room.id)) await webhooks.remove(room.id, e.id);
    await dropBenchQueues(services, rooms).catch(() => undefined);
    await app.close();
    await rx.close();
  }
}

main().catch((err: unknown) => {
  say(`error: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
