/**
 * The feed over all of a reader's rooms: one cursor holds a position per room, so an event that
 * commits late in one room is never skipped because another room moved on (a single global
 * serial would skip it: transactions commit out of id order). The cursor is opaque to clients
 * (base64url of JSON) and any age works, since every position is a (seq, n) in Postgres.
 */
import { formatPosition, parsePosition, type RoomEvent, type RoomPosition } from '../../../shared/protocol/events';
import { isUuid } from '../../../shared/protocol/routing';
import { AppError } from '../errors';
import { isBeyond, type EventStore } from './event-store';

export type FeedCursor = Map<string, RoomPosition>;

const START: RoomPosition = { seq: 0, n: 0 };
/** A cursor names at most this many rooms (one per room the reader is in). */
const MAX_ROOMS = 1000;

export function encodeCursor(c: FeedCursor): string {
  return Buffer.from(JSON.stringify(Object.fromEntries([...c].map(([room, p]) => [room, formatPosition(p)])))).toString('base64url');
}

/** The cursor in `s`, or a 400 `invalid_cursor` saying what is wrong; empty means from the beginning. */
export function decodeCursor(s: string | undefined): FeedCursor {
  const cursor: FeedCursor = new Map();
  if (s === undefined || s === '') return cursor;
  const bad = (why: string): AppError => new AppError(400, 'invalid_cursor', `the cursor is not one this API gave out (${why}); start without one to read from the beginning`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  } catch {
    throw bad('not base64url JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw bad('not an object');
  const entries = Object.entries(parsed as Record<string, unknown>);
  if (entries.length > MAX_ROOMS) throw bad('too many rooms');
  for (const [room, pos] of entries) {
    const p = typeof pos === 'string' ? parsePosition(pos) : null;
    if (!isUuid(room) || !p) throw bad(`bad entry for ${room.slice(0, 40)}`);
    cursor.set(room, p);
  }
  return cursor;
}

export class EventFeed {
  constructor(private readonly store: EventStore) {}

  /**
   * The reader's rooms, and those of them the cursor holds a position beyond (a restored
   * database). Other rooms in the cursor are not looked at: the feed ignores them, and their
   * heads are none of the reader's business.
   */
  async roomsBeyond(userId: string, cursor: FeedCursor): Promise<{ rooms: Set<string>; beyond: string[] }> {
    const rooms = new Set((await this.store.roomsOf(userId)).map((r) => r.roomId));
    const heads = await this.store.heads([...cursor.keys()].filter((r) => rooms.has(r)));
    return { rooms, beyond: [...heads].filter(([room, head]) => isBeyond(cursor.get(room) as RoomPosition, head)).map(([room]) => room) };
  }

  /**
   * Up to `limit` events of all the reader's rooms after the cursor, oldest first across rooms
   * (in order within each), and the cursor after them. Rooms the reader has left drop out.
   */
  async after(userId: string, cursor: FeedCursor, limit: number): Promise<{ events: RoomEvent[]; next: FeedCursor; hasMore: boolean }> {
    const rooms = await this.store.roomsOf(userId);
    const pages = await Promise.all(
      rooms.map(async ({ roomId, role }) => ({ roomId, page: await this.store.roomEvents(roomId, { id: userId, role }, cursor.get(roomId) ?? START, limit) })),
    );
    // Merge by time, taking each room's events in its own order: a room's list is in commit
    // order, which its `createdAt` (a transaction's start) does not always follow.
    const heads = pages.map((p) => ({ ...p, i: 0 }));
    const events: RoomEvent[] = [];
    while (events.length < limit) {
      let best: (typeof heads)[number] | undefined;
      for (const h of heads) {
        const e = h.page.events[h.i];
        if (e && (!best || e.createdAt < (best.page.events[best.i] as RoomEvent).createdAt)) best = h;
      }
      if (!best) break;
      events.push(best.page.events[best.i] as RoomEvent);
      best.i++;
    }
    const next: FeedCursor = new Map();
    let hasMore = false;
    for (const h of heads) {
      const all = h.i === h.page.events.length;
      if (!all || h.page.hasMore) hasMore = true;
      const last = h.page.events[h.i - 1];
      next.set(h.roomId, all ? h.page.next : last ? (parsePosition(last.position) as RoomPosition) : (cursor.get(h.roomId) ?? START));
    }
    return { events, next, hasMore };
  }
}

