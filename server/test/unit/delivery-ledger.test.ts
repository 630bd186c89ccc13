import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RoomMessage } from '../../../shared/protocol/messages';
import { DeliveryLedger, type DeliveryOutcome } from '../../src/delivery/delivery-ledger';
import { createLogger } from '../../src/logger';
import { createMetrics, type Metrics } from '../../src/metrics';
import { exponentialBackoff } from '../../src/work/retry-schedule';
import { FakeJobs } from './fake-jobs';

const REQUEST_LEASE_MS = 300;
const TIMEOUT_MS = 300;
const MAX_HOLD_MS = 15_000;

/** The broker's side of each publish, answered when the test says. */
class FakeBroker {
  readonly sent: { id: string; confirm(): void; lose(): void }[] = [];
  publish = (_key: string, _content: Buffer, props: { messageId?: string }): Promise<void> =>
    new Promise((resolve, reject) => {
      this.sent.push({ id: props.messageId ?? '', confirm: resolve, lose: () => reject(new Error('channel closed')) });
    });
}

const message = (id: string): RoomMessage => ({
  id,
  roomId: '5b0c3c2e-0000-4000-8000-000000000001',
  seq: 1,
  senderId: '5b0c3c2e-0000-4000-8000-000000000002',
  audience: 'everyone',
  recipientId: null,
  kind: 'chat',
  body: { text: id },
  clientMsgId: id,
  createdAt: new Date(0).toISOString(),
  broadcastSeq: 1,
});

const counter = async (metrics: Metrics, name: 'messagesPublished' | 'publishFailures', path: string): Promise<number> =>
  (await metrics[name].get()).values.find((v) => v.labels.path === path)?.value ?? 0;

describe('DeliveryLedger', () => {
  let broker: FakeBroker;
  let jobs: FakeJobs;
  let metrics: Metrics;
  let ledger: DeliveryLedger;

  beforeEach(() => {
    vi.useFakeTimers();
    broker = new FakeBroker();
    jobs = new FakeJobs();
    metrics = createMetrics(async () => 0);
    ledger = new DeliveryLedger({
      broker,
      jobs,
      schedule: exponentialBackoff({ firstMs: 50, maxMs: 10_000, jitter: 0 }),
      timeoutMs: TIMEOUT_MS,
      maxHoldMs: MAX_HOLD_MS,
      renewEveryMs: REQUEST_LEASE_MS / 3,
      metrics,
      logger: createLogger({ logLevel: 'silent' }, 'test'),
    });
  });
  afterEach(() => vi.useRealTimers());

  /** A send request's delivery of job `id`, its job leased to it as roomcast_send leases it. */
  function send(id: number): { outcome: DeliveryOutcome | null } {
    jobs.add(id, REQUEST_LEASE_MS);
    const t: { outcome: DeliveryOutcome | null } = { outcome: null };
    void ledger.deliver({ id, attempts: 1 }, message(`m${id}`), 'request', REQUEST_LEASE_MS).then((o) => (t.outcome = o));
    return t;
  }

  it('records a confirm as done, in one batch for many', async () => {
    const sends = [1, 2, 3].map(send);
    for (const s of broker.sent) s.confirm();
    await vi.advanceTimersByTimeAsync(25);
    expect(sends.map((s) => s.outcome)).toEqual(['confirmed', 'confirmed', 'confirmed']);
    expect(jobs.calls.filter((c) => c.op === 'complete')).toEqual([{ op: 'complete', ids: [1, 2, 3] }]);
    expect([1, 2, 3].map((id) => jobs.rows.get(id)!.state)).toEqual(['done', 'done', 'done']);
    expect(await counter(metrics, 'messagesPublished', 'request')).toBe(3);
  });

  it('holds the lease of a confirmed job until its record is written, however slow the write (a relay pass in between finds nothing)', async () => {
    send(1);
    let open!: () => void;
    jobs.gates.complete = new Promise((r) => (open = r));
    await vi.advanceTimersByTimeAsync(REQUEST_LEASE_MS - 50);
    broker.sent[0]!.confirm();
    // The record is on its way but Postgres is slow; relay passes come and go meanwhile.
    for (let t = 0; t < 12_000; t += 100) {
      await vi.advanceTimersByTimeAsync(100);
      expect(jobs.claimable(1)).toBe(false);
      expect(ledger.holds(1)).toBe(true);
    }
    open();
    await vi.advanceTimersByTimeAsync(0);
    expect(jobs.rows.get(1)!.state).toBe('done');
    expect(ledger.holds(1)).toBe(false);
    expect(jobs.ops('retry')).toEqual([]);
  });

  it('keeps a publish whose confirm comes late (a resource alarm) leased, and records the late confirm without a second publish', async () => {
    const s = send(1);
    await vi.advanceTimersByTimeAsync(TIMEOUT_MS + 1);
    expect(s.outcome).toBe('unconfirmed');
    // The alarm lasts ten seconds: the job stays this process's all along.
    for (let t = 0; t < 10_000; t += 100) {
      await vi.advanceTimersByTimeAsync(100);
      expect(jobs.claimable(1)).toBe(false);
    }
    broker.sent[0]!.confirm();
    await vi.advanceTimersByTimeAsync(25);
    expect(jobs.rows.get(1)!.state).toBe('done');
    expect(broker.sent).toHaveLength(1);
    expect(jobs.ops('retry')).toEqual([]);
    expect(await counter(metrics, 'messagesPublished', 'late_confirm')).toBe(1);
    expect(await counter(metrics, 'publishFailures', 'request')).toBe(1);
  });

  it('makes a lost publish due again at once, not after its lease', async () => {
    const s = send(1);
    broker.sent[0]!.lose();
    await vi.advanceTimersByTimeAsync(25);
    expect(s.outcome).toBe('lost');
    expect(ledger.holds(1)).toBe(false);
    expect(jobs.rows.get(1)!.lastError).toBe('channel closed');
    // Due after the schedule's first delay (50 ms), long before the lease would have ended.
    await vi.advanceTimersByTimeAsync(50);
    expect(jobs.claimable(1)).toBe(true);
  });

  it('leaves a publish unconfirmed past the hold limit to the relays, and still records a confirm that comes after', async () => {
    send(1);
    await vi.advanceTimersByTimeAsync(MAX_HOLD_MS + 6000);
    expect(ledger.holds(1)).toBe(false);
    expect(jobs.claimable(1)).toBe(true);
    broker.sent[0]!.confirm();
    await vi.advanceTimersByTimeAsync(25);
    expect(jobs.rows.get(1)!.state).toBe('done');
  });

  it('settles at shutdown: waits out open deliveries and writes what is known', async () => {
    send(1);
    send(2);
    broker.sent[0]!.confirm();
    const settled = ledger.settled();
    await vi.advanceTimersByTimeAsync(TIMEOUT_MS + 1);
    await settled;
    expect(jobs.ops('complete')).toEqual([1]);
  });
});
