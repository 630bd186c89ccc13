/**
 * Hears, from Postgres, that a room has new events (migration 008: NOTIFY at commit), on one
 * dedicated connection per app server, and tells whoever follows that room. Followers always read
 * the events themselves from Postgres after their own position: a notification only says "look
 * now", so one lost while the connection was down costs latency, not events. After a reconnect
 * every follower is told to look, for what may have committed meanwhile. A listening connection
 * only receives, so a database host cut off would leave it waiting forever: it is probed, and
 * replaced when the probe gets no answer.
 */
import pg from 'pg';
import type { Logger } from '../logger';

const CHANNEL = 'roomcast_room_events';
const MAX_BACKOFF_MS = 5000;
const PROBE_EVERY_MS = 30_000;
/** pg reads a query's own `query_timeout` (client.js), though its QueryConfig type leaves it out. */
const PROBE = { text: 'SELECT 1', query_timeout: 10_000 };

export type RoomListener = () => void;

export class RoomEventListener {
  private client: pg.Client | null = null;
  private readonly followers = new Map<string, Set<RoomListener>>();
  private readonly everything = new Set<(roomId: string) => void>();
  private closed = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | null = null;
  private probe: NodeJS.Timeout | null = null;

  constructor(
    private readonly url: string,
    private readonly logger: Logger,
  ) {}

  /** Connects (and keeps reconnecting); resolves once the first LISTEN is in place or failed. */
  async start(): Promise<void> {
    this.probe = setInterval(() => void this.check(), PROBE_EVERY_MS);
    this.probe.unref();
    await this.connect();
  }

  /** A `SELECT 1` on the listening connection; no answer in time, and it is replaced. */
  private async check(): Promise<void> {
    const client = this.client;
    if (!client) return;
    try {
      await client.query(PROBE);
    } catch (err) {
      if (this.client !== client) return;
      this.logger.warn({ err: (err as Error).message }, 'event listener connection does not answer; reconnecting');
      this.client = null;
      void client.end().catch(() => undefined);
      this.retry();
    }
  }

  /** Calls `fn` whenever `roomId` may have new events; returns the unfollow. */
  follow(roomId: string, fn: RoomListener): () => void {
    let set = this.followers.get(roomId);
    if (!set) this.followers.set(roomId, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.followers.delete(roomId);
    };
  }

  /** Calls `fn` with the room of every notification; returns the unfollow. */
  followAll(fn: (roomId: string) => void): () => void {
    this.everything.add(fn);
    return () => this.everything.delete(fn);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.probe) clearInterval(this.probe);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  private tell(roomId: string): void {
    for (const fn of this.followers.get(roomId) ?? []) fn();
    for (const fn of this.everything) fn(roomId);
  }

  private tellEveryone(): void {
    for (const roomId of [...this.followers.keys()]) this.tell(roomId);
    for (const fn of this.everything) fn('*');
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.url, application_name: 'roomcast-listen' });
    client.on('notification', (n) => {
      if (n.channel === CHANNEL && n.payload) this.tell(n.payload);
    });
    client.on('error', (err) => this.logger.warn({ err: err.message }, 'event listener connection error'));
    client.on('end', () => {
      if (this.client !== client) return;
      this.client = null;
      this.retry();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'event listener could not listen; retrying');
      await client.end().catch(() => undefined);
      this.retry();
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    if (this.attempt > 0) this.tellEveryone();
    this.attempt = 0;
  }

  private retry(): void {
    if (this.closed || this.timer) return;
    this.attempt++;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, Math.min(100 * 2 ** this.attempt, MAX_BACKOFF_MS));
  }
}
