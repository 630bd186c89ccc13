import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startApp, stopApp } from '../../infra/rabbitmq-cluster';
import { rabbitmqctl } from '../../infra/rabbitmq-ctl';
import type { RoomMessage } from '../../shared/protocol/messages';
import { exchangeDestination, roomAllKey } from '../../shared/protocol/routing';
import { sendMessageRequest } from '../../shared/protocol/messages';
import { testConfig } from '../../testkit/test-config';
import { chat, makeRoom, startHarness, type Harness, type TestRoom, type TestUser } from '../../testkit/harness';
import { collect, connectStomp, waitFor, webStompUrl, type StompSession } from '../../testkit/stomp';

const harnesses: Harness[] = [];
const sessions: StompSession[] = [];
// Each test's relays stop with it: a relay left running would take the next test's rows.
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.disconnect()));
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

async function harness(relay: boolean, overrides: Record<string, string> = {}): Promise<Harness> {
  const h = await startHarness({ relay, config: testConfig(overrides) });
  harnesses.push(h);
  return h;
}

async function stompAs(h: Harness, user: TestUser, node: number): Promise<StompSession> {
  const t = await user.api.post('/api/broker-token');
  const s = await connectStomp(webStompUrl(h.config, node), t.body.login, t.body.passcode);
  sessions.push(s);
  return s;
}

interface Listeners {
  learner: RoomMessage[];
  instructor: RoomMessage[];
}

/** A learner on the room key and the instructor on its queue, counting what arrives. */
async function listeners(h: Harness, room: TestRoom): Promise<Listeners> {
  const learner = await collect(await stompAs(h, room.learners[0]!, 0), exchangeDestination(roomAllKey(room.id)));
  const subs = await room.instructor.api.get(`/api/rooms/${room.id}/subscriptions`);
  const instructor = await collect(await stompAs(h, room.instructor, 1), subs.body.instructorQueue.destination, { ack: 'client-individual' }, (m) => m.ack());
  return { learner, instructor };
}

/**
 * Publishes a marker on each server's publish channel, after everything the server published
 * before, and waits until both listeners have every marker. A channel's messages reach each
 * queue in the order they were published (and its confirms come back in that order), so once
 * the markers are in, everything published before them, a duplicate included, has arrived and
 * been counted: the lists returned (without the markers) are final. The markers go straight
 * to the broker connection, so they have no publish job and count in no metric.
 */
async function fence(servers: Harness[], room: TestRoom, got: Listeners): Promise<Listeners> {
  const markers = new Set<string>();
  await Promise.all(
    servers.map((h) => {
      const id = randomUUID();
      markers.add(id);
      const marker: RoomMessage = {
        id,
        roomId: room.id,
        seq: 0,
        senderId: room.instructor.id,
        audience: 'everyone',
        recipientId: null,
        kind: 'chat',
        body: { text: 'fence' },
        clientMsgId: id,
        createdAt: new Date().toISOString(),
        broadcastSeq: null,
      };
      return h.server.broker.publish(roomAllKey(room.id), Buffer.from(JSON.stringify(marker)), { messageId: id, contentType: 'application/json' });
    }),
  );
  const hasAll = (ms: RoomMessage[]): boolean => [...markers].every((id) => ms.some((m) => m.id === id));
  await waitFor(() => hasAll(got.learner) && hasAll(got.instructor), 'the fence at both listeners');
  const real = (ms: RoomMessage[]): RoomMessage[] => ms.filter((m) => !markers.has(m.id));
  return { learner: real(got.learner), instructor: real(got.instructor) };
}

/**
 * Stops the relay's passes and waits out the one in progress, so nothing it published is still
 * unsettled; one more pass then finds nothing left to publish.
 */
async function relayDone(h: Harness): Promise<void> {
  await h.server.relay.stop();
  expect(await h.server.relay.runOnce()).toBe(0);
}

const PUBLISH_TIMEOUT_MS = 300;

/** Blocks this process, the in-process app server included, for `ms`. */
function stallEventLoop(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy: no timer, no socket read runs meanwhile
  }
}

