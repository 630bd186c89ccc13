/**
 * Kill -9 the process that dispatches webhooks in the middle of a retry, restart it, and check
 * what the receivers got: every event, in order per endpoint and room, and a second copy only of
 * what was in flight (one event per stream at most: the documented at-least-once).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, makeRoom, startHarness, uniqueName, type Harness, type TestRoom } from '../../testkit/harness';
import { WebhookReceiver } from '../../testkit/webhook-receiver';
import { createLogger } from '../src/logger';
import { WebhookChannel } from '../src/webhooks';

let h: Harness;
let rx: WebhookReceiver;
/** Endpoints are registered through a channel on a queue of this test's own, which only its child processes work. */
let webhooks: WebhookChannel;
const queue = `webhook-crash-${randomBytes(4).toString('hex')}`;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  rx = await WebhookReceiver.start();
  // The API only: the dispatcher under test runs in a child process.
  h = await startHarness({ webhooks: false, mail: false });
  const { pool, metrics } = h.server.services;
  webhooks = new WebhookChannel({ pool, config: h.config, events: h.server.events.store, listener: h.server.events.listener, mail: h.server.mail, metrics, logger: createLogger(h.config, 'test'), queue });
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  // Nobody works this queue again.
  await h?.server.services.pool.query('DELETE FROM jobs WHERE queue = $1', [queue]);
  await h?.close();
  await rx?.close();
});

async function startDispatcher(): Promise<ChildProcess> {
  const child = fork(fileURLToPath(new URL('./webhooks-dispatcher-process.ts', import.meta.url)), [queue], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ROOMCAST_LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`the dispatcher process exited (${code}) before it was ready`)));
  });
  return child;
}

interface Stream {
  room: TestRoom;
  path: string;
  ref: string;
  /** Message ids in the order they were posted (= seq order). */
  posted: string[];
}

describe('webhook dispatcher crash', () => {
  it('delivers everything in order after the dispatching process is killed in the middle of a retry, a copy only of what was in flight', async () => {
    const streams: Stream[] = [];
    for (let i = 0; i < 3; i++) {
      const room = await makeRoom(h, 0);
      const path = `/${uniqueName('crash')}`;
      const endpoint = await webhooks.create(room.id, room.instructor.id, { url: rx.url(path), eventTypes: ['message.created'], description: 'crash test' });
      rx.secret(path, endpoint.secret);
      streams.push({ room, path, ref: `${endpoint.id}:${room.id}`, posted: [] });
    }
    const [a] = streams as [Stream];
    // Room A's fifth message fails once (500); its retry is held until the process dies; after the restart it succeeds.
    const tries = new Map<string, number>();
    let target = '';
    rx.script(a.path, (d) => {
      const n = (tries.get(d.id) ?? 0) + 1;
      tries.set(d.id, n);
      if (tries.size === 5 && n === 1) target = d.id;
      if (d.id !== target) return {};
      return n === 1 ? { status: 500 } : n === 2 ? { hold: true } : {};
    });
    // The other rooms' receivers are slow, so their streams have a delivery in flight when the process dies.
    for (const s of streams.slice(1)) rx.script(s.path, () => ({ delayMs: 40 }));
    const post = async (s: Stream, text: string): Promise<void> => {
      const res = await s.room.instructor.api.post(`/api/rooms/${s.room.id}/messages`, chat(text));
      expect(res.status).toBe(201);
      s.posted.push(res.body.id);
    };

    const first = await startDispatcher();
    for (let i = 0; i < 15; i++) {
      for (const s of streams) await post(s, `before ${i}`);
    }
    await rx.until(() => rx.to(a.path).filter((d) => d.id === target).length === 2, 'the retry of A’s fifth message, held', 20_000);
    const exited = new Promise((resolve) => first.once('exit', resolve));
    first.kill('SIGKILL');
    await exited;
    const atKill = rx.deliveries.length;
    expect(target).toBe(a.posted[4]);

    // While nobody dispatches.
    for (let i = 15; i < 25; i++) for (const s of streams) await post(s, `while down ${i}`);
    // The dead process's leases run out (after a minute): make them due now, as time would.
    await h.server.services.pool.query(`UPDATE jobs SET lease_until = now() WHERE queue = $1 AND ref = ANY($2::text[]) AND state = 'pending' AND lease_until > now()`, [
      queue,
      streams.map((s) => s.ref),
    ]);
    const second = await startDispatcher();
    try {
      const ok = (s: Stream): string[] => rx.to(s.path).filter((d) => d.status >= 200 && d.status < 300).map((d) => d.id);
      await rx.until(() => streams.every((s) => s.posted.every((id) => ok(s).includes(id))), 'every event delivered after the restart', 30_000);
    } finally {
      second.kill('SIGKILL');
    }

    let duplicates = 0;
    for (const s of streams) {
      const got = rx.to(s.path);
      expect(got.every((d) => d.verified)).toBe(true);
      // Order: no event goes out before every earlier one has been answered 2xx (or given up; none is here).
      const index = got.map((d) => s.posted.indexOf(d.id));
      expect(index.every((x, i) => x >= 0 && (i === 0 || x >= index[i - 1]!))).toBe(true);
      // Nothing lost: the answered ones, a repeat collapsed, are exactly what was posted.
      const answered = got.filter((d) => d.status >= 200 && d.status < 300).map((d) => d.id);
      expect(answered.filter((id, i) => id !== answered[i - 1])).toEqual(s.posted);
      // At least once: only the event in flight at the kill can have been answered twice.
      const extra = answered.length - s.posted.length;
      expect(extra).toBeLessThanOrEqual(1);
      duplicates += extra;
    }
    // A's fifth: the failure, the retry cut by the kill (never answered), the retry after the restart.
    expect(rx.to(a.path).filter((d) => d.id === target).map((d) => d.status)).toEqual([500, 0, 204]);
    console.log(`webhook crash: ${atKill} deliveries before the kill, ${rx.deliveries.length - atKill} after; ${duplicates} answered twice (bound: ${streams.length}, one per stream)`);
  });
});
