/**
 * The stream's seam between replay and live, against an in-memory room whose reads the test
 * holds open: commits land during a read, notifications come in bursts, the client is slow or
 * leaves, a read fails. What the client receives must be the room's events, once each, in order.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RoomEvent } from '../../../shared/protocol/events';
import { EventStream, type StreamStop } from '../../src/events/event-stream';
import type { SseSink } from '../../src/events/sse-response';
import type { StreamItem, StreamSource } from '../../src/events/stream-sources';

const event = (seq: number, type: RoomEvent['type'] = 'message.created', userId = 'u-1'): RoomEvent =>
  type === 'message.created'
    ? ({ id: `e${seq}`, type, roomId: 'r', seq, position: `${seq}.0`, createdAt: '', data: { message: {} } } as RoomEvent)
    : { id: `e${seq}`, type, roomId: 'r', seq: null, position: `${seq}.0`, createdAt: '', data: { userId, role: 'learner' } };

/** A room in memory: `commit` appends and notifies at once, as NOTIFY at commit does. */
class MemoryRoom implements StreamSource {
  readonly kind = 'room';
  readonly log: RoomEvent[] = [];
  readonly calls: string[] = [];
  reads = 0;
  /** While set, each read waits for the test to call `release`, then reads what is committed by then. */
  hold = false;
  failNext = false;
  private position = 0;
  private readonly wakers = new Set<() => void>();
  private waiting: (() => void)[] = [];

  constructor(private readonly readerId = 'u-1') {}

  get id(): string {
    return this.position === 0 ? '' : `${this.position}.0`;
  }

  commit(...events: RoomEvent[]): void {
    this.log.push(...events);
    for (const w of this.wakers) w();
  }

  release(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const r of w) r();
  }

  get following(): number {
    return this.wakers.size;
  }

  async next(limit: number): Promise<{ items: StreamItem[]; hasMore: boolean }> {
    this.calls.push('next');
    this.reads++;
    if (this.hold) await new Promise<void>((r) => this.waiting.push(r));
    if (this.failNext) {
      this.failNext = false;
      throw new Error('postgres is down');
    }
    const after = this.log.filter((e) => Number(e.position.split('.')[0]) > this.position);
    const page = after.slice(0, limit);
    const last = page.at(-1);
    if (last) this.position = Number(last.position.split('.')[0]);
    return { items: page.map((e) => ({ id: e.position, event: e })), hasMore: after.length > limit };
  }

  follow(wake: () => void): () => void {
    this.calls.push('follow');
    this.wakers.add(wake);
    return () => this.wakers.delete(wake);
  }

  endsWith(e: RoomEvent): 'membership_ended' | null {
    return e.type === 'member.left' && e.data.userId === this.readerId ? 'membership_ended' : null;
  }
}

/** What the client would parse out of the response. */
class RecordingSink implements SseSink {
  readonly frames: { type: string; data: unknown; id?: string }[] = [];
  readonly comments: string[] = [];
  closed = false;
  /** When set, every send reports a full buffer until `drain`. */
  slow = false;
  private drainers: (() => void)[] = [];
  private closers: (() => void)[] = [];

  send(type: string, data: unknown, id?: string): boolean {
    if (this.closed) return true;
    this.frames.push(id === undefined ? { type, data } : { type, data, id });
    return !this.slow;
  }

  comment(text: string): void {
    if (!this.closed) this.comments.push(text);
  }

  drained(): Promise<void> {
    return this.slow ? new Promise((r) => this.drainers.push(r)) : Promise.resolve();
  }

  drain(): void {
    this.slow = false;
    const d = this.drainers;
    this.drainers = [];
    for (const r of d) r();
  }

  end(): void {
    this.leave();
  }

  /** The client goes away (or the response ends): 'close' fires once. */
  leave(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.closers) c();
  }

  onClose(fn: () => void): void {
    this.closers.push(fn);
  }

  get events(): string[] {
    return this.frames.filter((f) => f.id !== undefined && f.type !== 'reset').map((f) => f.id as string);
  }
}

function open(options: { room?: MemoryRoom; heartbeatMs?: number; lifetimeMs?: number; pageSize?: number } = {}) {
  const room = options.room ?? new MemoryRoom();
  const out = new RecordingSink();
  const stops: StreamStop[] = [];
  const errors: unknown[] = [];
  const stream = new EventStream({
    source: room,
    out,
    heartbeatMs: options.heartbeatMs ?? 15_000,
    lifetimeMs: options.lifetimeMs ?? 1_800_000,
    pageSize: options.pageSize ?? 2,
    retryReadMs: 1000,
    onStop: (why) => stops.push(why),
    onError: (err) => errors.push(err),
  });
  return { room, out, stream, stops, errors };
}

