/**
 * Where a stream reads from: one room (ids are room positions) or all of a user's rooms (ids are
 * feed cursors). A source holds the stream's position; `next` reads after it, from Postgres,
 * and moves past what it returned, so every read starts exactly where the last one stopped.
 */
import { formatPosition, parsePosition, type RoomEvent, type RoomPosition, type StreamKind } from '../../../shared/protocol/events';
import { encodeCursor, type EventFeed, type FeedCursor } from './event-feed';
import type { EventStore, Reader } from './event-store';
import type { RoomEventListener } from './room-event-listener';
import type { RoomTails } from './room-tails';

export interface StreamItem {
  /** The SSE `id:`: resuming from it gives what comes after this event. */
  id: string;
  event: RoomEvent;
}

export interface StreamSource {
  readonly kind: StreamKind;
  /** The id of the current position, '' for the very beginning. */
  readonly id: string;
  /** Up to `limit` events after the current position, moving past them. */
  next(limit: number): Promise<{ items: StreamItem[]; hasMore: boolean }>;
  /** Calls `wake` whenever there may be something new; returns the unfollow. */
  follow(wake: () => void): () => void;
  /** Why delivering `event` ends this stream (the reader's own membership ended), or null. */
  endsWith(event: RoomEvent): 'membership_ended' | null;
}

export class RoomSource implements StreamSource {
  readonly kind = 'room';

  constructor(
    private readonly deps: { store: EventStore; tails: RoomTails },
    private readonly roomId: string,
    private readonly reader: Reader,
    private position: RoomPosition,
  ) {}

  get id(): string {
    return this.position.seq === 0 && this.position.n === 0 ? '' : formatPosition(this.position);
  }

  async next(limit: number): Promise<{ items: StreamItem[]; hasMore: boolean }> {
    // From the room's tail when it holds this position (live streams), else from Postgres.
    const page = this.deps.tails.after(this.roomId, this.reader, this.position, limit) ?? (await this.deps.store.roomEvents(this.roomId, this.reader, this.position, limit));
    this.position = page.next;
    return { items: page.events.map((event) => ({ id: event.position, event })), hasMore: page.hasMore };
  }

  follow(wake: () => void): () => void {
    return this.deps.tails.follow(this.roomId, wake);
  }

  endsWith(event: RoomEvent): 'membership_ended' | null {
    return event.type === 'member.left' && event.data.userId === this.reader.id ? 'membership_ended' : null;
  }
}

/**
 * How often, at most, an all-rooms stream asks Postgres whether a notification from a room it
 * does not read was a room the user just joined. Notifications name only the room, so without
 * this a busy server would make every all-rooms stream read the feed for every room's message.
 */
const NEW_ROOM_CHECK_MS = 1000;

export class FeedSource implements StreamSource {
  readonly kind = 'all';
  /** The rooms the feed read last time: their notifications wake the stream at once. */
  private rooms: Set<string>;

  constructor(
    private readonly deps: { feed: EventFeed; store: EventStore; listener: RoomEventListener },
    private readonly userId: string,
    private cursor: FeedCursor,
    rooms: Iterable<string>,
  ) {
    this.rooms = new Set(rooms);
  }

  get id(): string {
    return this.cursor.size === 0 ? '' : encodeCursor(this.cursor);
  }

  async next(limit: number): Promise<{ items: StreamItem[]; hasMore: boolean }> {
    const page = await this.deps.feed.after(this.userId, this.cursor, limit);
    // Each event's id is the cursor right after it: the previous cursor with its room moved on.
    const running: FeedCursor = new Map(this.cursor);
    const items = page.events.map((event) => {
      running.set(event.roomId, parsePosition(event.position) as RoomPosition);
      return { id: encodeCursor(running), event };
    });
    this.cursor = page.next;
    this.rooms = new Set(page.next.keys());
    return { items, hasMore: page.hasMore };
  }

  follow(wake: () => void): () => void {
    let timer: NodeJS.Timeout | undefined;
    let lastCheck = 0;
    let stopped = false;
    const checkForNewRooms = async (): Promise<void> => {
      timer = undefined;
      lastCheck = Date.now();
      try {
        const rooms = await this.deps.store.roomsOf(this.userId);
        if (!stopped && rooms.some((r) => !this.rooms.has(r.roomId))) wake();
      } catch {
        // The next notification checks again; the listener's reconnect wakes every stream anyway.
      }
    };
    const unfollow = this.deps.listener.followAll((roomId) => {
      // '*': the listener reconnected and may have missed notifications of any room.
      if (roomId === '*' || this.rooms.has(roomId)) {
        wake();
        return;
      }
      timer ??= setTimeout(() => void checkForNewRooms(), Math.max(0, lastCheck + NEW_ROOM_CHECK_MS - Date.now()));
    });
    return () => {
      stopped = true;
      clearTimeout(timer);
      unfollow();
    };
  }

  endsWith(): null {
    // A room the user left drops out of the feed (its member.left included): nothing to end.
    return null;
  }
}