const backlog = async (h: Harness, roomId: string): Promise<number> =>
  (
    await h.server.services.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM jobs j JOIN messages m ON m.id = j.ref::uuid
        WHERE j.queue = 'publish' AND m.room_id = $1 AND j.state = 'pending'`,
      [roomId],
    )
  ).rows[0]!.n;

describe('outbox relay', () => {
  it('accepts sends while the whole broker is down and delivers every one, once, after it returns', async () => {
    const h = await harness(false);
    const room = await makeRoom(h, 1);
    const nodes = h.config.rabbitmq.nodes.map((n) => n.index);

    for (const i of [...nodes].reverse()) await stopApp(h.config, i);
    try {
      await waitFor(() => h.server.broker.status !== 'connected', 'the app server to notice the broker is gone');
      const N = 25;
      const sent: string[] = [];
      for (let i = 0; i < N; i++) {
        const res = await room.learners[0]!.api.post(`/api/rooms/${room.id}/messages`, chat(`offline-${i}`));
        expect(res.status).toBe(201);
        sent.push(res.body.id);
      }
      expect(await backlog(h, room.id)).toBe(N);
    } finally {
      await Promise.all(nodes.map((i) => startApp(h.config, i)));
    }
    await waitFor(() => h.server.broker.status === 'connected', 'the app server to reconnect', 30_000);

    const got = await listeners(h, room);
    h.server.relay.start();
    await waitFor(() => got.learner.length >= 25 && got.instructor.length >= 25, 'every message at both listeners', 30_000);
    await waitFor(async () => (await backlog(h, room.id)) === 0, 'the relay to mark every message published');
    await relayDone(h);
    const final = await fence([h], room, got);
    expect(final.learner.map((m) => m.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(final.instructor.map((m) => m.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(await backlog(h, room.id)).toBe(0);
  });

  it('publishes messages committed by a server that died before publishing, once, with two relays running', async () => {
    const writer = await harness(false);
    const room = await makeRoom(writer, 1);
    const got = await listeners(writer, room);
    // Commit without publishing: exactly what a crash between commit and publish leaves behind.
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const req = sendMessageRequest.parse(chat(`orphan-${i}`));
      ids.push((await writer.server.services.messages.insert(room.id, room.learners[0]!.id, req)).message.id);
    }
    expect(await backlog(writer, room.id)).toBe(40);

    const relays = await Promise.all([harness(true), harness(true)]);
    await waitFor(() => got.learner.length >= 40 && got.instructor.length >= 40, 'the relays to publish the orphans', 30_000);
    await waitFor(async () => (await backlog(writer, room.id)) === 0, 'the relays to mark every orphan published');
    for (const r of relays) await relayDone(r);
    const final = await fence(relays, room, got);
    // Relays split the backlog between them, so arrival order may interleave; each message
    // arrives exactly once, and the client orders by seq.
    const bySeq = (ms: RoomMessage[]): string[] => [...ms].sort((x, y) => x.seq - y.seq).map((m) => m.id);
    expect(final.learner).toHaveLength(40);
    expect(final.instructor).toHaveLength(40);
    expect(bySeq(final.learner)).toEqual(ids);
    expect(bySeq(final.instructor)).toEqual(ids);
    expect(await backlog(writer, room.id)).toBe(0);
  });

  it('republishes a message whose connection closed before its confirm at the next pass, without waiting out the threshold', async () => {
    // A relay threshold far beyond this test: only a relay that knows the publish failed can
    // deliver the message in time.
    const h = await harness(true, { ROOMCAST_OUTBOX_RELAY_AFTER_MS: '120000' });
    const room = await makeRoom(h, 1);
    const got = await listeners(h, room);
    const node = h.config.rabbitmq.nodes[0]!;
    const broker = h.server.services.broker;
    // The memory alarm holds the publish unread in the socket; closing the connection then
    // loses it for sure, as a node's death loses what was in flight to it.
    await rabbitmqctl(h.config, node, ['set_vm_memory_high_watermark', '0']);
    try {
      const res = await room.learners[0]!.api.post(`/api/rooms/${room.id}/messages`, chat('in flight'));
      expect(res.status).toBe(201);
      await waitFor(() => broker.blocked !== null, 'the broker to block the app server');
      const list = await rabbitmqctl(h.config, node, ['list_connections', '-q', '--no-table-headers', 'pid', 'user']);
      const ours = list
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter(([pid, user]) => pid && user === h.config.rabbitmq.user)
        .map(([pid]) => pid!);
      expect(ours).toHaveLength(1);
      await rabbitmqctl(h.config, node, ['close_connection', ours[0]!, 'test: connection lost with a publish in flight']);
      await waitFor(() => broker.blocked === null, 'the app server to drop the blocked connection');
    } finally {
      await rabbitmqctl(h.config, node, ['set_vm_memory_high_watermark', '0.15']);
    }
    await waitFor(() => got.learner.length >= 1 && got.instructor.length >= 1, 'the lost publish to be republished', 10_000);
    await waitFor(async () => (await backlog(h, room.id)) === 0, 'the relay to mark it published');
    await relayDone(h);
    const final = await fence([h], room, got);
    expect(final.learner.map((m) => m.body)).toEqual([{ text: 'in flight' }]);
    expect(final.instructor.map((m) => m.body)).toEqual([{ text: 'in flight' }]);
  });

  it('keeps sends while the broker blocks publishers (memory alarm) and delivers each once after, without republishing', async () => {
    // The relay runs and would take these rows after 300 ms; publishes time out after 300 ms.
    const h = await harness(true, { ROOMCAST_PUBLISH_TIMEOUT_MS: String(PUBLISH_TIMEOUT_MS) });
    const room = await makeRoom(h, 1);
    const got = await listeners(h, room);
    const node = h.config.rabbitmq.nodes[0]!;
    const published = async (): Promise<number> => {
      const m = await h.server.services.metrics.registry.getSingleMetric('roomcast_messages_published_total')?.get();
      return (m?.values ?? []).reduce((n, v) => n + v.value, 0);
    };
    const publishedBefore = await published();
    const N = 10;
    // A watermark of 0 raises the memory alarm on every node's behalf: all publishers block.
    await rabbitmqctl(h.config, node, ['set_vm_memory_high_watermark', '0']);
    try {
      for (let i = 0; i < N; i++) {
        const res = await room.learners[0]!.api.post(`/api/rooms/${room.id}/messages`, chat(`blocked-${i}`));
        expect(res.status).toBe(201);
        // The app server's event loop stalls (CPU contention, a long GC) past the publish timeout
        // just after the first publish: Node runs the expired timer before it reads the
        // `connection.blocked` the broker sent meanwhile. The silence must still not be taken
        // for a stuck channel.
        if (i === 0) stallEventLoop(2 * PUBLISH_TIMEOUT_MS);
      }
      await waitFor(() => h.server.services.broker.blocked !== null, 'the broker to block the app server');
      // Every send's publish times out while blocked (relay passes go by meanwhile, every 200 ms,
      // and the send requests' leases of 300 ms run out unless the ledger renews them), and one
      // more relay pass runs after them all.
      await h.server.services.ledger.settled();
      expect(await h.server.relay.runOnce()).toBe(0);
      expect(got.learner).toHaveLength(0);
      expect(await backlog(h, room.id)).toBe(N);
    } finally {
      await rabbitmqctl(h.config, node, ['set_vm_memory_high_watermark', '0.15']);
    }
    await waitFor(() => got.learner.length >= N && got.instructor.length >= N, 'every message after the alarm clears', 30_000);
    await waitFor(async () => (await backlog(h, room.id)) === 0, 'the late confirms to mark the outbox');
    await relayDone(h);
    const final = await fence([h], room, got);
    expect(final.learner.map((m) => m.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    expect(final.instructor.map((m) => m.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    // Each message was confirmed once, late: nothing was published a second time.
    expect(h.server.services.broker.blocked).toBeNull();
    expect((await published()) - publishedBefore).toBe(N);
  });
});