const settle = (ms = 0): Promise<void> => vi.advanceTimersByTimeAsync(ms).then(() => undefined);
const seqs = (n: number, from = 1): RoomEvent[] => Array.from({ length: n }, (_, i) => event(from + i));

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('the seam between replay and live', () => {
  it('follows the room before its first read', async () => {
    const { room, stream } = open();
    stream.start({ requested: null, reset: null });
    await settle();
    expect(room.calls.slice(0, 2)).toEqual(['follow', 'next']);
  });

  it('delivers events committed during the replay exactly once, in order', async () => {
    const room = new MemoryRoom();
    room.log.push(...seqs(5));
    room.hold = true;
    const { out, stream } = open({ room });
    stream.start({ requested: null, reset: null });
    await settle();
    // A commit while the first replay page is being read, two more between its pages.
    room.commit(event(6));
    room.release();
    await settle();
    room.commit(event(7), event(8));
    room.hold = false;
    room.release();
    await settle();
    expect(stream.state).toBe('live');
    room.commit(event(9));
    await settle();
    expect(out.events).toEqual(['1.0', '2.0', '3.0', '4.0', '5.0', '6.0', '7.0', '8.0', '9.0']);
  });

  it('makes one more read for any number of notifications during a read, never two reads at once', async () => {
    const room = new MemoryRoom();
    room.hold = true;
    const { out, stream } = open({ room });
    stream.start({ requested: null, reset: null });
    await settle();
    expect(room.reads).toBe(1);
    for (let i = 1; i <= 20; i++) room.commit(event(i));
    expect(room.reads).toBe(1);
    room.hold = false;
    room.release();
    await settle();
    // Ten pages of two (the held read is the first), then one read for the whole burst.
    expect(out.events).toHaveLength(20);
    expect(room.reads).toBe(11);
    expect(new Set(out.events).size).toBe(20);
  });

  it('starts with the resume event (after a reset when there is one)', async () => {
    const { out, stream } = open();
    stream.start({ requested: '99.0', reset: { reason: 'beyond_room', rooms: ['r'], id: '0.0' } });
    await settle();
    expect(out.frames.slice(0, 2)).toEqual([
      { type: 'reset', data: { reason: 'beyond_room', rooms: ['r'] }, id: '0.0' },
      { type: 'resume', data: { stream: 'room', after: '', requested: '99.0' } },
    ]);
  });
});

describe('keeping alive and ending', () => {
  it('writes a ping every heartbeat and ends at its lifetime, telling the client to resume', async () => {
    const { room, out, stream, stops } = open({ heartbeatMs: 15_000, lifetimeMs: 50_000 });
    stream.start({ requested: null, reset: null });
    await settle(46_000);
    expect(out.comments).toEqual(['ping', 'ping', 'ping']);
    expect(out.closed).toBe(false);
    await settle(4000);
    expect(out.frames.at(-1)).toEqual({ type: 'end', data: { reason: 'lifetime', resume: true } });
    expect(out.closed).toBe(true);
    expect(stops).toEqual(['lifetime']);
    expect(room.following).toBe(0);
    await settle(60_000);
    expect(out.comments).toHaveLength(3);
  });

  it('ends after delivering the reader’s own member.left', async () => {
    const { room, out, stream, stops } = open();
    stream.start({ requested: null, reset: null });
    await settle();
    room.commit(event(1), event(2, 'member.left', 'u-2'), event(3, 'member.left', 'u-1'), event(4));
    await settle();
    expect(out.events).toEqual(['1.0', '2.0', '3.0']);
    expect(out.frames.at(-1)).toEqual({ type: 'end', data: { reason: 'membership_ended', resume: false } });
    expect(stops).toEqual(['membership_ended']);
  });

  it('stops reading and following when the client leaves', async () => {
    const { room, out, stream, stops } = open();
    stream.start({ requested: null, reset: null });
    await settle();
    out.leave();
    room.commit(event(1));
    await settle(60_000);
    expect(stops).toEqual(['client_closed']);
    expect(room.following).toBe(0);
    expect(room.reads).toBe(1);
    expect(out.frames.map((f) => f.type)).toEqual(['resume']);
  });

  it('ends with a reason on request (a revoked session) and stops only once', async () => {
    const { out, stream, stops } = open();
    stream.start({ requested: null, reset: null });
    stream.end('session_ended');
    stream.end('shutdown');
    await settle();
    expect(out.frames.filter((f) => f.type === 'end')).toEqual([{ type: 'end', data: { reason: 'session_ended', resume: false } }]);
    expect(stops).toEqual(['session_ended']);
  });
});

describe('slow clients and failures', () => {
  it('waits for a slow client to drain before reading on', async () => {
    const room = new MemoryRoom();
    room.log.push(...seqs(6));
    const { out, stream } = open({ room, pageSize: 2 });
    out.slow = true;
    stream.start({ requested: null, reset: null });
    await settle(1000);
    expect(out.events).toEqual(['1.0']);
    expect(room.reads).toBe(1);
    out.drain();
    await settle();
    expect(out.events).toEqual(['1.0', '2.0', '3.0', '4.0', '5.0', '6.0']);
  });

  it('retries a failed read from the same position, losing and repeating nothing', async () => {
    const room = new MemoryRoom();
    room.log.push(...seqs(2));
    const { out, stream, errors } = open({ room });
    stream.start({ requested: null, reset: null });
    await settle();
    room.failNext = true;
    room.commit(event(3));
    await settle();
    expect(errors).toHaveLength(1);
    expect(out.events).toEqual(['1.0', '2.0']);
    await settle(1000);
    expect(out.events).toEqual(['1.0', '2.0', '3.0']);
  });
});
