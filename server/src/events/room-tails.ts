/**
 * One read of a room per notification for all the streams that follow it on this app server,
 * instead of one read per stream: a thousand learners following a busy room would otherwise
 * make a thousand queries of every message, and starve the send path of connections.
 *
 * A room's tail keeps, in memory, every event of the room (an instructor's read: all of them,
 * with their positions) from a position `from` up to `head`, the room's head when the tail last
 * read. It follows the room before its first read and reads again after `head` at each
 * notification, never two reads at once (the same seam as a stream's: event-stream.ts); only
 * then does it wake its streams. A stream whose position lies inside the tail takes what comes
 * after it from there (`readerView`: exactly what its own read would return); one behind the
 * tail (still replaying, or too slow to keep up) reads Postgres itself, as without a tail.
 */
import { parsePosition, type RoomPosition } from '../../../shared/protocol/events';
import type { Logger } from '../logger';
import { readerView, type EventStore, type Reader, type RoomEventsPage } from './event-store';
import type { RoomEventListener } from './room-event-listener';

/** Events a tail keeps by default; older ones go, and streams behind them read Postgres. */
const MAX_EVENTS = 1000;
const PAGE = 500;
const RETRY_MS = 1000;
/** An instructor's view of the room: every event. The id is never anyone's. */
const EVERYTHING: Reader = { id: '00000000-0000-0000-0000-000000000000', role: 'instructor' };

type Stored = RoomEventsPage['events'][number];

interface TailDeps {
  store: EventStore;
  listener: RoomEventListener;
  logger: Logger;
  /** Events each tail keeps (default 1000). */
  maxEvents?: number;
}

const covers = (from: RoomPosition, p: RoomPosition): boolean => p.seq >= from.seq && p.n >= from.n;

class RoomTail {
  private from: RoomPosition | null = null;
  private head: RoomPosition | null = null;
  private events: Stored[] = [];
  /** Each event's position, parsed: they only grow along the list (both numbers). */
  private positions: RoomPosition[] = [];
  private readonly followers = new Set<() => void>();
  private readonly unlisten: () => void;
  private reading = false;
  private again = false;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly roomId: string,
    private readonly deps: TailDeps,
  ) {
    this.unlisten = deps.listener.follow(roomId, () => this.wake());
    this.wake();
  }

  get size(): number {
    return this.followers.size;
  }

  follow(fn: () => void): void {
    this.followers.add(fn);
  }

  /** Returns true when nobody follows any more. */
  unfollow(fn: () => void): boolean {
    this.followers.delete(fn);
    return this.followers.size === 0;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.unlisten();
  }

  /** What `reader` gets after `after` (up to `limit`), or null when `after` lies before this tail. */
  after(reader: Reader, after: RoomPosition, limit: number): RoomEventsPage | null {
    if (!this.from || !this.head || !covers(this.from, after)) return null;
    return readerView(reader, after, this.events.slice(this.firstNotBehind(after)), this.head, limit);
  }

  /**
   * Every event before the index returned lies behind `after` (its position is at or before
   * `after` in both numbers); a live stream is near the end, so it looks at its new events only.
   */
  private firstNotBehind(after: RoomPosition): number {
    let lo = 0;
    let hi = this.positions.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const p = this.positions[mid] as RoomPosition;
      if (p.seq <= after.seq && p.n <= after.n) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private wake(): void {
    if (this.closed) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    void this.pump();
  }

  private async pump(): Promise<void> {
    this.reading = true;
    try {
      do {
        this.again = false;
        await this.read();
        if (this.closed) return;
        for (const fn of [...this.followers]) fn();
      } while (this.again);
    } catch (err) {
      this.deps.logger.warn({ roomId: this.roomId, err: (err as Error).message }, 'room tail read failed; retrying');
      if (!this.closed) this.retry = setTimeout(() => this.wake(), RETRY_MS);
    } finally {
      this.reading = false;
    }
  }

  private async read(): Promise<void> {
    if (!this.head) {
      // The first read: from the room's head as it is now (the tail followed before).
      const head = (await this.deps.store.heads([this.roomId])).get(this.roomId) ?? { seq: 0, n: 0 };
      this.from = head;
      this.head = head;
      return;
    }
    for (;;) {
      const page = await this.deps.store.roomEvents(this.roomId, EVERYTHING, this.head, PAGE);
      // One synchronous step: a stream never sees events without the head they go with.
      this.events.push(...page.events);
      this.positions.push(...page.events.map((e) => parsePosition(e.position) as RoomPosition));
      this.head = page.next;
      const over = this.events.length - (this.deps.maxEvents ?? MAX_EVENTS);
      if (over > 0) {
        this.events.splice(0, over);
        // Everything up to the last dropped event is gone: `from` moves to its position.
        this.from = this.positions.splice(0, over).at(-1) as RoomPosition;
      }
      if (!page.hasMore) return;
    }
  }
}

/** The tails of the rooms followed on this app server. */
export class RoomTails {
  private readonly tails = new Map<string, RoomTail>();

  constructor(private readonly deps: TailDeps) {}

  /** Calls `wake` after each read of the room that may have brought something new; returns the unfollow. */
  follow(roomId: string, wake: () => void): () => void {
    let tail = this.tails.get(roomId);
    if (!tail) this.tails.set(roomId, (tail = new RoomTail(roomId, this.deps)));
    tail.follow(wake);
    const t = tail;
    return () => {
      if (t.unfollow(wake) && this.tails.get(roomId) === t) {
        this.tails.delete(roomId);
        t.close();
      }
    };
  }

  /** The room's events for `reader` after `after` from memory, or null: read Postgres. */
  after(roomId: string, reader: Reader, after: RoomPosition, limit: number): RoomEventsPage | null {
    return this.tails.get(roomId)?.after(reader, after, limit) ?? null;
  }

  /** Rooms with a tail: for tests and operators. */
  get rooms(): number {
    return this.tails.size;
  }

  close(): void {
    for (const t of this.tails.values()) t.close();
    this.tails.clear();
  }
}
