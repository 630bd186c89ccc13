import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RoomMessage } from '../../shared/protocol/messages';
import { ROOM_EXCHANGE } from '../../shared/protocol/routing';
import { BrokerConnection } from '../src/broker/broker-connection';
import { Publisher } from '../src/broker/publisher';
import { createLogger } from '../src/logger';
import { startHarness, type Harness } from '../../testkit/harness';
import { waitFor } from '../../testkit/stomp';

/**
 * The app server replaces its publish channel when the channel refuses everything, as RabbitMQ
 * 3.10 can leave one after a quorum queue's leader dies; a channel that refuses some messages
 * but confirms others is healthy and kept. A classic queue that rejects every publish
 * (`x-overflow: reject-publish`, length 0) bound to one key stands in for the refusal.
 */
describe('publish channel', () => {
  let h: Harness;
  const refusing = `test.refuse.${randomUUID()}`;
  const refusedKey = `test.refused.${randomUUID()}`;

  beforeAll(async () => {
    h = await startHarness({ relay: false });
    await h.server.services.broker.withChannel(async (ch) => {
      await ch.assertQueue(refusing, { durable: false, arguments: { 'x-overflow': 'reject-publish', 'x-max-length': 0 } });
      await ch.bindQueue(refusing, ROOM_EXCHANGE, refusedKey);
    });
  });
  afterAll(async () => {
    await h.server.services.broker.withChannel((ch) => ch.deleteQueue(refusing));
    await h.close();
  });

  const message = (): RoomMessage => ({
    id: randomUUID(),
    roomId: randomUUID(),
    seq: 1,
    senderId: randomUUID(),
    audience: 'everyone',
    recipientId: null,
    kind: 'chat',
    body: { text: 'x' },
    clientMsgId: randomUUID(),
    createdAt: new Date().toISOString(),
    broadcastSeq: 1,
  });
  const outcome = (p: Promise<void>): Promise<string> => p.then(() => 'confirmed', () => 'refused');

  it('is replaced when it refuses every publish', async () => {
    const broker = h.server.services.broker;
    const before = broker.publishChannel();
    expect(await outcome(h.server.services.publisher.publish(refusedKey, message()))).toBe('refused');
    await waitFor(() => broker.publishChannel() !== before, 'a fresh publish channel');
    // The fresh channel works: a key nothing refuses is confirmed on it.
    expect(await outcome(h.server.services.publisher.publish(`test.free.${randomUUID()}`, message()))).toBe('confirmed');
  });

  it('is kept when it confirms publishes sent after the refused one', async () => {
    // A server of its own: the test before replaced the shared server's channel less than a
    // second ago, and a replacement that soon is skipped without looking at the channel.
    const own = await startHarness({ relay: false });
    try {
      const broker = own.server.services.broker;
      const checks = vi.spyOn(broker, 'replaceIfStuck');
      const before = broker.publishChannel();
      const results = await Promise.all([
        outcome(own.server.services.publisher.publish(refusedKey, message())),
        outcome(own.server.services.publisher.publish(`test.free.${randomUUID()}`, message())),
      ]);
      expect(results).toEqual(['refused', 'confirmed']);
      // A refusal that came before the other confirm has started a check of the channel by the
      // time it is reported: wait for the check's verdict.
      await Promise.all(checks.mock.results.map((r) => r.value));
      expect(broker.publishChannel()).toBe(before);
    } finally {
      await own.close();
    }
  });

  it('remembers a bounded number of lost publishes for the relay, the newest, each handed out once', async () => {
    // A broker nobody listens on: every publish fails at once, as while the cluster is down.
    const nowhere = new BrokerConnection({ urls: ['amqp://u:p@127.0.0.1:1'], logger: createLogger({ logLevel: 'silent' }, 'test') });
    try {
      const publisher = new Publisher(nowhere, { timeoutMs: 1000 });
      const ids: string[] = [];
      for (let i = 0; i < 1500; i++) {
        const m = message();
        ids.push(m.id);
        expect(await outcome(publisher.publish('test.lost', m))).toBe('refused');
      }
      const first = publisher.takeLost(60_000, 600);
      const second = publisher.takeLost(60_000, 600);
      expect([...first, ...second]).toEqual(ids.slice(500));
      expect(publisher.takeLost(60_000, 600)).toEqual([]);
    } finally {
      await nowhere.close();
    }
  });
});
