/**
 * Every event stream open on this app server: their sessions, their slots, their end.
 *
 * Revocation: logout and a password change delete the session from Redis (SessionStore); no
 * message is published when they do. So the hub re-checks instead of listening: every
 * CHECK_MS (2 s) one pipelined EXISTS per distinct session of the open streams, and every
 * stream whose session is gone ends with `end {reason: "session_ended"}`. That is at most 2 s
 * after a logout, and far more often than each heartbeat; it costs one Redis round trip every
 * 2 s for all the streams of the server together, however many. (Pub/sub would need every path
 * that ends sessions, on every server, to publish; Redis keyspace notifications would need the
 * Redis server configured for them.) A session that simply expires ends its streams the same way.
 */
import { Counter, Gauge } from 'prom-client';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { SessionStore } from '../sessions/session-store';
import type { EventStream, StreamStop } from './event-stream';
import { SLOT_LEASE_MS, type StreamSlots } from './stream-slots';

const CHECK_MS = 2000;

export interface OpenStream {
  stream: EventStream;
  userId: string;
  sessionRef: string;
  /** Its slot in StreamSlots. */
  streamId: string;
}

export class StreamHub {
  private readonly open = new Set<OpenStream>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private lastRenew = Date.now();
  private readonly gauge: Gauge;
  private readonly stops: Counter<'reason'>;

  constructor(
    private readonly deps: { sessions: SessionStore; slots: StreamSlots; metrics: Metrics; logger: Logger },
    private readonly checkMs = CHECK_MS,
  ) {
    const registers = [deps.metrics.registry];
    this.gauge = new Gauge({ name: 'roomcast_event_streams_open', help: 'Event streams (SSE) open on this app server.', registers });
    this.stops = new Counter({
      name: 'roomcast_event_streams_ended_total',
      help: 'Event streams that ended, by reason: lifetime, session_ended, membership_ended, shutdown, client_closed.',
      labelNames: ['reason'],
      registers,
    });
  }

  get size(): number {
    return this.open.size;
  }

  start(): void {
    this.timer ??= setInterval(() => void this.check(), this.checkMs);
  }

  add(entry: OpenStream): void {
    this.open.add(entry);
    this.gauge.set(this.open.size);
  }

  /** The stream stopped: forget it and give its slot back. */
  stopped(entry: OpenStream, why: StreamStop): void {
    if (!this.open.delete(entry)) return;
    this.gauge.set(this.open.size);
    this.stops.inc({ reason: why });
    this.deps.slots.release(entry.userId, entry.streamId).catch((err: unknown) =>
      this.deps.logger.warn({ err: (err as Error).message }, 'could not free an event stream slot; it lapses with its lease'),
    );
  }

  /** Ends every stream (`end {reason: "shutdown"}`, so clients resume elsewhere at once). */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const entry of [...this.open]) entry.stream.end('shutdown');
  }

  private async check(): Promise<void> {
    if (this.checking || this.open.size === 0) return;
    this.checking = true;
    const entries = [...this.open];
    try {
      const refs = [...new Set(entries.map((e) => e.sessionRef))];
      const alive = await this.deps.sessions.alive(refs);
      const gone = new Set(refs.filter((_r, i) => !alive[i]));
      for (const e of entries) if (gone.has(e.sessionRef)) e.stream.end('session_ended');
      if (Date.now() - this.lastRenew >= SLOT_LEASE_MS / 4) {
        this.lastRenew = Date.now();
        await this.deps.slots.renew([...this.open].map(({ userId, streamId }) => ({ userId, streamId })));
      }
    } catch (err) {
      // Redis unreachable: the streams go on (they read Postgres); the next pass checks again.
      this.deps.logger.warn({ err: (err as Error).message }, 'could not check the sessions of event streams');
    } finally {
      this.checking = false;
    }
  }
}
