/**
 * Room events over Server-Sent Events, resumed across every drop: one room's, or all the user's
 * rooms' (docs/events.md, "Stream"; docs/web-client.md).
 *
 * An EventSource reconnects by itself, but with the URL it was opened with, whose ticket is
 * spent; so on any error, and when the server ends the stream, this client closes it, asks
 * for a new ticket and opens a new EventSource after the last event it delivered. It delivers
 * each event once: the server resumes exactly after the id given, and the client also drops
 * any event at or before the last position it delivered in that room (a position only grows).
 *
 * ```ts
 * const events = new EventStreamClient({ api, roomId });
 * events.on('event', (e) => show(e));
 * events.on('reset', (rooms) => forget(rooms)); // a restored server: they come again from the start
 * events.start();
 * ```
 */
import {
  EVENT_TYPES,
  parsePosition,
  type RoomEvent,
  type RoomPosition,
  type StreamEndData,
  type StreamResetData,
} from '../../../shared/protocol/events';
import type { RoomcastApi } from './api';
import { backoffDelay, Waker, type BackoffOptions } from './backoff';
import { Emitter } from './emitter';
import { ApiError, RoomClientError, isFatal } from './errors';

/** What the client needs of an EventSource (the browser's, or the `eventsource` package's in Node). */
export interface EventSourceLike {
  addEventListener(type: string, listener: (event: { data?: unknown; lastEventId?: string }) => void): void;
  close(): void;
}

export type EventSourceConstructor = new (url: string) => EventSourceLike;

/**
 * - `connecting`: getting a ticket and opening the stream;
 * - `live`: the server accepted the stream (replaying what was missed, then live);
 * - `offline`: waiting to retry, or stopped.
 */
export type EventStreamState = 'connecting' | 'live' | 'offline';

export interface EventStreamClientOptions {
  api: RoomcastApi;
  /** One room's stream; omitted: all the user's rooms. */
  roomId?: string;
  /** Start after this id (one this stream gave, e.g. kept across a page reload); default: from the beginning. */
  lastEventId?: string;
  /** Defaults to the global EventSource (browsers); in Node pass the `eventsource` package's. */
  EventSource?: EventSourceConstructor;
  /** Backoff after failures (default 500 ms doubling up to 15 s, with jitter). */
  reconnect?: Partial<BackoffOptions>;
}

export interface EventStreamClientEvents {
  state: [state: EventStreamState, previous: EventStreamState];
  /** An event new to this client, in order within its room. */
  event: [event: RoomEvent];
  /**
   * The server has nothing like what this client held of `rooms` (a database restored from a
   * backup): drop it; their events come again from the beginning.
   */
  reset: [rooms: string[]];
  /** Something went wrong; when `fatal` the client has stopped (log in again, or no longer a member). */
  error: [error: RoomClientError, fatal: boolean];
}

const OPTION_NAMES = new Set(['api', 'roomId', 'lastEventId', 'EventSource', 'reconnect']);

type Outcome = { kind: 'error' } | { kind: 'stopped' } | { kind: 'end'; end: StreamEndData };

const asClientError = (err: unknown): RoomClientError =>
  err instanceof RoomClientError ? err : new RoomClientError('internal', String((err as Error)?.message ?? err), { cause: err });

const parseJson = (data: unknown): unknown => {
  try {
    return typeof data === 'string' ? JSON.parse(data) : null;
  } catch {
    return null;
  }
};

/** A later position of the same room: each event moves seq or n on, and neither ever back. */
const isAfter = (p: RoomPosition, last: RoomPosition | undefined): boolean => !last || p.seq > last.seq || p.n > last.n;

export class EventStreamClient extends Emitter<EventStreamClientEvents> {
  private readonly api: RoomcastApi;
  private readonly roomId: string | undefined;
  private readonly EventSourceImpl: EventSourceConstructor;
  private readonly backoff: BackoffOptions;
  private readonly waker = new Waker();
  private current: EventStreamState = 'offline';
  private started = false;
  private stopped = false;
  private last: string | null;
  /** The last position delivered in each room: what decides a duplicate. */
  private readonly positions = new Map<string, RoomPosition>();
  private closeCurrent: (() => void) | null = null;
  private readonly onOnline = (): void => this.waker.wake();

  constructor(options: EventStreamClientOptions) {
    super();
    const invalid = (problem: string): RoomClientError => new RoomClientError('invalid_options', `EventStreamClient: ${problem}`);
    const unknown = Object.keys(options).filter((k) => !OPTION_NAMES.has(k));
    if (unknown.length > 0) throw invalid(`unknown option ${unknown.join(', ')}`);
    const impl = options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
    if (!impl) throw invalid('this runtime has no EventSource; pass EventSource (e.g. from the eventsource package)');
    this.api = options.api;
    this.roomId = options.roomId;
    this.EventSourceImpl = impl;
    this.backoff = { initialMs: options.reconnect?.initialMs ?? 500, maxMs: options.reconnect?.maxMs ?? 15_000 };
    if (!(this.backoff.initialMs > 0 && this.backoff.maxMs >= this.backoff.initialMs)) throw invalid('reconnect needs 0 < initialMs <= maxMs');
    this.last = options.lastEventId || null;
    // A room stream's ids are positions: one given here already counts as delivered.
    const given = this.roomId !== undefined && this.last !== null ? parsePosition(this.last) : null;
    if (this.roomId !== undefined && given) this.positions.set(this.roomId, given);
  }

