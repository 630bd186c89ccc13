import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ROOM_EXCHANGE } from '../../shared/protocol/routing';
import type { BrokerConnection } from '../src/broker/broker-connection';
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

  const outcome = (broker: BrokerConnection, key: string): Promise<string> =>
    broker.publish(key, Buffer.from('{}'), { messageId: randomUUID() }).then(
      () => 'confirmed',
      () => 'refused',
    );

  it('is replaced when it refuses every publish', async () => {
    const broker = h.server.services.broker;
    const before = broker.publishChannel();
    expect(await outcome(broker, refusedKey)).toBe('refused');
    await waitFor(() => broker.publishChannel() !== before, 'a fresh publish channel');
    // The fresh channel works: a key nothing refuses is confirmed on it.
    expect(await outcome(broker, `test.free.${randomUUID()}`)).toBe('confirmed');
  });

  it('is kept when it confirms publishes sent after the refused one', async () => {
    // A server of its own: the test before replaced the shared server's channel less than a
    // second ago, and a replacement that soon is skipped without looking at the channel.
    const own = await startHarness({ relay: false });
    try {
      const broker = own.server.services.broker;
      // The check is the connection's own business; the test only waits for its verdict.
      const checks = vi.spyOn(broker as unknown as { replaceIfStuck: () => Promise<void> }, 'replaceIfStuck');
      const before = broker.publishChannel();
      const results = await Promise.all([
        outcome(broker, refusedKey),
        outcome(broker, `test.free.${randomUUID()}`),
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
});
