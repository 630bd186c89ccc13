import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BrokerConnection } from '../../src/broker/broker-connection';
import { createLogger } from '../../src/logger';
import { connectTo, FakeChannelModel } from './fake-amqp';

const STUCK_AFTER_MS = 300;

/** What a publish promise has come to so far. */
function track(p: Promise<void>): { state: 'pending' | 'confirmed' | 'refused'; error?: string } {
  const t: { state: 'pending' | 'confirmed' | 'refused'; error?: string } = { state: 'pending' };
  p.then(
    () => (t.state = 'confirmed'),
    (err: Error) => {
      t.state = 'refused';
      t.error = err.message;
    },
  );
  return t;
}

describe('BrokerConnection publish channel', () => {
  let model: FakeChannelModel;
  let broker: BrokerConnection;

  beforeEach(async () => {
    vi.useFakeTimers();
    model = new FakeChannelModel();
    broker = new BrokerConnection({
      urls: ['amqp://fake'],
      logger: createLogger({ logLevel: 'silent' }, 'test'),
      stuckAfterMs: STUCK_AFTER_MS,
      connect: connectTo(model),
    });
    expect(await broker.ready(1000)).toBe(true);
  });
  afterEach(async () => {
    await broker.close();
    vi.useRealTimers();
  });

  it('resolves on the confirm and rejects on a nack', async () => {
    const a = track(broker.publish('k', Buffer.from('a'), {}));
    const b = track(broker.publish('k', Buffer.from('b'), {}));
    model.current.published[0]!.confirm();
    model.current.published[1]!.nack();
    await vi.advanceTimersByTimeAsync(0);
    expect([a.state, b.state]).toEqual(['confirmed', 'refused']);
  });

  it('keeps a silent channel when a resource alarm explains the silence, though the timer ran before the block was read', async () => {
    const first = model.current;
    const p = track(broker.publish('k', Buffer.from('x'), {}));
    // The event loop stalled past the timeout: the timer runs, and only then is the socket read.
    // The broker sent connection.blocked before the fresh channel's open-ok, so it arrives first.
    model.beforeOpenOk = () => model.emit('blocked', 'low on memory');
    await vi.advanceTimersByTimeAsync(STUCK_AFTER_MS + 1);
    expect(broker.publishChannel()).toBe(first);
    expect(p.state).toBe('pending');
    // The alarm clears and the late confirm comes: the publish counts.
    model.emit('unblocked');
    first.published[0]!.confirm();
    await vi.advanceTimersByTimeAsync(0);
    expect(p.state).toBe('confirmed');
    expect(first.published).toHaveLength(1);
  });

  it('replaces a channel that confirms nothing, and fails its unconfirmed publishes at once', async () => {
    const first = model.current;
    const p = track(broker.publish('k', Buffer.from('x'), {}));
    await vi.advanceTimersByTimeAsync(STUCK_AFTER_MS + 1);
    expect(broker.publishChannel()).not.toBe(first);
    expect(p).toEqual({ state: 'refused', error: 'the publish channel stopped confirming and was replaced' });
    // A confirm the stale channel still delivers changes nothing; new publishes use the fresh one.
    first.published[0]!.confirm();
    const q = track(broker.publish('k', Buffer.from('y'), {}));
    model.current.published[0]!.confirm();
    await vi.advanceTimersByTimeAsync(0);
    expect(p.state).toBe('refused');
    expect(q.state).toBe('confirmed');
  });

  it('keeps a busy channel that confirmed something since the publish, however late its own confirm', async () => {
    const first = model.current;
    const slow = track(broker.publish('k', Buffer.from('slow'), {}));
    const quick = track(broker.publish('k', Buffer.from('quick'), {}));
    first.published[1]!.confirm();
    await vi.advanceTimersByTimeAsync(10 * STUCK_AFTER_MS);
    expect(broker.publishChannel()).toBe(first);
    expect([slow.state, quick.state]).toEqual(['pending', 'confirmed']);
  });

  it('replaces a channel that refuses everything', async () => {
    const first = model.current;
    const p = track(broker.publish('k', Buffer.from('x'), {}));
    first.published[0]!.nack();
    await vi.advanceTimersByTimeAsync(0);
    expect(p.state).toBe('refused');
    expect(broker.publishChannel()).not.toBe(first);
  });

  it('refuses at once without a connection', async () => {
    await model.close();
    const p = track(broker.publish('k', Buffer.from('x'), {}));
    await vi.advanceTimersByTimeAsync(0);
    expect(p).toEqual({ state: 'refused', error: 'the message broker is unreachable' });
  });
});