  get state(): EventStreamState {
    return this.current;
  }

  /** The id of the last event delivered: give it as `lastEventId` to resume later from there. */
  get lastEventId(): string | null {
    return this.last;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    globalThis.addEventListener?.('online', this.onOnline);
    void this.run();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    globalThis.removeEventListener?.('online', this.onOnline);
    this.waker.wake();
    this.closeCurrent?.();
    this.setState('offline');
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      this.setState('connecting');
      let ticket: string;
      try {
        ticket = (await this.api.eventStreamTicket(this.roomId)).ticket;
      } catch (err) {
        if (this.stopped) break;
        if (this.fail(asClientError(err), isFatal(err))) break;
        this.setState('offline');
        const asked = err instanceof ApiError ? (err.retryAfterMs ?? 0) : 0;
        await this.waker.sleep(Math.max(asked, backoffDelay(attempt++, this.backoff)));
        continue;
      }
      if (this.stopped) break;
      const { outcome, accepted } = await this.connect(ticket);
      if (accepted) attempt = 0;
      if (outcome.kind === 'stopped') break;
      if (outcome.kind === 'end' && !outcome.end.resume) {
        const code = outcome.end.reason === 'membership_ended' ? 'not_a_member' : 'unauthenticated';
        this.fail(new RoomClientError(code, `the server ended the event stream: ${outcome.end.reason.replaceAll('_', ' ')}`), true);
        break;
      }
      this.setState('offline');
      // The server ended it on purpose (lifetime, shutdown): back at once, spread over a moment.
      // Otherwise the connection failed: back off.
      const delay = outcome.kind === 'end' ? Math.random() * this.backoff.initialMs : backoffDelay(attempt++, this.backoff);
      await this.waker.sleep(delay);
    }
    this.setState('offline');
  }

  /** Reports an error; a fatal one stops the client. Returns `fatal`. */
  private fail(error: RoomClientError, fatal: boolean): boolean {
    if (fatal) this.stopped = true;
    this.emit('error', error, fatal);
    return fatal;
  }

  /** One EventSource, from open until it fails, the server ends it, or `stop`. */
  private connect(ticket: string): Promise<{ outcome: Outcome; accepted: boolean }> {
    return new Promise((resolve) => {
      const source = new this.EventSourceImpl(this.api.eventStreamUrl(ticket, { roomId: this.roomId, lastEventId: this.last }));
      let accepted = false;
      let done = false;
      const finish = (outcome: Outcome): void => {
        if (done) return;
        done = true;
        this.closeCurrent = null;
        // Its own reconnect would present the spent ticket: a new one is needed.
        source.close();
        resolve({ outcome, accepted });
      };
      this.closeCurrent = () => finish({ kind: 'stopped' });
      const handlers: Record<string, (event: { data?: unknown; lastEventId?: string }) => void> = {
        error: () => finish({ kind: 'error' }),
        resume: () => {
          accepted = true;
          this.setState('live');
        },
        reset: (e) => this.reset(e.data, e.lastEventId),
        end: (e) => {
          const end = parseJson(e.data) as StreamEndData | null;
          finish(end && typeof end.resume === 'boolean' ? { kind: 'end', end } : { kind: 'error' });
        },
        // The server names every event; an unnamed one is not ours.
        message: () => this.emit('error', new RoomClientError('bad_frame', 'the event stream sent an event without a type'), false),
      };
      for (const type of EVENT_TYPES) handlers[type] = (e) => this.deliver(e.data, e.lastEventId);
      for (const [type, handle] of Object.entries(handlers)) {
        source.addEventListener(type, (e) => {
          if (!done && !this.stopped) handle(e);
        });
      }
    });
  }

  private deliver(data: unknown, id: string | undefined): void {
    const event = parseJson(data) as RoomEvent | null;
    const position = typeof event?.position === 'string' ? parsePosition(event.position) : null;
    if (!event || typeof event.roomId !== 'string' || typeof event.id !== 'string' || !position) {
      this.emit('error', new RoomClientError('bad_frame', 'the event stream sent an event that is not a room event'), false);
      return;
    }
    if (!isAfter(position, this.positions.get(event.roomId))) return;
    this.positions.set(event.roomId, position);
    if (id) this.last = id;
    this.emit('event', event);
  }

  private reset(data: unknown, id: string | undefined): void {
    const reset = parseJson(data) as StreamResetData | null;
    const rooms = Array.isArray(reset?.rooms) ? reset.rooms.filter((r): r is string => typeof r === 'string') : [];
    for (const room of rooms) this.positions.delete(room);
    // The server's new starting point: resuming from the old id would only be reset again.
    this.last = id || null;
    this.emit('reset', rooms);
  }

  private setState(next: EventStreamState): void {
    if (next === this.current) return;
    const previous = this.current;
    this.current = next;
    this.emit('state', next, previous);
  }
}
